import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** One limit: at most `points` failed authentications within `duration` seconds. */
export interface FailureLimit {
  /** Failed authentications allowed in the window. */
  points: number;
  /** Window length in seconds. */
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

function checkLimit(value: unknown, what: string, fallback: FailureLimit): FailureLimit | false {
  if (value === false) return false;
  if (value === undefined) return fallback;
  const limit = value as Partial<FailureLimit>;
  if (typeof limit !== 'object' || limit === null || !Number.isInteger(limit.points) || (limit.points as number) < 1
    || !Number.isInteger(limit.duration) || (limit.duration as number) < 1) {
    throw new TypeError(`rateLimit.${what} must be false or { points, duration } with positive integers`);
  }
  return { points: limit.points as number, duration: limit.duration as number };
}

/**
 * Builds the failure limiter from options, validated once.
 *
 * @throws TypeError for a malformed option.
 */
export function createFailureLimiter(options: RateLimitOptions): FailureLimiter {
  if (options === null || typeof options !== 'object') throw new TypeError('rateLimit must be an object or false');
  const keyPrefix = options.keyPrefix ?? 'm2m_rl';
  if (typeof keyPrefix !== 'string' || !/^[\w:.-]{1,64}$/.test(keyPrefix)) throw new TypeError('rateLimit.keyPrefix is malformed');
  const perClient = checkLimit(options.perClient, 'perClient', { points: 10, duration: 60 });
  const perAddress = checkLimit(options.perAddress, 'perAddress', { points: 30, duration: 60 });
  if (options.redis !== undefined && (typeof options.redis !== 'object' || options.redis === null)) {
    throw new TypeError('rateLimit.redis must be an ioredis client');
  }
  const make = (limit: FailureLimit | false, name: string): { limiter: RateLimiterAbstract; points: number } | undefined => {
    if (limit === false) return undefined;
    const base = { points: limit.points, duration: limit.duration, keyPrefix: `${keyPrefix}:${name}` };
    const limiter = options.redis === undefined
      ? new RateLimiterMemory(base)
      : new RateLimiterRedis({ ...base, storeClient: options.redis, insuranceLimiter: new RateLimiterMemory(base) });
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
