// What the CLI tests share: running the CLI as a child process, as users run it, and a fresh
// SQLite database per test.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createKnexStore, type Client, type KnexStore } from '../../lib/index.js';
import { PG_URL, postgresDatabase, type TestDatabase } from '../support/db.js';
import { whyMissing } from '../support/servers.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'lib', 'cli', 'main.ts');
// Resolved here so the CLI also runs from a directory without node_modules (the knexfile tests).
export const TSX = import.meta.resolve('tsx');
export const MIGRATIONS = [
  '20261122000000_initial', '20261206000000_key_retention', '20261210000000_audit_log', '20261212000000_client_changes',
  '20261220000000_client_authentication', '20261230000000_revocations',
];
export const SECRET = /^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/;
export const STACK_FRAME = /^\s+at /m;

/** What a run of the CLI gave: its exit code and everything it printed. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link cli}: the child's environment (besides PATH), its directory, and its standard input. */
export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Written to the child's standard input, which is then closed; when absent, standard input stays open and empty. */
  input?: string | Buffer;
}

/**
 * Runs `node --import tsx lib/cli/main.ts ...args` as a child process with only PATH and `env` in its
 * environment (so a DATABASE_URL of the machine running the tests never leaks in).
 */
export function cli(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath, ['--import', TSX, CLI, ...args],
      { cwd: options.cwd ?? ROOT, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) {
      // The CLI may stop reading early (an input too large): that is not the test's failure.
      child.stdin?.on('error', () => {});
      child.stdin?.end(options.input);
    }
  });
}

/**
 * Runs each command line with the same options, a few at a time (each run is a Node.js process
 * of its own), and returns the runs in order.
 */
export async function cliAll(lines: readonly (readonly string[])[], options: CliOptions = {}): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < lines.length; i += 3) {
    runs.push(...await Promise.all(lines.slice(i, i + 3).map((args) => cli(args, options))));
  }
  return runs;
}

/** The JSON document a successful run printed. */
export function json(run: Run): unknown {
  expect(run.stderr).to.equal('');
  expect(run.code).to.equal(0);
  return JSON.parse(run.stdout);
}

/** What the CLI prints for a client with --json. */
export function clientJson(client: Client): Record<string, unknown> {
  return {
    clientId: client.clientId,
    name: client.name,
    enabled: client.enabled,
    scopes: client.scopes,
    defaultScopes: client.defaultScopes,
    audiences: client.audiences,
    defaultAudience: client.defaultAudience,
    tokenLifetime: client.tokenLifetime,
    grantTypes: client.grantTypes,
    claims: client.claims,
    tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
    jwks: client.jwks,
    jwksUri: client.jwksUri,
    createdAt: client.createdAt.toISOString(),
    updatedAt: client.updatedAt.toISOString(),
  };
}

export const registration = { name: 'nightly-report', scopes: ['reports:read'], audiences: ['https://reports.internal'] };

/** A test's SQLite database: its directory and file, the CLI's environment, and a store on it. */
export interface SqliteDatabase {
  dir: string;
  file: string;
  env: Record<string, string>;
  knex: Knex;
  store: KnexStore;
}

/**
 * Gives each test of the calling `describe` a fresh SQLite file in a directory of its own, named
 * to the CLI by DATABASE_URL, with the tables migrated when `migrated` is true.
 */
export function useSqliteDatabase(options: { migrated: boolean }): SqliteDatabase {
  const db = {} as SqliteDatabase;
  beforeEach(async function () {
    db.dir = mkdtempSync(join(tmpdir(), 'm2m-cli-'));
    db.file = join(db.dir, 'm2m.sqlite');
    db.env = { DATABASE_URL: `sqlite:${db.file}` };
    // Knex opens the file on the first query only, so tests that need no file never create one.
    db.knex = knexFactory({ client: 'sqlite3', connection: { filename: db.file }, useNullAsDefault: true });
    // The CLI changes rows from another process: read them fresh every time.
    db.store = createKnexStore(db.knex, { clientCacheTtl: 0 });
    if (options.migrated) await db.store.migrate();
  });
  afterEach(async function () {
    await db.store.clients.flushUsage();
    await db.knex.destroy();
    rmSync(db.dir, { recursive: true, force: true });
  });
  return db;
}

/** A database of the CLI matrices: SQLite, or PostgreSQL with tables of a prefix of their own. */
export type CliDatabaseName = 'sqlite' | 'postgres';

/** The databases a CLI matrix runs on: SQLite, and PostgreSQL when it answered the probe before the run. */
export const CLI_DATABASES: readonly CliDatabaseName[] = whyMissing('postgres') === undefined ? ['sqlite', 'postgres'] : ['sqlite'];

/** A test's database in a CLI matrix: a store on it, and the CLI run on it. */
export interface CliDatabase {
  db: TestDatabase;
  /** Reads rows fresh every time: the CLI changes them from another process. */
  store: KnexStore;
  /** Runs the CLI on this database: DATABASE_URL, and on PostgreSQL `--table-prefix`. */
  run(args: readonly string[], options?: Omit<CliOptions, 'env'>): Promise<Run>;
  /** {@link CliDatabase.run} for several command lines, a few at a time. */
  runAll(lines: readonly (readonly string[])[], options?: Omit<CliOptions, 'env'>): Promise<Run[]>;
}

/**
 * Gives each test of the calling `describe` a fresh, migrated database: a SQLite file in a
 * directory of its own, or tables of a prefix of their own in the PostgreSQL test database.
 */
export function useCliDatabase(name: CliDatabaseName): CliDatabase {
  const target = {} as CliDatabase;
  beforeEach(async function () {
    let env: Record<string, string>;
    let prefixArgs: string[] = [];
    if (name === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'm2m-cli-'));
      const file = join(dir, 'm2m.sqlite');
      const knex = knexFactory({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true });
      target.db = {
        name, knex, prefix: 'm2m_',
        async destroy() {
          await knex.destroy();
          rmSync(dir, { recursive: true, force: true });
        },
      };
      env = { DATABASE_URL: `sqlite:${file}` };
    } else {
      target.db = postgresDatabase();
      env = { DATABASE_URL: PG_URL };
      prefixArgs = ['--table-prefix', target.db.prefix];
    }
    target.store = createKnexStore(target.db.knex, { tablePrefix: target.db.prefix, clientCacheTtl: 0 });
    target.run = (args, options = {}) => cli([...prefixArgs, ...args], { ...options, env });
    target.runAll = (lines, options = {}) => cliAll(lines.map((args) => [...prefixArgs, ...args]), { ...options, env });
    await target.store.migrate();
  });
  afterEach(async function () {
    await target.store.clients.flushUsage();
    await target.db.destroy();
  });
  return target;
}

/** Every row of every express-m2m table of a SQLite database, to show that a refused command changed nothing. */
export async function snapshot(knex: Knex): Promise<Record<string, unknown[]>> {
  const tables = await knex('sqlite_master').where({ type: 'table' }).andWhere('name', 'like', 'm2m%').orderBy('name').pluck('name') as string[];
  expect(tables).to.include.members(['m2m_clients', 'm2m_client_secrets', 'm2m_signing_keys']);
  return Object.fromEntries(await Promise.all(tables.map(async (table) => [table, await knex(table).select('*').orderByRaw('rowid')])));
}

/** What the CLI gives for bad usage: exit code 2, nothing on stdout, the message and the usage on stderr. */
export function badUsage(message: string, usage: string): Run {
  return { code: 2, stdout: '', stderr: `express-m2m: ${message}\n\n${usage}` };
}

/** What the CLI gives for a failure: exit code 1, nothing on stdout, the message on stderr. */
export function failure(message: string): Run {
  return { code: 1, stdout: '', stderr: `express-m2m: ${message}\n` };
}

/** The short usage printed after bad usage of `command`. */
export function usageOf(command: string, synopsis: string): string {
  return `Usage: express-m2m ${command}${synopsis ? ` ${synopsis}` : ''} [global options]\nRun 'express-m2m ${command} --help' for details.\n`;
}
