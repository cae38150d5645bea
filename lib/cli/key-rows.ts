// What the store does not tell about signing keys: the revoked ones (its keys.list() returns live
// keys only), read from its keys table, public columns only.
import type { KeyRow } from '../storage/rows.js';
import type { Context } from './command.js';
import type { KeyListing } from './format.js';

type PublicColumns = Pick<KeyRow, 'kid' | 'alg' | 'created_at' | 'activates_at' | 'revoked_at'>;

// PostgreSQL returns bigint columns as strings, SQLite as numbers.
const toDate = (value: number | string): Date => new Date(Number(value));

/** Every revoked key, as `keys list --all` shows it. */
export async function revokedKeys(ctx: Context): Promise<KeyListing[]> {
  const rows = await ctx.knex<PublicColumns>(ctx.store.tables.keys).whereNotNull('revoked_at')
    .select('kid', 'alg', 'created_at', 'activates_at', 'revoked_at');
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    createdAt: toDate(row.created_at),
    activatesAt: toDate(row.activates_at),
    revokedAt: row.revoked_at === null ? null : toDate(row.revoked_at),
  }));
}

/** When the key `kid` was revoked: null while it is live, undefined when there is no such key. */
export async function revocationOf(ctx: Context, kid: string): Promise<Date | null | undefined> {
  // Kids are at most 64 characters, as the store's revoke() assumes.
  if (kid.length > 64) return undefined;
  const row = await ctx.knex<PublicColumns>(ctx.store.tables.keys).where({ kid }).first('revoked_at');
  if (row === undefined) return undefined;
  return row.revoked_at === null ? null : toDate(row.revoked_at);
}
