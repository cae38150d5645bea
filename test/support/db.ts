import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { PG_URL, whyMissing } from './servers.js';

export { PG_URL, REDIS_URL } from './servers.js';

/** A database for one test: its Knex instance, a table prefix of its own, and a cleanup. */
export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  knex: Knex;
  prefix: string;
  destroy(): Promise<void>;
}

/** A fresh SQLite file in a temp directory, removed on destroy. */
export function sqliteDatabase(): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-test-'));
  const knex = knexFactory({
    client: 'sqlite3',
    connection: { filename: join(dir, 'db.sqlite') },
    useNullAsDefault: true,
  });
  return {
    name: 'sqlite',
    knex,
    prefix: 'm2m_',
    async destroy() {
      await knex.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The shared PostgreSQL test database with a random table prefix, so tests never see each other's
 * rows; the prefixed tables are dropped on destroy.
 */
export function postgresDatabase(): TestDatabase {
  const knex = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 4 } });
  const prefix = `t${randomBytes(4).toString('hex')}_`;
  return {
    name: 'postgres',
    knex,
    prefix,
    async destroy() {
      const { rows } = await knex.raw<{ rows: { tablename: string }[] }>(
        "select tablename from pg_tables where schemaname = 'public' and tablename like ?", [`${prefix}%`]);
      for (const { tablename } of rows) await knex.raw('drop table if exists ?? cascade', [tablename]);
      // The change log's trigger functions outlive their tables.
      const functions = await knex.raw<{ rows: { proname: string }[] }>(
        "select proname from pg_proc where pronamespace = 'public'::regnamespace and proname like ?", [`${prefix}%`]);
      for (const { proname } of functions.rows) await knex.raw('drop function if exists ??() cascade', [proname]);
      await knex.destroy();
    },
  };
}

/**
 * Both databases, for `for (const make of databases)` test matrices; SQLite alone when PostgreSQL
 * did not answer the probe before the run (test/support/servers-plugin.ts), so that a matrix needs
 * no line of its own to run without the server. The line after mocha's summary says so.
 */
export const databases: readonly (() => TestDatabase)[] = whyMissing('postgres') === undefined
  ? [sqliteDatabase, postgresDatabase]
  : [sqliteDatabase];
