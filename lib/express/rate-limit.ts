import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
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
 * client authentications; once a counter is spent, every request for that client id or from that
 * address is answered 429 with `Retry-After` until the window ends.
 */
export interface RateLimitOptions {
  /** Failed authentications per client id. Default `{ points: 10, duration: 60 }`; false to switch off. */
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
  /** Seconds to wait when `clientId` or `address` is blocked, else 0. */
  blockedFor(clientId: string | undefined, address: string): Promise<number>;
  /** Counts one failed authentication. */
  recordFailure(clientId: string | undefined, address: string): Promise<void>;
}

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
  const entries = (clientId: string | undefined, addr: string): [{ limiter: RateLimiterAbstract; points: number }, string][] => {
    const list: [{ limiter: RateLimiterAbstract; points: number }, string][] = [];
    if (client && clientId !== undefined) list.push([client, clientId]);
    if (address) list.push([address, addr]);
    return list;
  };
  return {
    async blockedFor(clientId, addr) {
      let wait = 0;
      for (const [{ limiter, points }, key] of entries(clientId, addr)) {
        const res = await limiter.get(key);
        if (res !== null && res.consumedPoints >= points) wait = Math.max(wait, Math.ceil(res.msBeforeNext / 1000));
      }
      return wait;
    },
    async recordFailure(clientId, addr) {
      await Promise.all(entries(clientId, addr).map(([{ limiter }, key]) => limiter.penalty(key, 1)));
    },
  };
}
