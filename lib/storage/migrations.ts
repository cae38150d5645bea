import type { Knex } from 'knex';
import { checkOptions } from '../core/options.js';
import { checkKnexInstance, checkTablePrefix } from '../core/table-prefix.js';
import { createChangeLog, dropChangeLog } from './change-triggers.js';

/** Table names for one prefix. */
export interface TableNames {
  clients: string;
  secrets: string;
  keys: string;
  /** Named counters; `clients` is bumped by every change to clients or secrets. */
  revisions: string;
  /** The audit trail of administrative changes. */
  audit: string;
  /** The `jti`s of client assertions already used, until they expire (hashed with the client id). */
  usedAssertions: string;
  /** The client change log: one row per change to a client or its secrets, written by triggers. */
  changes: string;
  /** The revocation record: revoked tokens by `jti`, and per client the instant before which its tokens are revoked. */
  revocations: string;
  /** The counter that orders changes to the revocation record (the cursor of `store.revocations.list`). */
  revocationCounters: string;
  migrations: string;
}

/** The table names used with `prefix` (default `m2m_`). */
export function tableNames(prefix: string): TableNames {
  return {
    clients: `${prefix}clients`,
    secrets: `${prefix}client_secrets`,
    keys: `${prefix}signing_keys`,
    revisions: `${prefix}revisions`,
    audit: `${prefix}audit_log`,
    usedAssertions: `${prefix}used_assertions`,
    changes: `${prefix}client_changes`,
    revocations: `${prefix}revocations`,
    revocationCounters: `${prefix}revocation_counters`,
    migrations: `${prefix}migrations`,
  };
}

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

function initial(t: TableNames): Migration {
  return {
    async up(knex) {
      await knex.schema.createTable(t.clients, (table) => {
        table.string('client_id', 128).primary();
        table.string('name', 200).notNullable();
        table.text('scopes').notNullable();
        table.text('default_scopes').notNullable();
        table.text('audiences').notNullable();
        table.string('default_audience', 512).nullable();
        table.integer('token_lifetime').nullable();
        table.text('grant_types').notNullable();
        table.boolean('enabled').notNullable().defaultTo(true);
        table.text('claims').notNullable();
        table.bigInteger('created_at').notNullable();
        table.bigInteger('updated_at').notNullable();
      });
      await knex.schema.createTable(t.secrets, (table) => {
        table.string('id', 64).primary();
        table.string('client_id', 128).notNullable().references('client_id').inTable(t.clients).onDelete('CASCADE');
        table.string('secret_hash', 64).notNullable();
        table.string('hint', 32).notNullable();
        table.bigInteger('created_at').notNullable();
        table.bigInteger('expires_at').nullable();
        table.bigInteger('last_used_at').nullable();
        table.index(['client_id']);
      });
      await knex.schema.createTable(t.keys, (table) => {
        table.string('kid', 64).primary();
        table.string('alg', 16).notNullable();
        table.text('public_jwk').notNullable();
        table.text('private_key').notNullable();
        table.bigInteger('created_at').notNullable();
        table.bigInteger('activates_at').notNullable();
        table.bigInteger('revoked_at').nullable();
      });
      await knex.schema.createTable(t.revisions, (table) => {
        table.string('name', 32).primary();
        table.bigInteger('value').notNullable();
      });
      await knex(t.revisions).insert({ name: 'clients', value: 0 });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists(t.revisions);
      await knex.schema.dropTableIfExists(t.secrets);
      await knex.schema.dropTableIfExists(t.keys);
      await knex.schema.dropTableIfExists(t.clients);
    },
  };
}

// Each key records how long it stays published once retired, so that every reader (the issuer,
// the CLI) derives the same key states. Rows from before stay null and read as the old default.
function keyRetention(t: TableNames): Migration {
  return {
    async up(knex) {
      await knex.schema.alterTable(t.keys, (table) => {
        table.integer('retention').nullable();
      });
    },
    async down(knex) {
      await knex.schema.alterTable(t.keys, (table) => {
        table.dropColumn('retention');
      });
    },
  };
}

// The audit trail: not tied to clients or keys by foreign keys, so that it outlives them.
function auditLog(t: TableNames): Migration {
  return {
    async up(knex) {
      await knex.schema.createTable(t.audit, (table) => {
        table.bigIncrements('id').primary();
        table.bigInteger('at').notNullable();
        table.string('actor', 200).notNullable();
        table.string('action', 32).notNullable();
        table.string('client_id', 128).nullable();
        table.string('target', 128).notNullable();
        table.text('details').notNullable();
        table.index(['at']);
        table.index(['client_id', 'id']);
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists(t.audit);
    },
  };
}

// private_key_jwt (RFC 7523): each client's authentication method and public keys, and the jtis
// of used assertions. Rows from before keep a null method: either secret method, as before.
function clientAuthentication(t: TableNames): Migration {
  return {
    async up(knex) {
      await knex.schema.alterTable(t.clients, (table) => {
        table.string('token_endpoint_auth_method', 32).nullable();
        table.text('jwks').nullable();
        table.string('jwks_uri', 2048).nullable();
      });
      await knex.schema.createTable(t.usedAssertions, (table) => {
        table.string('id', 64).primary();
        table.string('client_id', 128).notNullable();
        table.bigInteger('expires_at').notNullable();
        table.index(['expires_at']);
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists(t.usedAssertions);
      await knex.schema.alterTable(t.clients, (table) => {
        table.dropColumn('jwks_uri');
        table.dropColumn('jwks');
        table.dropColumn('token_endpoint_auth_method');
      });
    },
  };
}

// The change log and its triggers (change-triggers.ts): every change to a client or its secrets,
// however made, is recorded by the database itself, so that every instance sees it.
function clientChanges(t: TableNames): Migration {
  return {
    up: (knex) => createChangeLog(knex, t),
    down: (knex) => dropChangeLog(knex, t),
  };
}

// Revoked tokens (RFC 7009) and per-client cutoffs, in tables of their own so that the clients
// table is not touched. Each change takes the next value of one counter in its transaction: on
// PostgreSQL the counter row's lock makes changes commit in counter order, so a reader that has
// seen a value has seen every change before it (a sequence would let a later value commit first).
function revocations(t: TableNames): Migration {
  return {
    async up(knex) {
      await knex.schema.createTable(t.revocations, (table) => {
        table.string('id', 64).primary();
        table.string('client_id', 128).notNullable();
        table.string('jti', 255).nullable();
        table.bigInteger('revoked_before').nullable();
        table.bigInteger('expires_at').notNullable();
        table.bigInteger('changed_at').notNullable();
        table.bigInteger('seq').notNullable();
        table.index(['seq']);
        table.index(['expires_at']);
      });
      await knex.schema.createTable(t.revocationCounters, (table) => {
        table.string('name', 32).primary();
        table.bigInteger('value').notNullable();
      });
      await knex(t.revocationCounters).insert({ name: 'revocations', value: 0 });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists(t.revocationCounters);
      await knex.schema.dropTableIfExists(t.revocations);
    },
  };
}

/**
 * The bundled migrations as a Knex migration source, so they run from the compiled package with no
 * file paths, under their own migrations table (`<prefix>migrations`).
 */
export function migrationSource(t: TableNames): Knex.MigrationSource<string> {
  // Append only: a migration that has shipped is never edited, since databases have run it.
  const all: Record<string, Migration> = {
    '20261122000000_initial': initial(t),
    '20261206000000_key_retention': keyRetention(t),
    '20261210000000_audit_log': auditLog(t),
    '20261212000000_client_changes': clientChanges(t),
    '20261220000000_client_authentication': clientAuthentication(t),
    '20261230000000_revocations': revocations(t),
  };
  return {
    getMigrations: async () => Object.keys(all).sort(),
    getMigrationName: (name) => name,
    getMigration: async (name) => all[name] as Migration,
  };
}

/**
 * Runs the bundled migrations on `knex`.
 *
 * @param knex - The host's Knex instance (SQLite or PostgreSQL).
 * @param options.tablePrefix - Prefix of every table, default `m2m_`.
 * @throws {@link InvalidOptionError} (as a rejection) when `knex` is not a Knex instance or an
 *   option is unknown or malformed.
 */
export async function runMigrations(knex: Knex, options: { tablePrefix?: string } = {}): Promise<void> {
  checkKnexInstance(knex, 'runMigrations');
  checkOptions<{ tablePrefix?: string }>(options, 'runMigrations()', ['tablePrefix']);
  const t = tableNames(checkTablePrefix(options.tablePrefix));
  const config = { migrationSource: migrationSource(t), tableName: t.migrations };
  // Several instances starting together on a new database race for the migration tables and
  // Knex's lock; the losers wait and retry, and the retry finds the work done. Any other error
  // (a missing SQLite directory, a refused connection) is thrown at once: retrying cannot fix it.
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureLockTables(knex, t.migrations);
      await knex.migrate.latest(config);
      return;
    } catch (err) {
      if (attempt >= 20 || !isMigrationRace(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt + Math.random() * 100));
    }
  }
}

/**
 * Creates Knex's migrations table and its lock table, with the lock table's one row, in a single
 * transaction. Knex creates them itself without one, so two instances on a new database can both
 * insert a lock row, and with two rows Knex's lock can never be taken again. Done here, the
 * second instance waits for or fails against the first and retries. A lock table that an older
 * race left with several unlocked rows is repaired to one.
 */
async function ensureLockTables(knex: Knex, tableName: string): Promise<void> {
  const lockTable = `${tableName}_lock`;
  await knex.transaction(async (trx) => {
    if (!(await trx.schema.hasTable(tableName))) {
      await trx.schema.createTable(tableName, (table) => {
        table.increments();
        table.string('name');
        table.integer('batch');
        table.timestamp('migration_time');
      });
    }
    if (!(await trx.schema.hasTable(lockTable))) {
      await trx.schema.createTable(lockTable, (table) => {
        table.increments('index').primary();
        table.integer('is_locked');
      });
    }
    const rows = await trx(lockTable).select('index', 'is_locked').orderBy('index') as { index: number; is_locked: number }[];
    if (rows.length === 0) await trx(lockTable).insert({ is_locked: 0 });
    else if (rows.length > 1 && rows.every((row) => Number(row.is_locked) === 0)) {
      await trx(lockTable).where('index', '>', rows[0]!.index).delete();
    }
  });
}

/** Whether `err` comes from another instance migrating at the same time. */
function isMigrationRace(err: unknown): boolean {
  const { code, message, name } = (err ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  // SQLite: another connection holds the write lock. PostgreSQL: duplicate table, duplicate type
  // row or serialisation failure from concurrent DDL. Knex: its lock is taken.
  return code === 'SQLITE_BUSY' || code === '42P07' || code === '23505' || code === '40001'
    || name === 'MigrationLocked' || /already locked|already exists/i.test(String(message));
}
