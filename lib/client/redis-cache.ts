import { randomBytes } from 'node:crypto';
import { checkOptions, functionOption, InvalidOptionError } from '../core/options.js';
import { TokenCacheError } from '../errors.js';
import type { TokenCache } from './cache.js';

/**
 * The commands {@link redisTokenCache} sends, as an ioredis 5 client has them. ioredis is an
 * optional peer dependency: this package never imports it, it only calls the client it is given.
 */
export interface RedisLike {
  getrange(key: string, start: number, end: number): Promise<string>;
  set(key: string, value: string, millisecondsToken: 'PX', milliseconds: number): Promise<unknown>;
  set(key: string, value: string, millisecondsToken: 'PX', milliseconds: number, nx: 'NX'): Promise<unknown>;
  del(key: string): Promise<number>;
  eval(script: string, numkeys: number, ...args: string[]): Promise<unknown>;
}

/** Options of {@link redisTokenCache}. */
export interface RedisTokenCacheOptions {
  /** Prepended to every key, to keep several applications apart in one Redis database. Default none: the client's keys already start with `m2m:token:`. */
  prefix?: string;
  /** Current time in milliseconds since the epoch, to turn `expiresAt` into a TTL. Default `Date.now`. For tests. */
  clock?: () => number;
}

/**
 * Longest entry read or written, in bytes. A sealed token is a few kilobytes; anything longer was
 * not written by a client, and reading it whole would let whoever can write to Redis make every
 * caller pull megabytes per call.
 */
const MAX_VALUE_BYTES = 64 * 1024;

// Compare-and-delete in one step, so that a late delete (of a rejected token, or of a lock whose
// TTL ran out and was taken over) never removes what another process has stored since.
const DELETE_IF_EQUAL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

function failure(operation: string, cause: unknown): TokenCacheError {
  return new TokenCacheError(`the Redis token cache could not ${operation}`, { cause });
}

/**
 * A {@link TokenCache} in Redis, shared by every process that uses the same Redis: every instance
 * of a service fetches one token per key between them, not one each. It locks (`SET NX PX`), so
 * that when no valid token is cached, one instance asks the token endpoint while the others wait
 * for its token (the `lockTimeout` option of {@link tokenClient}).
 *
 * Entries are sealed by the client before they get here (see {@link TokenCache}): Redis never
 * holds a token in clear, and reading the keys reveals neither tokens nor client ids. Entries
 * expire with the token (`PX`); deletes and lock releases compare the value first (a Lua script),
 * so a late one never removes a newer entry. Values over 64 KiB are refused on write and ignored
 * on read, and only that much of a value is ever read.
 *
 * @param redis - An ioredis 5 client, connected or lazily connecting. Its own options decide how
 *   commands fail while Redis is away; a client that fails fast (`enableOfflineQueue: false`, a
 *   small `maxRetriesPerRequest`) keeps callers from waiting on a Redis outage: every failure is
 *   reported as a `cache.error` event and the client goes on without the cache. A failed command
 *   rejects with a {@link TokenCacheError} (`ERR_M2M_TOKEN_CACHE`), Redis's error as its `cause`.
 * @param options - See {@link RedisTokenCacheOptions}.
 * @throws {@link InvalidOptionError} (a TypeError) when `redis` lacks a command or an option is
 *   unknown or malformed.
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 *
 * const cache = redisTokenCache(new Redis(process.env.REDIS_URL));
 * const reports = tokenClient({ tokenUrl, clientId, clientSecret, scope: 'reports:read', cache });
 * ```
 */
export function redisTokenCache(redis: RedisLike, options: RedisTokenCacheOptions = {}): TokenCache {
  if (redis === null || typeof redis !== 'object') throw new InvalidOptionError('redis', 'redisTokenCache() needs an ioredis client');
  for (const command of ['getrange', 'set', 'del', 'eval'] as const) {
    if (typeof redis[command] !== 'function') {
      throw new InvalidOptionError('redis', `redisTokenCache() needs an ioredis client (no ${command} command)`);
    }
  }
  checkOptions<RedisTokenCacheOptions>(options, 'redisTokenCache()', ['prefix', 'clock']);
  const prefix: unknown = options.prefix === undefined ? '' : options.prefix;
  if (typeof prefix !== 'string' || prefix.length > 256) throw new InvalidOptionError('prefix', 'prefix must be a string of at most 256 characters');
  const clock = functionOption(options.clock, 'clock', Date.now);

  return {
    async get(key) {
      let value: string;
      try {
        value = await redis.getrange(prefix + key, 0, MAX_VALUE_BYTES);
      } catch (err) {
        throw failure('read an entry', err);
      }
      // GETRANGE answers '' for a missing key; '' is no sealed token either.
      if (value === '' || Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) return undefined;
      return value;
    },
    async set(key, value, expiresAt) {
      if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) throw new RangeError(`a token cache entry may hold at most ${MAX_VALUE_BYTES} bytes`);
      const ttl = Math.ceil(expiresAt - clock());
      if (!(ttl > 0)) return;
      try {
        await redis.set(prefix + key, value, 'PX', ttl);
      } catch (err) {
        throw failure('store an entry', err);
      }
    },
    async delete(key, value) {
      try {
        if (value === undefined) await redis.del(prefix + key);
        else await redis.eval(DELETE_IF_EQUAL, 1, prefix + key, value);
      } catch (err) {
        throw failure('delete an entry', err);
      }
    },
    async lock(key, ttl) {
      const ms = Math.ceil(ttl);
      if (!(ms > 0)) throw new RangeError('a lock needs a TTL of at least 1 ms');
      const lockKey = prefix + key;
      const owner = randomBytes(16).toString('base64url');
      let answer: unknown;
      try {
        answer = await redis.set(lockKey, owner, 'PX', ms, 'NX');
      } catch (err) {
        throw failure('take a lock', err);
      }
      if (answer !== 'OK') return undefined;
      return async () => {
        try {
          await redis.eval(DELETE_IF_EQUAL, 1, lockKey, owner);
        } catch (err) {
          throw failure('release a lock', err);
        }
      };
    },
  };
}
