/**
 * The audit trail: one row per administrative change (clients, secrets, signing keys), written in
 * the transaction of the change itself, with the time, the actor and what changed. Never a secret,
 * a secret's hash or a private key. Rows outlive what they describe: a deleted client and a revoked
 * key stay visible here until the retention has passed.
 */
import type { Knex } from 'knex';
import type { AuditAction, AuditEntry, AuditLog, AuditQuery } from '../core/audit.js';
import type { TableNames } from './migrations.js';

export type { AuditAction, AuditEntry, AuditLog, AuditQuery } from '../core/audit.js';

/** What a change records, beside the time and the actor. */
export type AuditRecord = Omit<AuditEntry, 'id' | 'at' | 'actor'>;

/** The writing side, shared by the store's parts through their context. */
export interface AuditWriter {
  /** Inserts `record` with `db` (the change's transaction). */
  record(db: Knex | Knex.Transaction, record: AuditRecord): Promise<void>;
}

interface AuditRow {
  id: number | string;
  at: number | string;
  actor: string;
  action: AuditAction;
  client_id: string | null;
  target: string;
  details: string;
}

const ACTOR = /^[\x20-\x7E]{1,200}$/;

/** Checks an actor string: 1 to 200 printable ASCII characters. */
export function checkActor(actor: unknown): string {
  if (typeof actor !== 'string' || !ACTOR.test(actor)) throw new TypeError('actor must be 1 to 200 printable ASCII characters');
  return actor;
}

/** The audit writer of one store view: `actor` on every row. */
export function auditWriter(t: TableNames, clock: () => number, actor: string): AuditWriter {
  return {
    async record(db, { action, clientId, target, details }) {
      await db(t.audit).insert({ at: clock(), actor, action, client_id: clientId, target, details: JSON.stringify(details) });
    },
  };
}

function checkQuery(query: AuditQuery): { clientId?: string; since?: number; after?: number; limit: number } {
  const { clientId, since, after, limit = 100 } = query;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > 128)) {
    throw new TypeError('clientId must be 1 to 128 characters');
  }
  if (since !== undefined && (!(since instanceof Date) || Number.isNaN(since.getTime()))) throw new TypeError('since must be a valid Date');
  if (after !== undefined && (!Number.isSafeInteger(after) || after < 0)) throw new TypeError('after must be an entry id');
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new TypeError('limit must be an integer from 1 to 1000');
  return {
    ...(clientId !== undefined ? { clientId } : {}), ...(since !== undefined ? { since: since.getTime() } : {}),
    ...(after !== undefined ? { after } : {}), limit,
  };
}

const fromRow = (row: AuditRow): AuditEntry => ({
  id: Number(row.id), at: new Date(Number(row.at)), actor: row.actor, action: row.action, clientId: row.client_id,
  target: row.target, details: JSON.parse(row.details) as Record<string, unknown>,
});

/** The reading side of the audit trail. `retention` is in milliseconds. */
export function createAuditLog(knex: Knex, t: TableNames, clock: () => number, retention: number): AuditLog {
  return {
    async list(query = {}) {
      const { clientId, since, after, limit } = checkQuery(query);
      let q = knex<AuditRow>(t.audit).select('*').orderBy('id').limit(limit);
      if (clientId !== undefined) q = q.where({ client_id: clientId });
      if (since !== undefined) q = q.where('at', '>=', since);
      if (after !== undefined) q = q.where('id', '>', after);
      return (await q).map(fromRow);
    },
    async prune() {
      return knex(t.audit).where('at', '<', clock() - retention).delete();
    },
  };
}
