import { InvalidOptionError } from './options.js';

/**
 * Checks that a Knex-backed factory was given a Knex instance, recognised by shape so that core
 * needs no Knex import.
 *
 * @param factory - The factory's name, for the error message.
 * @throws {@link InvalidOptionError} naming `knex`.
 */
export function checkKnexInstance(knex: unknown, factory: string): void {
  if (!knex || typeof knex !== 'function' || typeof (knex as { transaction?: unknown }).transaction !== 'function') {
    throw new InvalidOptionError('knex', `${factory}() needs a Knex instance`);
  }
}

/**
 * Checks the `tablePrefix` option: safe to splice into table names. Only `undefined` means the
 * default `m2m_`; `null` is a mistake.
 *
 * @returns The prefix.
 * @throws {@link InvalidOptionError} naming `tablePrefix`.
 */
export function checkTablePrefix(prefix: unknown): string {
  const value = prefix === undefined ? 'm2m_' : prefix;
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,30}$/.test(value)) {
    throw new InvalidOptionError('tablePrefix', 'tablePrefix must be 1 to 31 letters, digits or underscores, not starting with a digit');
  }
  return value;
}
