// Why the database failed, in one line fit for the user: its driver is missing, it cannot be
// reached, or it refused a command. Never the SQL: Knex puts the query, with its bindings (secret
// hashes, private keys), in front of the driver's message.
import type { Knex } from 'knex';
import { CliError } from './errors.js';

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  SQLITE_CANTOPEN: 'cannot open the file',
  SQLITE_NOTADB: 'the file is not a database',
};

type Failure = { code?: unknown; name?: unknown; message?: unknown; errors?: { code?: unknown }[] } | null;

function codeOf(err: unknown): string | undefined {
  const e = err as Failure;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'string') return e.code;
  return typeof e.errors?.[0]?.code === 'string' ? e.errors[0].code : undefined;
}

/**
 * The driver Knex could not load, from the error it throws then: "Knex: run\n$ npm install pg
 * --save\n" and the reason.
 */
export function driverFailure(err: unknown, label: string): CliError | undefined {
  const message = (err as Failure)?.message;
  const match = typeof message === 'string' ? /^Knex: run\n\$ npm install (\S+) --save\n(.*)/.exec(message) : null;
  if (!match) return undefined;
  const [, driver = '', reason = ''] = match;
  const text = reason.startsWith(`Cannot find module '${driver}'`)
    ? `its driver is not installed: run \`npm install ${driver}\``
    : `its driver ${driver} cannot be loaded (${reason}): reinstall it with \`npm install ${driver}\``;
  return new CliError(`cannot use the database ${label}: ${text}`, 'ERR_M2M_DRIVER_MISSING', { cause: err });
}

/** A one-line reason when `err` means the database could not be reached at all; else undefined. */
function unreachableReason(err: unknown): string | undefined {
  const e = err as Failure;
  if (!e || typeof e !== 'object') return undefined;
  const code = codeOf(err);
  if (code !== undefined && NETWORK_ERRORS[code]) return NETWORK_ERRORS[code];
  // PostgreSQL: class 28 is authentication; 3D000 no such database; 57P03 starting up; 53300 too many connections.
  if (code !== undefined && /^(28...|3D000|57P03|53300)$/.test(code) && typeof e.message === 'string') return e.message;
  if (e.name === 'KnexTimeoutError') return 'timed out waiting for a connection';
  if (typeof e.message === 'string' && /connection timeout|Connection terminated unexpectedly/i.test(e.message)) return 'connection timed out';
  return undefined;
}

/** The error to report when the database `label` cannot be reached; else undefined. */
export function unreachableFailure(err: unknown, label: string): CliError | undefined {
  const reason = unreachableReason(err);
  if (reason === undefined) return undefined;
  return new CliError(`cannot connect to the database ${label}: ${reason}`, 'ERR_M2M_DATABASE_UNREACHABLE', { cause: err });
}

/**
 * Remembers the SQL of each failed query of `knex`, so that {@link refusalFailure} can cut it from
 * the message. Knex must run with `compileSqlOnError: false`, so that the message starts with the
 * SQL as it was sent, without its bindings filled in.
 */
export function watchQueryErrors(knex: Knex): WeakMap<object, string> {
  const failed = new WeakMap<object, string>();
  knex.on('query-error', (err: unknown, query: { sql?: unknown }) => {
    if (err && typeof err === 'object' && typeof query?.sql === 'string') failed.set(err, query.sql);
  });
  return failed;
}

/**
 * The error to report when the database refused a command: the driver's message without the SQL,
 * and its code. Undefined when `err` did not come from the database.
 */
export function refusalFailure(err: unknown, failed: WeakMap<object, string>): CliError | undefined {
  if (!(err instanceof Error)) return undefined;
  const sql = failed.get(err);
  const code = codeOf(err);
  // SQLite's codes, and PostgreSQL's SQLSTATE: five digits or capitals.
  const fromDriver = code !== undefined && /^(SQLITE_\w+|[0-9A-Z]{5})$/.test(code);
  if (sql === undefined && !fromDriver) return undefined;
  // Without the SQL to cut off, the message is not shown: it might hold the query.
  const reason = sql !== undefined && err.message.startsWith(`${sql} - `) ? err.message.slice(sql.length + 3).split('\n')[0] ?? '' : '';
  const parts = [...(code !== undefined && !reason.startsWith(code) ? [code] : []), ...(reason === '' ? [] : [reason])];
  return new CliError(`the database refused the command: ${parts.join(': ') || 'no reason given'}`, 'ERR_M2M_DATABASE', { cause: err });
}
