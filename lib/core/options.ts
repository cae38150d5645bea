/**
 * The one place where factory options are checked: once, at creation, never per request
 * (body-parser's and the router's way). Only `undefined` means "not given": `null` or `'5'`
 * for a number is a mistake, refused rather than coerced. Every mistake is an
 * {@link InvalidOptionError} naming the option.
 *
 * @module
 */

/** Codes of {@link InvalidOptionError}. */
export type OptionErrorCode = 'ERR_M2M_INVALID_OPTION' | 'ERR_M2M_UNKNOWN_OPTION';

/**
 * A factory was given an option it does not know or a value it cannot use. A `TypeError`, thrown
 * at startup, never while serving requests.
 *
 * @example
 * ```ts
 * try { createResourceServer({ issuer, audience, jwksUrl }); }
 * catch (err) { err.code === 'ERR_M2M_UNKNOWN_OPTION'; err.option === 'jwksUrl'; }
 * ```
 */
export class InvalidOptionError extends TypeError {
  /** `ERR_M2M_UNKNOWN_OPTION` for a name the factory does not know, else `ERR_M2M_INVALID_OPTION`. */
  readonly code: OptionErrorCode;
  /** The option's name, with its path for nested options (`retry.retries`). */
  readonly option: string;

  constructor(option: string, message: string, code: OptionErrorCode = 'ERR_M2M_INVALID_OPTION', options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidOptionError';
    this.code = code;
    this.option = option;
  }
}

/** Levenshtein distance, for "did you mean". Option names are short. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/** The known name closest to `name`, when it is close enough to be a likely typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Checks that `value` is an options object holding no name outside `known`, so that a typo
 * (`jwksUrl` for `jwksUri`) fails at startup instead of silently falling back to a default.
 *
 * @param what - How the options are named in messages: `createResourceServer()`, `retry`.
 * @param path - For nested options, the option holding them (`retry`, `rateLimit.perClient`):
 *   errors then name `retry.retires`, not `retires`.
 */
export function checkOptions<T extends object>(value: unknown, what: string, known: readonly (keyof T & string)[], path?: string): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError(path ?? what, `${what} needs an options object`);
  }
  for (const name of Object.keys(value)) {
    if (!(known as readonly string[]).includes(name)) {
      const hint = closest(name, known);
      throw new InvalidOptionError(path === undefined ? name : `${path}.${name}`,
        `${what} has no option ${JSON.stringify(name.slice(0, 60))}${hint ? ` (did you mean ${hint}?)` : ''}`, 'ERR_M2M_UNKNOWN_OPTION');
    }
  }
  return value as T;
}

/** Bounds of a numeric option. */
export interface NumberSpec {
  /** The value when the option is not given. */
  fallback: number;
  min: number;
  max: number;
  /** Whole numbers only. */
  integer?: boolean;
  /** Unit named in the message: `seconds`, `bytes`. */
  unit?: string;
}

/** A finite number within bounds, or `spec.fallback` when not given. */
export function numberOption(value: unknown, name: string, spec: NumberSpec): number {
  if (value === undefined) return spec.fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < spec.min || value > spec.max
    || (spec.integer === true && !Number.isInteger(value))) {
    const kind = spec.integer === true ? 'an integer' : 'a number';
    throw new InvalidOptionError(name, `${name} must be ${kind}${spec.unit ? ` of ${spec.unit}` : ''} from ${spec.min} to ${spec.max}`);
  }
  return value;
}

/** A boolean, or `fallback` when not given. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, `${name} must be true or false`);
  return value;
}

/** One of `choices`, or `fallback` when not given. */
export function choiceOption<T extends string>(value: unknown, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly unknown[]).includes(value)) {
    throw new InvalidOptionError(name, `${name} must be ${choices.map((c) => JSON.stringify(c)).join(', ').replace(/, ([^,]*)$/, ' or $1')}`);
  }
  return value as T;
}

/** A function, or `fallback` when not given. */
export function functionOption<T>(value: T | undefined, name: string, fallback: T): T;
export function functionOption<T>(value: T | undefined, name: string): T | undefined;
export function functionOption<T>(value: T | undefined, name: string, fallback?: T): T | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') throw new InvalidOptionError(name, `${name} must be a function`);
  return value;
}

/** A non-empty string, or a non-empty array of them, deduplicated. Required. */
export function stringListOption(value: unknown, name: string): [string, ...string[]] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string' && v !== '')) {
    throw new InvalidOptionError(name, `${name} is required: a non-empty string or a non-empty array of strings`);
  }
  return [...new Set(list as string[])] as [string, ...string[]];
}
