/**
 * Checks what a Knex-backed factory is given: a Knex instance (recognised by shape, so that core
 * needs no Knex import) and a table prefix safe to splice into table names.
 *
 * @param knex - What the host passed as its Knex instance.
 * @param prefix - The `tablePrefix` option, or undefined for the default `m2m_`.
 * @param factory - The factory's name, for the error message.
 * @returns The prefix.
 * @throws TypeError naming the problem.
 */
export function checkKnexTables(knex: unknown, prefix: unknown, factory: string): string {
  if (!knex || typeof knex !== 'function' || typeof (knex as { transaction?: unknown }).transaction !== 'function') {
    throw new TypeError(`${factory}() needs a Knex instance`);
  }
  const value = prefix ?? 'm2m_';
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,30}$/.test(value)) {
    throw new TypeError('tablePrefix must be 1 to 31 letters, digits or underscores, not starting with a digit');
  }
  return value;
}
