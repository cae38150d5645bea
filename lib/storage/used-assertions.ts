import { createHash } from 'node:crypto';
import { isClientId } from '../core/client.js';
import type { UsedAssertionStore } from '../core/store.js';
import { isUniqueViolation, type StoreContext } from './context.js';
import type { UsedAssertionRow } from './rows.js';

/** Least time between two purges of expired records by one instance, in milliseconds. */
const PURGE_GAP = 60_000;

/** The Knex {@link UsedAssertionStore}, which can also purge expired records at once. */
export interface KnexUsedAssertionStore extends UsedAssertionStore {
  /**
   * Deletes the records that have expired. Each instance also does it by itself, at most once a
   * minute, after recording an assertion.
   *
   * @returns How many records it deleted.
   */
  purgeExpired(): Promise<number>;
}

/**
 * The row id of a client's `jti`: a hash, so that a `jti` of any length or alphabet makes a short
 * key every database accepts, and two clients' equal `jti`s never collide.
 */
function recordId(clientId: string, jti: string): string {
  return createHash('sha256').update(clientId).update('\n').update(jti).digest('base64url');
}

/**
 * Used client-assertion `jti`s in the store's table, one row each until it expires. The primary
 * key makes recording atomic across instances: of two requests with one assertion, on any
 * instances, one insert wins and the other is a replay.
 */
export function createUsedAssertionStore(ctx: StoreContext): KnexUsedAssertionStore {
  const { knex, tables: t, clock } = ctx;
  let lastPurge = Number.NEGATIVE_INFINITY;

  const insert = async (row: UsedAssertionRow): Promise<boolean> => {
    try {
      await knex(t.usedAssertions).insert(row);
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  };

  const purgeExpired = async (): Promise<number> => knex(t.usedAssertions).where('expires_at', '<', clock()).delete();

  function purgeNow(now: number): void {
    if (now - lastPurge < PURGE_GAP) return;
    lastPurge = now;
    // In the background: a failed purge costs nothing but rows that the next one removes.
    purgeExpired().catch(() => { lastPurge = Number.NEGATIVE_INFINITY; });
  }

  return {
    async markUsed(clientId, jti, expiresAt) {
      if (!isClientId(clientId) || typeof jti !== 'string' || jti === '') throw new TypeError('markUsed needs a client id and a non-empty jti');
      if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime())) throw new TypeError('expiresAt must be a valid Date');
      const now = clock();
      const row: UsedAssertionRow = { id: recordId(clientId, jti), client_id: clientId, expires_at: expiresAt.getTime() };
      if (await insert(row)) {
        purgeNow(now);
        return true;
      }
      // The id is taken: by a live record (a replay), or by one that has expired and was not
      // purged yet, which no longer counts. Only one of two racing requests can free it.
      const freed = await knex(t.usedAssertions).where({ id: row.id }).andWhere('expires_at', '<=', now).delete();
      return freed > 0 && insert(row);
    },
    purgeExpired,
  };
}
