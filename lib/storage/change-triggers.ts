/**
 * The change log's triggers: the database itself records, in `<prefix>client_changes`, the id of
 * every client whose row or secrets change, however the change is made (this package, another
 * version of it, the CLI, or SQL typed during an incident). Each instance reads the log to drop
 * exactly what changed from its client cache (see `change-log.ts`).
 *
 * Last-used writes (`UPDATE ... SET last_used_at`) change nothing authentication reads, so the
 * secrets table's update triggers name the columns that matter instead of firing on every update.
 * A column added later to the secrets table that authentication reads must be added to
 * {@link SECRET_COLUMNS} by a new migration; the clients table's triggers fire on any column.
 */
import type { Knex } from 'knex';
import type { TableNames } from './migrations.js';

/** The columns of a secret that authentication reads. */
const SECRET_COLUMNS = 'id, client_id, secret_hash, expires_at';

/** Milliseconds since the epoch, by the database's clock. */
export function databaseNowMs(knex: Knex): string {
  return isPostgres(knex)
    ? '(extract(epoch from clock_timestamp()) * 1000)::bigint'
    : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

/** Whether `knex` talks to PostgreSQL (else SQLite). */
export function isPostgres(knex: Knex): boolean {
  return knex.client.dialect === 'postgresql';
}

const quote = (name: string): string => `"${name}"`;

/** Trigger and function names of one prefix (the prefix is letters, digits and `_` only). */
function names(t: TableNames) {
  return {
    logFunction: `${t.changes}_log`,
    lockFunction: `${t.changes}_lock`,
    triggers: [`${t.clients}_changes`, `${t.secrets}_changes`, `${t.clients}_changes_lock`, `${t.secrets}_changes_lock`],
  };
}

/**
 * PostgreSQL: one row trigger per table writes the log, and one statement trigger per table first
 * takes a transaction-level advisory lock. The lock is why the log can be read by `seq`: two
 * transactions that change clients hold it in turn until they commit, so a row with a higher
 * `seq` never commits before one with a lower `seq`, and a reader that has seen `seq` n has seen
 * every row up to n. Without it a long transaction's row could appear below where readers
 * already are and be missed for good.
 */
async function createPostgresTriggers(knex: Knex, t: TableNames): Promise<void> {
  const schema = (await knex.raw<{ rows: { schema: string }[] }>('select current_schema() as schema')).rows[0]?.schema ?? 'public';
  const q = (name: string): string => `${quote(schema)}.${quote(name)}`;
  const { logFunction, lockFunction } = names(t);
  const now = databaseNowMs(knex);
  await knex.raw(`create function ${q(logFunction)}() returns trigger language plpgsql as $body$
begin
  if tg_op <> 'INSERT' then
    insert into ${q(t.changes)} (client_id, changed_at) values (old.client_id, ${now});
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.client_id is distinct from old.client_id) then
    insert into ${q(t.changes)} (client_id, changed_at) values (new.client_id, ${now});
  end if;
  return null;
end
$body$`);
  await knex.raw(`create function ${q(lockFunction)}() returns trigger language plpgsql as $body$
begin
  perform pg_advisory_xact_lock(hashtext('${schema}.${t.changes}'));
  return null;
end
$body$`);
  const events = { [t.clients]: 'insert or update or delete', [t.secrets]: `insert or delete or update of ${SECRET_COLUMNS}` };
  for (const table of [t.clients, t.secrets]) {
    await knex.raw(`create trigger ${quote(`${table}_changes_lock`)} before ${events[table]} on ${q(table)}
      for each statement execute function ${q(lockFunction)}()`);
    await knex.raw(`create trigger ${quote(`${table}_changes`)} after ${events[table]} on ${q(table)}
      for each row execute function ${q(logFunction)}()`);
  }
}

/** SQLite: one writer at a time, so `seq` order is commit order without a lock. */
async function createSqliteTriggers(knex: Knex, t: TableNames): Promise<void> {
  const now = databaseNowMs(knex);
  const log = (row: 'NEW' | 'OLD'): string => `INSERT INTO ${quote(t.changes)} (client_id, changed_at) VALUES (${row}.client_id, ${now});`;
  const moved = `INSERT INTO ${quote(t.changes)} (client_id, changed_at) SELECT NEW.client_id, ${now} WHERE NEW.client_id IS NOT OLD.client_id;`;
  for (const [table, update] of [[t.clients, 'UPDATE'], [t.secrets, `UPDATE OF ${SECRET_COLUMNS}`]] as const) {
    await knex.raw(`CREATE TRIGGER ${quote(`${table}_changes_insert`)} AFTER INSERT ON ${quote(table)} BEGIN ${log('NEW')} END`);
    await knex.raw(`CREATE TRIGGER ${quote(`${table}_changes_update`)} AFTER ${update} ON ${quote(table)} BEGIN ${log('OLD')} ${moved} END`);
    await knex.raw(`CREATE TRIGGER ${quote(`${table}_changes_delete`)} AFTER DELETE ON ${quote(table)} BEGIN ${log('OLD')} END`);
  }
}

/** Creates the change log table and the triggers that feed it. */
export async function createChangeLog(knex: Knex, t: TableNames): Promise<void> {
  await knex.schema.createTable(t.changes, (table) => {
    table.bigIncrements('seq').primary();
    table.string('client_id', 128).notNullable();
    table.bigInteger('changed_at').notNullable();
    table.index(['changed_at']);
  });
  await (isPostgres(knex) ? createPostgresTriggers(knex, t) : createSqliteTriggers(knex, t));
}

/** Drops the triggers, their functions and the change log table. */
export async function dropChangeLog(knex: Knex, t: TableNames): Promise<void> {
  if (isPostgres(knex)) {
    const { logFunction, lockFunction, triggers } = names(t);
    for (const trigger of triggers) {
      const table = trigger.startsWith(t.secrets) ? t.secrets : t.clients;
      await knex.raw(`drop trigger if exists ${quote(trigger)} on ${quote(table)}`);
    }
    await knex.raw(`drop function if exists ${quote(logFunction)}()`);
    await knex.raw(`drop function if exists ${quote(lockFunction)}()`);
  } else {
    for (const table of [t.clients, t.secrets]) {
      for (const op of ['insert', 'update', 'delete']) await knex.raw(`DROP TRIGGER IF EXISTS ${quote(`${table}_changes_${op}`)}`);
    }
  }
  await knex.schema.dropTableIfExists(t.changes);
}
