// Which database a command uses (--database, DATABASE_URL or a knexfile), opening it with the
// store, and saying why it failed without leaking a password.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import { createKnexStore, type KnexStore } from '../storage/knex-store.js';
import { CliError, UsageError, type Args, type CliIo, type Command, type Context } from './command.js';

/** A resolved database: the Knex configuration and how to talk about it without leaking secrets. */
export interface DatabaseTarget {
  config: Knex.Config;
  /** For messages: a URL with its user info redacted, or a file path. */
  label: string;
  /** The SQLite file, checked to exist before any command but `migrate` creates it by opening it. */
  sqliteFile?: string;
  /** Passwords to scrub from anything printed. */
  secrets: string[];
}

const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/gi;

/** Replaces `user:password@` in every URL of `text` with `***@`. */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

function passwordOf(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password === '' ? [] : [...new Set([password, decodeURIComponent(password)])];
  } catch {
    return [];
  }
}

function sqliteConfig(filename: string): Knex.Config {
  return {
    client: 'sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { exec(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null) => void) {
        // Wait for a running issuer's writes instead of failing with SQLITE_BUSY; the store relies
        // on foreign keys for cascades.
        conn.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;', done);
      },
    },
  };
}

const SUPPORTED_URLS = 'use postgres://, postgresql://, sqlite:PATH, file:PATH, or a path ending in .sqlite, .sqlite3 or .db';

function targetFromUrl(url: string, source: string, cwd: string, usage: string): DatabaseTarget {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return {
      config: {
        client: 'pg',
        connection: { connectionString: url, connectionTimeoutMillis: 10_000 },
        pool: { min: 0, max: 2 },
        acquireConnectionTimeout: 15_000,
      },
      label: redactUrls(url),
      secrets: passwordOf(url),
    };
  }
  const path = sqlitePath(url);
  if (path === undefined || path === '') {
    const message = `unsupported database URL in ${source}: ${redactUrls(url)}; ${SUPPORTED_URLS}`;
    if (source === '--database') throw new UsageError(message, usage);
    throw new CliError(message);
  }
  const filename = path === ':memory:' ? path : resolve(cwd, path);
  return { config: sqliteConfig(filename), label: `sqlite:${filename}`, sqliteFile: filename, secrets: [] };
}

/** The file named by `sqlite:PATH`, `file:PATH` or a bare `*.sqlite`/`.sqlite3`/`.db` path; else undefined. */
function sqlitePath(url: string): string | undefined {
  if (/^sqlite:/i.test(url)) return url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (/^file:\/\//i.test(url)) {
    try {
      return fileURLToPath(url);
    } catch {
      return undefined;
    }
  }
  if (/^file:/i.test(url)) return url.slice('file:'.length);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && /\.(sqlite3?|db)$/i.test(url)) return url;
  return undefined;
}

async function targetFromKnexfile(file: string, env: CliIo['env']): Promise<DatabaseTarget> {
  const environment = env.NODE_ENV || 'development';
  let loaded: unknown;
  try {
    const mod = await import(pathToFileURL(file).href) as { default?: unknown };
    loaded = await (mod.default ?? mod);
  } catch (err) {
    throw new CliError(`cannot load ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const all = (loaded ?? {}) as Record<string, unknown>;
  const config = (typeof all.client === 'string' ? all : all[environment]) as Knex.Config | undefined;
  if (!config || typeof config !== 'object') {
    throw new CliError(`${file} has no ${JSON.stringify(environment)} environment (chosen by NODE_ENV)`);
  }
  const connection = config.connection as unknown;
  const secrets = typeof connection === 'string' ? passwordOf(connection)
    : connection && typeof connection === 'object' && typeof (connection as { password?: unknown }).password === 'string'
      ? [(connection as { password: string }).password] : [];
  const filename = connection && typeof connection === 'object' ? (connection as { filename?: unknown }).filename : undefined;
  const isSqlite = typeof config.client === 'string' && /sqlite/.test(config.client);
  return {
    config: { ...config, ...(isSqlite && config.useNullAsDefault === undefined ? { useNullAsDefault: true } : {}) },
    label: `${file} (${environment})`,
    ...(isSqlite && typeof filename === 'string' && filename !== ':memory:' ? { sqliteFile: resolve(filename) } : {}),
    secrets,
  };
}

/** The database from `--database`, else `DATABASE_URL`, else `./knexfile.js` or `./knexfile.mjs`. */
export async function resolveDatabase(args: Args, io: CliIo): Promise<DatabaseTarget> {
  const cwd = io.cwd ?? process.cwd();
  const flag = args.string('database');
  if (flag !== undefined) return targetFromUrl(flag, '--database', cwd, args.usage);
  const url = io.env.DATABASE_URL;
  if (url) return targetFromUrl(url, 'DATABASE_URL', cwd, args.usage);
  for (const name of ['knexfile.js', 'knexfile.mjs']) {
    const file = resolve(cwd, name);
    if (existsSync(file)) return targetFromKnexfile(file, io.env);
  }
  throw new CliError('no database configured: set DATABASE_URL (for example postgres://HOST:5432/DB or '
    + 'sqlite:./express-m2m.sqlite), pass --database URL, or add a ./knexfile.js');
}

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

/** A one-line reason when `err` means the database could not be reached at all; else undefined. */
function connectionFailure(err: unknown): string | undefined {
  const e = err as { code?: unknown; name?: unknown; message?: unknown; errors?: { code?: unknown }[] } | null;
  if (!e || typeof e !== 'object') return undefined;
  const code = typeof e.code === 'string' ? e.code : typeof e.errors?.[0]?.code === 'string' ? e.errors[0].code : undefined;
  if (code !== undefined && NETWORK_ERRORS[code]) return NETWORK_ERRORS[code];
  // PostgreSQL: class 28 is authentication; 3D000 no such database; 57P03 starting up; 53300 too many connections.
  if (code !== undefined && /^(28...|3D000|57P03|53300)$/.test(code) && typeof e.message === 'string') return e.message;
  if (e.name === 'KnexTimeoutError') return 'timed out waiting for a connection';
  if (typeof e.message === 'string' && /connection timeout|Connection terminated unexpectedly/i.test(e.message)) return 'connection timed out';
  if (typeof e.message === 'string' && /Cannot find module '(pg|sqlite3)'/.test(e.message)) {
    return `its driver is not installed (npm install ${/'pg'/.test(e.message) ? 'pg' : 'sqlite3'})`;
  }
  return undefined;
}

async function requireTables(knex: Knex, store: KnexStore): Promise<void> {
  for (const table of [store.tables.clients, store.tables.secrets, store.tables.keys]) {
    if (!(await knex.schema.hasTable(table))) {
      throw new CliError(`the express-m2m tables are missing (no table ${table}): run \`express-m2m migrate\` first`);
    }
  }
}

/**
 * Opens `target`, checks the tables when `command` needs them, runs `run` with the store and
 * closes the connection again. Connection failures become a {@link CliError} naming the database
 * by its redacted label.
 */
export async function withDatabase(target: DatabaseTarget, command: Command, args: Args, io: CliIo,
  run: (ctx: Context) => Promise<number>): Promise<number> {
  if (command.needsTables && target.sqliteFile !== undefined && !existsSync(target.sqliteFile)) {
    throw new CliError(`the SQLite database ${target.sqliteFile} does not exist: run \`express-m2m migrate\` to create it`);
  }
  const debug = args.flag('debug');
  // Knex logs connection failures with their stacks; keep them for --debug.
  const log = (message: unknown): void => {
    if (debug) io.stderr.write(`knex: ${redactUrls(String(message))}\n`);
  };
  let knex: Knex;
  try {
    knex = knexFactory({ ...target.config, log: { warn: log, error: log, deprecate: log, debug: log } });
  } catch (err) {
    const reason = connectionFailure(err);
    if (reason) throw new CliError(`cannot use the database ${target.label}: ${reason}`, { cause: err });
    throw err;
  }
  try {
    const prefix = args.string('table-prefix');
    // Keys rotated in are stored encrypted under the issuer's secret, when it is set.
    const keyEncryptionKey = io.env.M2M_KEY_ENCRYPTION_KEY || undefined;
    const store = createKnexStore(knex, { ...(prefix === undefined ? {} : { tablePrefix: prefix }), ...(keyEncryptionKey ? { keyEncryptionKey } : {}) });
    if (command.needsTables) await requireTables(knex, store);
    const json = args.flag('json');
    return await run({
      knex, store, io, json,
      print(data, text) {
        io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
      },
    });
  } catch (err) {
    const reason = connectionFailure(err);
    if (reason) throw new CliError(`cannot connect to the database ${target.label}: ${reason}`, { cause: err });
    throw err;
  } finally {
    await knex.destroy();
  }
}
