import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { TokenCache } from './cache.js';
import { checkOptions, functionOption } from '../core/options.js';
import { checkKnexInstance, checkTablePrefix } from '../core/table-prefix.js';
import { TokenCacheError } from '../errors.js';

/** Options of {@link knexTokenCache}. */
export interface KnexTokenCacheOptions {
  /** Prefix of the cache's tables (`<prefix>token_cache`, `<prefix>token_locks`). Default `m2m_`. */
  tablePrefix?: string;
  /**
   * Current time in milliseconds since the epoch. Default `Date.now`. Expiry of entries and locks is
   * judged by it, so processes sharing the tables need clocks that roughly agree. For tests.
   */
  clock?: () => number;
}

/** A {@link TokenCache} in database tables, from {@link knexTokenCache}. */
export interface KnexTokenCache extends TokenCache {
  /**
   * Creates the cache's tables when they are missing. Safe to call from several processes at once
   * and on every start; it never alters tables that exist.
   */
  migrate(): Promise<void>;
  lock(key: string, ttl: number): Promise<(() => Promise<void>) | undefined>;
}

interface CacheRow {
  cache_key: string;
  value: string;
  /** Milliseconds since the epoch (PostgreSQL returns bigint as a string). */
  expires_at: number | string;
}

interface LockRow {
  lock_key: string;
  owner: string;
  expires_at: number | string;
}

/** Longest key, the width of the key columns. A client's keys are under 90 characters. */
const MAX_KEY_LENGTH = 128;
/** Longest entry read or written: a sealed token is a few kilobytes; longer ones were not written by a client. */
const MAX_VALUE_LENGTH = 64 * 1024;
/** Expired rows removed by one purge, so that a purge after a long pause never becomes one huge delete. */
const PURGE_BATCH = 100;
/** Time between two purges by one cache instance, in milliseconds. */
const PURGE_INTERVAL = 60_000;
const MIGRATE_ATTEMPTS = 10;

// Messages say what failed, never the SQL (Knex puts the statement, with its values, in its own
// messages); the driver's error stays available as `cause`.
function failure(what: string, cause: unknown): TokenCacheError {
  return new TokenCacheError(`the token cache could not ${what}`, { cause });
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new RangeError(`a token cache key must be 1 to ${MAX_KEY_LENGTH} characters`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms); });

/** The cache's tables, the database holding them and the clock that judges expiry. */
interface Tables {
  knex: Knex;
  clock: () => number;
  cacheTable: string;
  lockTable: string;
}

async function createTables({ knex, cacheTable, lockTable }: Tables): Promise<void> {
  await knex.transaction(async (trx) => {
    if (!(await trx.schema.hasTable(cacheTable))) {
      await trx.schema.createTable(cacheTable, (table) => {
        table.string('cache_key', MAX_KEY_LENGTH).primary();
        table.text('value').notNullable();
        table.bigInteger('expires_at').notNullable();
        table.index(['expires_at']);
      });
    }
    if (!(await trx.schema.hasTable(lockTable))) {
      await trx.schema.createTable(lockTable, (table) => {
        table.string('lock_key', MAX_KEY_LENGTH).primary();
        table.string('owner', 64).notNullable();
        table.bigInteger('expires_at').notNullable();
      });
    }
  });
}

async function migrate(tables: Tables): Promise<void> {
  const { knex, cacheTable, lockTable } = tables;
  // Two processes starting on a new database race to create the tables: the loser's CREATE
  // fails (PostgreSQL: a unique violation in its catalog; SQLite: busy). The retry finds them.
  for (let attempt = 1; ; attempt++) {
    try {
      if (await knex.schema.hasTable(cacheTable) && await knex.schema.hasTable(lockTable)) return;
      await createTables(tables);
      return;
    } catch (err) {
      if (attempt >= MIGRATE_ATTEMPTS) throw failure('create its tables', err);
      await sleep(25 * attempt + Math.random() * 100);
    }
  }
}

async function purge({ knex, cacheTable, lockTable }: Tables, now: number): Promise<void> {
  for (const [table, key] of [[cacheTable, 'cache_key'], [lockTable, 'lock_key']] as const) {
    await knex(table)
      .whereIn(key, knex(table).select(key).where('expires_at', '<=', now).limit(PURGE_BATCH))
      .delete();
  }
}

/** A purge of expired rows, run at most once per {@link PURGE_INTERVAL} by one cache instance. */
function purgeEvery(tables: Tables): (now: number) => Promise<void> {
  let nextPurgeAt = 0;
  return async (now) => {
    if (now < nextPurgeAt) return;
    nextPurgeAt = now + PURGE_INTERVAL;
    try {
      await purge(tables, now);
    } catch (err) {
      throw failure('remove expired entries', err);
    }
  };
}

async function readEntry({ knex, clock, cacheTable }: Tables, key: string): Promise<string | undefined> {
  checkKey(key);
  let row: Pick<CacheRow, 'value'> | undefined;
  try {
    row = await knex<CacheRow>(cacheTable)
      .select('value')
      .where('cache_key', key)
      .where('expires_at', '>', clock())
      // Only rows a client could have written: a planted giant is never transferred.
      .whereRaw('length(??) <= ?', ['value', MAX_VALUE_LENGTH])
      .first();
  } catch (err) {
    throw failure('read an entry', err);
  }
  return row?.value;
}

async function writeEntry(
  { knex, clock, cacheTable }: Tables, purgeIfDue: (now: number) => Promise<void>, key: string, value: string, expiresAt: number,
): Promise<void> {
  checkKey(key);
  if (value.length > MAX_VALUE_LENGTH) throw new RangeError(`a token cache entry may hold at most ${MAX_VALUE_LENGTH} characters`);
  if (!Number.isFinite(expiresAt)) throw new RangeError('expiresAt must be a finite number of milliseconds since the epoch');
  const now = clock();
  if (expiresAt <= now) return;
  try {
    await knex<CacheRow>(cacheTable)
      .insert({ cache_key: key, value, expires_at: Math.ceil(expiresAt) })
      .onConflict('cache_key')
      .merge();
  } catch (err) {
    throw failure('store an entry', err);
  }
  await purgeIfDue(now);
}

async function deleteEntry({ knex, cacheTable }: Tables, key: string, value: string | undefined): Promise<void> {
  checkKey(key);
  try {
    const query = knex<CacheRow>(cacheTable).where('cache_key', key);
    if (value !== undefined) query.where('value', value);
    await query.delete();
  } catch (err) {
    throw failure('delete an entry', err);
  }
}

async function takeLock({ knex, clock, lockTable }: Tables, key: string, ttl: number): Promise<(() => Promise<void>) | undefined> {
  checkKey(key);
  const ms = Math.ceil(ttl);
  if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError('a lock needs a finite TTL of at least 1 ms');
  const owner = randomBytes(16).toString('base64url');
  const now = clock();
  let taken: Pick<LockRow, 'owner'>[];
  try {
    // One statement takes a free lock or one whose holder's time has run out; PostgreSQL and
    // SQLite both run it atomically, so two takers never both win.
    taken = await knex<LockRow>(lockTable)
      .insert({ lock_key: key, owner, expires_at: Math.ceil(now) + ms })
      .onConflict('lock_key')
      .merge(['owner', 'expires_at'])
      .where(`${lockTable}.expires_at`, '<=', now)
      .returning('owner');
  } catch (err) {
    throw failure('take a lock', err);
  }
  if (taken.length !== 1 || taken[0]?.owner !== owner) return undefined;
  return async () => {
    try {
      await knex<LockRow>(lockTable).where({ lock_key: key, owner }).delete();
    } catch (err) {
      throw failure('release a lock', err);
    }
  };
}

/**
 * A {@link TokenCache} in two tables of the host's database through Knex (SQLite or PostgreSQL):
 * `<prefix>token_cache` for the entries and `<prefix>token_locks` for the locks that let one
 * process fetch a token while the others sharing the database wait for it. On PostgreSQL, every
 * instance of a service that shares the database fetches one token per key between them, not
 * one each. On SQLite it shares tokens between the processes of one machine; concurrent writers
 * may then get `SQLITE_BUSY`, which the client reports as `cache.error` and gets past.
 *
 * Entries are sealed by the client before they get here (see {@link TokenCache}): the table never
 * holds a token in clear. Expired rows are ignored on read and removed in small batches now and
 * then on write; deletes and lock releases compare the value or owner first, so a late one never
 * removes a newer entry or another process's lock. A lock whose TTL has run out is taken over.
 *
 * Call {@link KnexTokenCache.migrate} once at start (it creates the two tables when missing).
 * A failed read or write rejects with a {@link TokenCacheError} (`ERR_M2M_TOKEN_CACHE`) that never
 * holds SQL; the driver's error is its `cause`.
 *
 * @param knex - The host's Knex instance.
 * @param options - See {@link KnexTokenCacheOptions}.
 * @throws {@link InvalidOptionError} (a TypeError) when `knex` is not a Knex instance or an option
 *   is unknown or malformed.
 * @example
 * ```ts
 * const cache = knexTokenCache(knex);
 * await cache.migrate();
 * const reports = tokenClient({ tokenUrl, clientId, clientSecret, scope: 'reports:read', cache });
 * ```
 */
export function knexTokenCache(knex: Knex, options: KnexTokenCacheOptions = {}): KnexTokenCache {
  checkKnexInstance(knex, 'knexTokenCache');
  checkOptions<KnexTokenCacheOptions>(options, 'knexTokenCache()', ['tablePrefix', 'clock']);
  const prefix = checkTablePrefix(options.tablePrefix);
  const clock = functionOption(options.clock, 'clock', Date.now);
  const tables: Tables = { knex, clock, cacheTable: `${prefix}token_cache`, lockTable: `${prefix}token_locks` };
  const purgeIfDue = purgeEvery(tables);
  return {
    migrate: () => migrate(tables),
    get: (key) => readEntry(tables, key),
    set: (key, value, expiresAt) => writeEntry(tables, purgeIfDue, key, value, expiresAt),
    delete: (key, value) => deleteEntry(tables, key, value),
    lock: (key, ttl) => takeLock(tables, key, ttl),
  };
}
