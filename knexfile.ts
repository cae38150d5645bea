import type { Knex } from 'knex';

/**
 * The repository's own Knex configuration, for the admin CLI run inside this repository:
 * `npm run m2m -- <command>` runs lib/cli/main.ts under tsx, which can import this file, and the
 * CLI reads it when neither --database nor DATABASE_URL names a database (the CLI looks for
 * ./knexfile.js, .mjs, .cjs, then .ts). NODE_ENV picks the environment, default development.
 *
 * - development: a SQLite file (M2M_SQLITE_FILE, default ./express-m2m.sqlite)
 * - test: a SQLite file under the OS temp directory
 * - production: PostgreSQL at DATABASE_URL, else postgres://localhost/express_m2m (the CLI itself
 *   takes a DATABASE_URL that is set, without reading this file)
 *
 * The example and the tests open their own databases and do not read it.
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
