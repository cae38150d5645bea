import type { Knex } from 'knex';
import { isClientId } from '../core/client.js';
import { ClientNotFoundError } from '../errors.js';
import type { AuditWriter } from './audit.js';
import type { TableNames } from './migrations.js';
import type { ClientRow } from './rows.js';

/** What the parts of one Knex store share. Built once by `createKnexStore`. */
export interface StoreContext {
  /** The host's Knex instance. */
  readonly knex: Knex;
  /** The table names in use. */
  readonly tables: TableNames;
  /** Current time in milliseconds since the epoch (injectable for tests). */
  readonly clock: () => number;
  /**
   * Runs a change to one client or its secrets in one transaction, then drops this instance's
   * cached entry of it. See `createClientRegistry`.
   */
  change<T>(clientId: string, work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  /** Records administrative changes in the audit trail, inside the change's transaction. */
  readonly audit: AuditWriter;
}

/**
 * The row of a client, read with `db` (the store's Knex or a transaction).
 *
 * @throws ClientNotFoundError when there is no such client, or `clientId` is not a client id.
 */
export async function requireClient(db: Knex | Knex.Transaction, tables: TableNames, clientId: string): Promise<ClientRow> {
  const row = isClientId(clientId)
    ? await db<ClientRow>(tables.clients).where({ client_id: clientId }).first()
    : undefined;
  if (!row) throw new ClientNotFoundError(String(clientId));
  return row;
}

/** A duplicate key: PostgreSQL's unique_violation (23505), or SQLite's constraint error (errno 19). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT' || e?.errno === 19;
}
