/**
 * The audit trail's types: what every store that keeps one (the Knex store does) records and
 * returns. See `createKnexStore`'s `audit` and `withActor`.
 */

/** What an audit entry records. */
export type AuditAction =
  | 'client.created' | 'client.updated' | 'client.disabled' | 'client.enabled' | 'client.deleted' | 'client.tokens_revoked'
  | 'secret.created' | 'secret.rotated' | 'secret.revoked'
  | 'key.created' | 'key.revoked' | 'key.sealed';

/** One administrative change. */
export interface AuditEntry {
  /** Increasing with time; pass the last one seen as `after` to read on. */
  id: number;
  at: Date;
  /**
   * Who made the change: `cli:<os user>@<host>` for the admin CLI, `admin-api:<client id>` for the
   * admin API, or what the host passed to `store.withActor()`; `app` when nobody said.
   */
  actor: string;
  action: AuditAction;
  /** The client concerned, for client and secret changes. */
  clientId: string | null;
  /** What was changed: a client id, a secret id or a kid. */
  target: string;
  /** The change: new values of updated fields, a key's alg and activation time. Never a secret. */
  details: Record<string, unknown>;
}

/** Filters of {@link AuditLog.list}. */
export interface AuditQuery {
  clientId?: string;
  /** Entries at or after this instant. */
  since?: Date;
  /** Entries with an id above this one (paging). */
  after?: number;
  /** At most this many entries, oldest first. Default 100, at most 1000. */
  limit?: number;
}

/** Reading the audit trail. */
export interface AuditLog {
  /** Entries matching `query`, oldest first. @throws TypeError for a malformed query. */
  list(query?: AuditQuery): Promise<AuditEntry[]>;
  /** Removes entries older than the store's `auditRetention`. @returns How many it removed. */
  prune(): Promise<number>;
}
