import type { Knex } from 'knex';

/**
 * The project's own Knex configuration, used by the CLI, the example and the tests.
 *
 * - development: a SQLite file (M2M_SQLITE_FILE, default ./express-m2m.sqlite)
 * - test: a SQLite file under the OS temp directory
 * - production: PostgreSQL from DATABASE_URL
 */
const sqlite = (filename: string): Knex.Config => ({
  client: 'sqlite3',
  connection: { filename },
  useNullAsDefault: true,
  pool: {
    // Foreign keys are off by default in SQLite; the store relies on them for cascades.
    afterCreate: (conn: { run(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null) => void) => {
      conn.run('PRAGMA foreign_keys = ON', done);
    },
  },
});

const config: Record<'development' | 'test' | 'production', Knex.Config> = {
  development: sqlite(process.env.M2M_SQLITE_FILE ?? './express-m2m.sqlite'),
  test: sqlite(`${process.env.TMPDIR ?? '/tmp'}/express-m2m-test.sqlite`),
  production: {
    client: 'pg',
    connection: process.env.DATABASE_URL ?? 'postgres://localhost/express_m2m',
    pool: { min: 0, max: 10 },
  },
};

export default config;
