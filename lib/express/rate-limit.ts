import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** One limit: at most `points` failed authentications within `duration` seconds. */
export interface FailureLimit {
  /** Failed authentications allowed in the window. */
  points: number;
  /** Window length in seconds. */
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
