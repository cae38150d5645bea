// Which database a command uses (--database, DATABASE_URL or a knexfile), and opening it with the
// store around one command, reporting why it failed without leaking a password or SQL.
import { existsSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import { checkTablePrefix } from '../core/table-prefix.js';
import { createKnexStore, type KnexStore } from '../storage/knex-store.js';
import type { Args, CliIo, Command, Context } from './command.js';
import { driverFailure, refusalFailure, unreachableFailure, watchQueryErrors } from './database-errors.js';
import { redactUrls, targetFromUrl, type DatabaseTarget } from './database-url.js';
import { CliError, UsageError } from './errors.js';
import { findKnexfile, targetFromKnexfile } from './knexfile.js';
import { hostname, userInfo } from 'node:os';

export { redactUrls, type DatabaseTarget } from './database-url.js';

/** The database from `--database`, else `DATABASE_URL`, else `./knexfile.{js,mjs,cjs,ts}`. */
export async function resolveDatabase(args: Args, io: CliIo): Promise<DatabaseTarget> {
  const cwd = io.cwd ?? process.cwd();
  const flag = args.string('database');
  if (flag !== undefined) return targetFromUrl(flag, '--database', cwd, args.usage);
  const url = io.env.DATABASE_URL;
  if (url) return targetFromUrl(url, 'DATABASE_URL', cwd, args.usage);
  const knexfile = findKnexfile(cwd);
  if (knexfile !== undefined) return targetFromKnexfile(knexfile, io.env, cwd);
  throw new CliError('no database configured: set DATABASE_URL (for example postgres://HOST:5432/DB or '
    + 'sqlite:./express-m2m.sqlite), pass --database URL, or add a ./knexfile.js', 'ERR_M2M_NO_DATABASE');
}

/** The `--table-prefix`, checked before any database is opened. */
export function tablePrefix(args: Args): string | undefined {
  const prefix = args.string('table-prefix');
  try {
    return prefix === undefined ? undefined : checkTablePrefix(prefix);
  } catch {
    throw new UsageError('--table-prefix must be 1 to 31 letters, digits or underscores, not starting with a digit',
      args.usage, 'ERR_M2M_INVALID_OPTION');
  }
}

async function requireTables(knex: Knex, store: KnexStore): Promise<void> {
  for (const table of [store.tables.clients, store.tables.secrets, store.tables.keys]) {
    if (!(await knex.schema.hasTable(table))) {
      throw new CliError(`the express-m2m tables are missing (no table ${table}): run \`express-m2m migrate\` first`, 'ERR_M2M_TABLES_MISSING');
    }
  }
}

function openKnex(target: DatabaseTarget, io: CliIo, debug: boolean): Knex {
  // Knex logs connection failures with their stacks; keep them for --debug.
  const log = (message: unknown): void => {
    if (debug) io.stderr.write(`knex: ${redactUrls(String(message))}\n`);
  };
  try {
    // compileSqlOnError: false keeps the bindings out of error messages (see ./database-errors.ts).
    return knexFactory({ ...target.config, compileSqlOnError: false, log: { warn: log, error: log, deprecate: log, debug: log } });
  } catch (err) {
    throw driverFailure(err, target.label) ?? unreachableFailure(err, target.label) ?? err;
  }
}

/** The audit trail's actor for this CLI run: `cli:<OS user>@<host>`, in printable ASCII. */
export function cliActor(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container with an arbitrary uid): the host still says where it ran.
  }
  return `cli:${user}@${hostname()}`.replace(/[^\x20-\x7E]/g, '?').slice(0, 200);
}

/**
 * Opens `target`, checks the tables when `command` needs them, runs `run` with the store and
 * closes the connection again. Failures of the database become a {@link CliError} naming it by its
 * redacted label.
 */
export async function withDatabase(target: DatabaseTarget, command: Command, args: Args, io: CliIo,
  run: (ctx: Context) => Promise<number>): Promise<number> {
  if (command.needsTables && target.sqliteFile !== undefined && !existsSync(target.sqliteFile)) {
    throw new CliError(`the SQLite database ${target.sqliteFile} does not exist: run \`express-m2m migrate\` to create it`, 'ERR_M2M_TABLES_MISSING');
  }
  const knex = openKnex(target, io, args.flag('debug'));
  const failedQueries = watchQueryErrors(knex);
  try {
    const prefix = tablePrefix(args);
    // Keys rotated in are stored encrypted under the issuer's secret, when it is set.
    const keyEncryptionKey = io.env.M2M_KEY_ENCRYPTION_KEY || undefined;
    const store = createKnexStore(knex, { ...(prefix === undefined ? {} : { tablePrefix: prefix }), ...(keyEncryptionKey ? { keyEncryptionKey } : {}) })
      .withActor(cliActor());
    if (command.needsTables) await requireTables(knex, store);
    const json = args.flag('json');
    return await run({
      knex, store, io, json,
      print(data, text) {
        io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
      },
    });
  } catch (err) {
    if (err instanceof CliError || err instanceof UsageError) throw err;
    throw unreachableFailure(err, target.label) ?? refusalFailure(err, failedQueries) ?? err;
  } finally {
    await knex.destroy();
  }
}
