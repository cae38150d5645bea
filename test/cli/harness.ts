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

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'lib', 'cli', 'main.ts');
// Resolved here so the CLI also runs from a directory without node_modules (the knexfile tests).
export const TSX = import.meta.resolve('tsx');
export const MIGRATIONS = ['20261122000000_initial', '20261206000000_key_retention'];
export const SECRET = /^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/;
export const STACK_FRAME = /^\s+at /m;

/** What a run of the CLI gave: its exit code and everything it printed. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node --import tsx lib/cli/main.ts ...args` as a child process with only PATH and `env` in its
 * environment (so a DATABASE_URL of the machine running the tests never leaks in).
 */
export function cli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath, ['--import', TSX, CLI, ...args],
      { cwd: options.cwd ?? ROOT, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
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
