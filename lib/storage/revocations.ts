/**
 * The revocation record in the store's tables: one row per revoked token (keyed by a hash of its
 * client id and `jti`) and one per client whose earlier tokens are revoked (its cutoff). Every
 * change takes the next value of one counter in its transaction and stores it as the row's `seq`;
 * `list` reads rows by `seq`, which is what makes it a cursor a guard can poll.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { isClientId } from '../core/client.js';
import type { RevocationChanges, RevocationEntry, RevocationQuery, RevocationStore } from '../core/revocations.js';
import type { ClientStore } from '../core/store.js';
import { requireClient, type StoreContext } from './context.js';
import type { TableNames } from './migrations.js';
import { inWriteTransaction } from './registry.js';

/**
 * How long a client's cutoff is kept, in milliseconds: past the longest lifetime a token of this
 * package can have (86 400 s, the bound of `maxTokenLifetime` and of a client's `tokenLifetime`)
 * plus a minute of clock skew, every token it revokes has expired.
 */
export const CUTOFF_RETENTION = (86_400 + 60) * 1000;

/** Least time between two background prunes by one instance, in milliseconds. */
const PRUNE_GAP = 60_000;

/** A row of the revocations table: a token (`jti` set) or a client's cutoff (`revoked_before` set). */
export interface RevocationRow {
  id: string;
  client_id: string;
  jti: string | null;
  revoked_before: number | string | null;
  expires_at: number | string;
  changed_at: number | string;
  seq: number | string;
}

// eslint-disable-next-line no-control-regex -- the point is to refuse control characters
const CONTROL = /[\x00-\x1F\x7F]/;
const CURSOR = /^\d{1,15}$/;

/** The row id of a token (`t:`) or of a client's cutoff (`c:`): short and fixed-length whatever the input. */
function rowId(kind: 't' | 'c', clientId: string, jti = ''): string {
  return `${kind}:${createHash('sha256').update(clientId).update('\n').update(jti).digest('base64url')}`;
}

function checkToken(jti: unknown, clientId: unknown): void {
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 255 || CONTROL.test(jti)) {
    throw new TypeError('jti must be 1 to 255 characters without control characters');
  }
  if (!isClientId(clientId)) throw new TypeError('clientId must be 1 to 128 printable ASCII characters without spaces');
}

function checkDate(value: unknown, what: string): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${what} must be a valid Date`);
  return value.getTime();
}

/**
 * The next value of the revocation counter, taken in `trx`. The write comes first: on SQLite it
 * takes the write lock before any read, on PostgreSQL it holds the counter row until commit.
 */
async function nextSeq(trx: Knex.Transaction, t: TableNames): Promise<number> {
  await trx(t.revocationCounters).where({ name: 'revocations' }).increment('value', 1);
  const row = await trx(t.revocationCounters).where({ name: 'revocations' }).first('value') as { value: number | string };
  return Number(row.value);
}

/**
 * Revokes every token of `clientId` issued before now, in `trx` (the transaction of the change
 * that calls for it: a disable, a delete, an explicit revocation). `iat` is in whole seconds, so
 * the cutoff is the next whole second: a token issued in this second, before or after the change,
 * is revoked too. A later cutoff than one already recorded is never moved back.
 *
 * @returns The cutoff: tokens with an `iat` before it are revoked.
 */
export async function revokeClientTokens(trx: Knex.Transaction, ctx: Pick<StoreContext, 'tables' | 'clock'>, clientId: string): Promise<Date> {
  const { tables: t, clock } = ctx;
  const seq = await nextSeq(trx, t);
  const now = clock();
  const id = rowId('c', clientId);
  const existing = await trx<RevocationRow>(t.revocations).where({ id }).first('revoked_before');
  const revokedBefore = Math.max((Math.floor(now / 1000) + 1) * 1000, Number(existing?.revoked_before ?? 0));
  const values = { revoked_before: revokedBefore, expires_at: revokedBefore + CUTOFF_RETENTION, changed_at: now, seq };
  if (existing) await trx(t.revocations).where({ id }).update(values);
  else await trx(t.revocations).insert({ id, client_id: clientId, jti: null, ...values });
  return new Date(revokedBefore);
}

/** `store.clients.revokeTokens`: a client's tokens revoked as an administrative change, audited. */
export function createClientTokenRevocation(ctx: StoreContext): Required<Pick<ClientStore, 'revokeTokens'>> {
  return {
    revokeTokens(clientId) {
      return ctx.change(clientId, async (trx) => {
        await requireClient(trx, ctx.tables, clientId);
        const revokedBefore = await revokeClientTokens(trx, ctx, clientId);
        await ctx.audit.record(trx, {
          action: 'client.tokens_revoked', clientId, target: clientId, details: { revokedBefore: revokedBefore.toISOString() },
        });
        return revokedBefore;
      });
    },
  };
}

function checkQuery(query: RevocationQuery): { since: number; limit: number } {
  const { since, limit = 1000 } = query;
  if (since !== undefined && (typeof since !== 'string' || !CURSOR.test(since))) throw new TypeError('since must be a cursor of an earlier list()');
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new TypeError('limit must be an integer from 1 to 10000');
  return { since: since === undefined ? 0 : Number(since), limit };
}

function entryOf(row: RevocationRow): RevocationEntry {
  const expiresAt = new Date(Number(row.expires_at));
  return row.jti === null
    ? { type: 'client', clientId: row.client_id, revokedBefore: new Date(Number(row.revoked_before)), expiresAt }
    : { type: 'token', clientId: row.client_id, jti: row.jti, expiresAt };
}

/**
 * The Knex {@link RevocationStore}. Revoking one token is no administrative change: it is not
 * audited and does not touch the client registry (a client revokes its own tokens at will).
 */
export function createRevocationStore(ctx: Pick<StoreContext, 'knex' | 'tables' | 'clock'>): RevocationStore {
  const { knex, tables: t, clock } = ctx;
  let lastPrune = Number.NEGATIVE_INFINITY;

  const prune = async (): Promise<number> => knex(t.revocations).where('expires_at', '<=', clock()).delete();

  function pruneNow(now: number): void {
    if (now - lastPrune < PRUNE_GAP) return;
    lastPrune = now;
    // In the background: a failed prune costs nothing but rows that the next one removes.
    prune().catch(() => { lastPrune = Number.NEGATIVE_INFINITY; });
  }

  return {
    async revokeToken({ jti, clientId, expiresAt }) {
      checkToken(jti, clientId);
      const expires = checkDate(expiresAt, 'expiresAt');
      const now = clock();
      if (expires <= now) return false;
      const id = rowId('t', clientId, jti);
      const added = await inWriteTransaction(knex, async (trx) => {
        // The counter first: it serialises revocations, so the check below cannot race.
        const seq = await nextSeq(trx, t);
        if (await trx(t.revocations).where({ id }).first('id')) return false;
        await trx(t.revocations).insert({ id, client_id: clientId, jti, revoked_before: null, expires_at: expires, changed_at: now, seq });
        return true;
      });
      if (added) pruneNow(now);
      return added;
    },

    async isRevoked({ jti, clientId, issuedAt }) {
      checkToken(jti, clientId);
      const iat = checkDate(issuedAt, 'issuedAt');
      const row = await knex<RevocationRow>(t.revocations)
        .where({ id: rowId('t', clientId, jti) })
        .orWhere((cutoff) => { cutoff.where({ id: rowId('c', clientId) }).andWhere('revoked_before', '>', iat); })
        .first('id');
      return row !== undefined;
    },

    async list(query = {}): Promise<RevocationChanges> {
      const { since, limit } = checkQuery(query);
      const rows = await knex<RevocationRow>(t.revocations).where('seq', '>', since).orderBy('seq').limit(limit + 1);
      const page = rows.slice(0, limit);
      const now = clock();
      return {
        entries: page.filter((row) => Number(row.expires_at) > now).map(entryOf),
        cursor: String(page.length === 0 ? since : Number((page.at(-1) as RevocationRow).seq)),
        more: rows.length > limit,
      };
    },

    prune,
  };
}
