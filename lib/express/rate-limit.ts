import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { checkOptions, InvalidOptionError, numberOption } from '../core/options.js';

/** One limit: at most `points` failed authentications within `duration` seconds. */
export interface FailureLimit {
  /** Failed authentications allowed in the window: an integer from 1 to 1 000 000. */
  points: number;
  /** Window length in seconds: an integer from 1 to 86 400. */
  duration: number;
}

/**
 * Brute-force protection for the token endpoint (RFC 6749 §2.3.1 asks for it). Counts failed
 * client authentications, per client id and per address, atomically (concurrent failures never
 * exceed a budget). Once the address's budget is spent, every request from it is answered 429
 * with `Retry-After` until the window ends. Once a client id's budget is spent, failed attempts
 * naming it are answered 429 instead of 401, but the right credentials still get a token: client
 * ids are public (`sub` and `client_id` of every token), so other people's failures must never
 * lock a client out.
 */
export interface RateLimitOptions {
  /** Failed authentications per client id (never refusing the right credentials). Default `{ points: 10, duration: 60 }`; false to switch off. */
  perClient?: FailureLimit | false;
  /** Failed authentications per client address (`req.ip`, so it follows Express's `trust proxy`).
   *  Default `{ points: 30, duration: 60 }`; false to switch off. */
  perAddress?: FailureLimit | false;
  /**
   * An ioredis client: counters live in Redis and are shared by every instance. Default: counters
   * in this process's memory. If Redis fails, counting falls back to memory rather than failing
   * token requests.
   */
  redis?: unknown;
  /** Prefix of the counter keys. Default `m2m_rl`. */
  keyPrefix?: string;
}

/** The limiter the token endpoint consults. */
export interface FailureLimiter {
  /** Before authentication: seconds to wait when `address` has spent its failures, else 0. */
  addressBlockedFor(address: string): Promise<number>;
  /**
   * After a failed authentication: counts it for the client id and the address, atomically, and
   * returns the seconds to wait when either budget is now spent (the request is then answered
   * 429, not 401), else 0.
   */
  recordFailure(clientId: string | undefined, address: string): Promise<number>;
}

/** Seconds until `res` frees a point, at least 1. */
const secondsBefore = (res: RateLimiterRes): number => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

/** {@link RateLimitOptions} checked, with defaults. */
export interface RateLimitSettings {
  perClient: FailureLimit | false;
  perAddress: FailureLimit | false;
  /** The ioredis client, or undefined for counters in memory. */
  redis: object | undefined;
  keyPrefix: string;
}

const OPTION_NAMES: readonly (keyof RateLimitOptions)[] = ['perClient', 'perAddress', 'redis', 'keyPrefix'];
const LIMIT_NAMES: readonly (keyof FailureLimit)[] = ['points', 'duration'];

function checkLimit(value: unknown, path: string, fallback: FailureLimit): FailureLimit | false {
  if (value === false) return false;
  if (value === undefined) return fallback;
  const shape = `${path} must be false or { points, duration } with positive integers`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError(path, shape);
  const limit = checkOptions<FailureLimit>(value, path, LIMIT_NAMES, path);
  for (const name of LIMIT_NAMES) {
    if (limit[name] === undefined) throw new InvalidOptionError(`${path}.${name}`, shape);
  }
  return {
    points: numberOption(limit.points, `${path}.points`, { fallback: fallback.points, min: 1, max: 1_000_000, integer: true }),
    duration: numberOption(limit.duration, `${path}.duration`, { fallback: fallback.duration, min: 1, max: 86_400, integer: true, unit: 'seconds' }),
  };
}

/**
 * Checks the `rateLimit` option of `authorizationServer()` once, at creation. Only `undefined`
 * means the defaults; `null` is a mistake.
 *
 * @returns The settings, or false when switched off.
 * @throws {@link InvalidOptionError} (a TypeError) naming the option (`rateLimit.perClient.points`).
 */
export function checkRateLimit(value: unknown): RateLimitSettings | false {
  if (value === false) return false;
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new InvalidOptionError('rateLimit', 'rateLimit must be an object or false');
  }
  const options = value === undefined ? {} : checkOptions<RateLimitOptions>(value, 'rateLimit', OPTION_NAMES, 'rateLimit');
  const keyPrefix: unknown = options.keyPrefix === undefined ? 'm2m_rl' : options.keyPrefix;
  if (typeof keyPrefix !== 'string' || !/^[\w:.-]{1,64}$/.test(keyPrefix)) {
    throw new InvalidOptionError('rateLimit.keyPrefix', 'rateLimit.keyPrefix must be 1 to 64 letters, digits, _, :, . or -');
  }
  const redis: unknown = options.redis;
  if (redis !== undefined && (typeof redis !== 'object' || redis === null)) {
    throw new InvalidOptionError('rateLimit.redis', 'rateLimit.redis must be an ioredis client');
  }
  return {
    perClient: checkLimit(options.perClient, 'rateLimit.perClient', { points: 10, duration: 60 }),
    perAddress: checkLimit(options.perAddress, 'rateLimit.perAddress', { points: 30, duration: 60 }),
    redis: redis as object | undefined,
    keyPrefix,
  };
}

/** Builds the failure limiter from settings checked by {@link checkRateLimit}. */
export function createFailureLimiter(settings: RateLimitSettings): FailureLimiter {
  const { keyPrefix, perClient, perAddress, redis } = settings;
  const make = (limit: FailureLimit | false, name: string): { limiter: RateLimiterAbstract; points: number } | undefined => {
    if (limit === false) return undefined;
    const base = { points: limit.points, duration: limit.duration, keyPrefix: `${keyPrefix}:${name}` };
    const limiter = redis === undefined
      ? new RateLimiterMemory(base)
      : new RateLimiterRedis({ ...base, storeClient: redis, insuranceLimiter: new RateLimiterMemory(base) });
    return { limiter, points: limit.points };
  };
  const client = make(perClient, 'client');
  const address = make(perAddress, 'addr');
  /** One failure counted under `key`: 0 while within the budget, else the seconds to wait. */
  async function consume(limiter: RateLimiterAbstract, key: string): Promise<number> {
    try {
      await limiter.consume(key, 1);
      return 0;
    } catch (res) {
      // A spent budget rejects with a RateLimiterRes; a store failure is no reason to refuse.
      return res instanceof RateLimiterRes ? secondsBefore(res) : 0;
    }
  }

  return {
    async addressBlockedFor(addr) {
      if (!address) return 0;
      const res = await address.limiter.get(addr);
      return res !== null && res.consumedPoints >= address.points ? secondsBefore(res) : 0;
    },
    async recordFailure(clientId, addr) {
      const waits = await Promise.all([
        client && clientId !== undefined ? consume(client.limiter, clientId) : 0,
        address ? consume(address.limiter, addr) : 0,
      ]);
      return Math.max(...waits);
    },
  };
}
