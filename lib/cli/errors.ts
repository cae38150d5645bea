// The CLI's own errors, each with a stable code: bad usage (exit code 2) and expected failures
// (exit code 1). How they are printed is ./report.ts's job.

/**
 * Codes of the CLI's own errors. Errors of the store keep their own codes (`ERR_M2M_CLIENT_NOT_FOUND`,
 * `ERR_M2M_CLIENT_EXISTS`, `ERR_M2M_KEY_PLAINTEXT`, ...).
 *
 * Bad usage, exit code 2:
 * - `ERR_M2M_USAGE`: a missing command, argument or option value, an extra argument, an option
 *   given twice, options that contradict each other, an option after `--`
 * - `ERR_M2M_UNKNOWN_COMMAND`, `ERR_M2M_UNKNOWN_OPTION`: a name the CLI does not know (with a
 *   "did you mean" when one is close)
 * - `ERR_M2M_INVALID_OPTION`: a value the CLI cannot use (also exit code 1 when the store refuses
 *   it, for example a malformed scope)
 *
 * Failures, exit code 1:
 * - `ERR_M2M_INVALID_ENV`: `DATABASE_URL` or `M2M_KEY_ENCRYPTION_KEY` cannot be used
 * - `ERR_M2M_NO_DATABASE`: neither `--database`, `DATABASE_URL` nor a knexfile names a database
 * - `ERR_M2M_KNEXFILE`: the knexfile cannot be loaded or lacks the `NODE_ENV` environment
 * - `ERR_M2M_DRIVER_MISSING`: the database driver (`pg`, `sqlite3`) is not installed
 * - `ERR_M2M_DATABASE_UNREACHABLE`: the database cannot be reached or opened
 * - `ERR_M2M_TABLES_MISSING`: `express-m2m migrate` has not been run
 * - `ERR_M2M_DATABASE`: the database refused a command (its message, never the SQL)
 * - `ERR_M2M_KEY_NOT_FOUND`, `ERR_M2M_KEY_REVOKED`: `keys revoke` names no key, or a revoked one
 * - `ERR_M2M_SECRET_NOT_FOUND`: `clients revoke-secret` names no secret of the client
 * - `ERR_M2M_JWKS_FILE_UNREADABLE`: the `--jwks-file` is missing or cannot be read (or `-` names
 *   a standard input that is absent or a terminal)
 * - `ERR_M2M_JWKS_FILE_TOO_LARGE`: the `--jwks-file` is larger than 64 KiB
 * - `ERR_M2M_JWKS_FILE_NOT_JSON`: the `--jwks-file` is empty or not JSON (a JWK Set that is not
 *   usable, a private or symmetric key among others, is `ERR_M2M_INVALID_OPTION`)
 * - `ERR_M2M_NOT_CONFIRMED`: the confirmation prompt was not answered yes
 * - `ERR_M2M_INTERNAL`: anything else (a bug: `--debug` shows the stack)
 */
export type CliErrorCode =
  | 'ERR_M2M_USAGE'
  | 'ERR_M2M_UNKNOWN_COMMAND'
  | 'ERR_M2M_UNKNOWN_OPTION'
  | 'ERR_M2M_INVALID_OPTION'
  | 'ERR_M2M_INVALID_ENV'
  | 'ERR_M2M_NO_DATABASE'
  | 'ERR_M2M_KNEXFILE'
  | 'ERR_M2M_DRIVER_MISSING'
  | 'ERR_M2M_DATABASE_UNREACHABLE'
  | 'ERR_M2M_TABLES_MISSING'
  | 'ERR_M2M_DATABASE'
  | 'ERR_M2M_KEY_NOT_FOUND'
  | 'ERR_M2M_KEY_REVOKED'
  | 'ERR_M2M_SECRET_NOT_FOUND'
  | 'ERR_M2M_JWKS_FILE_UNREADABLE'
  | 'ERR_M2M_JWKS_FILE_TOO_LARGE'
  | 'ERR_M2M_JWKS_FILE_NOT_JSON'
  | 'ERR_M2M_NOT_CONFIRMED'
  | 'ERR_M2M_INTERNAL';

/** Codes of {@link UsageError}. */
export type UsageErrorCode = 'ERR_M2M_USAGE' | 'ERR_M2M_UNKNOWN_COMMAND' | 'ERR_M2M_UNKNOWN_OPTION' | 'ERR_M2M_INVALID_OPTION';

/** Bad command line: reported with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly usage: string, readonly code: UsageErrorCode = 'ERR_M2M_USAGE') {
    super(message);
    this.name = 'UsageError';
  }
}

/** An expected failure with a message fit for the user as it is, exit code 1. */
export class CliError extends Error {
  constructor(message: string, readonly code: CliErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

const QUOTED_MAX = 64;

/**
 * `value` quoted for a message: at most 64 characters, and every character outside printable
 * ASCII escaped, so that a hostile argument can neither flood the terminal nor drive it.
 */
export function quote(value: string): string {
  const cut = value.length > QUOTED_MAX ? `${value.slice(0, QUOTED_MAX)}...` : value;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
