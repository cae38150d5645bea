import { createHash, hkdfSync } from 'node:crypto';
import { checkOptions, functionOption, numberOption } from '../core/options.js';
import { open, seal } from '../core/seal.js';

/**
 * Where a {@link tokenClient} keeps tokens so that they outlive one call and, with a shared
 * cache, one process. Entries are opaque strings: the client seals each token (AES-256-GCM with a
 * key derived from the client's credential) before it reaches a cache, so a cache's contents are
 * useless to whoever reads them without that credential, and a different credential for the same
 * client id never sees another's token.
 *
 * A cache is shared by every client given the same instance; keys are derived from the token URL,
 * client id, a hash of the credential, scope and audience, so clients never see each other's entries.
 *
 * Implement it to keep tokens elsewhere; {@link memoryTokenCache}, {@link knexTokenCache} and
 * {@link redisTokenCache} are the bundled ones.
 */
export interface TokenCache {
  /** The entry under `key`, or `undefined` when there is none or it has expired. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` under `key` until `expiresAt` (milliseconds since the epoch), replacing any entry. */
  set(key: string, value: string, expiresAt: number): Promise<void>;
  /**
   * Removes the entry under `key`, only while it still equals `value` when `value` is given (so that
   * dropping a rejected token never drops the fresh one another process has just stored).
   */
  delete(key: string, value?: string): Promise<void>;
  /**
   * Optional: takes a lock on `key` for at most `ttl` milliseconds, across every process sharing
   * the cache, so that one of them fetches the token while the others wait for it. Resolves to a
   * release function, or `undefined` when another holder has it.
   */
  lock?(key: string, ttl: number): Promise<(() => Promise<void>) | undefined>;
}

/** Options of {@link memoryTokenCache}. */
export interface MemoryTokenCacheOptions {
  /** Most entries kept (1 to 10 000 000); the oldest entry is dropped beyond it. Default 1000. */
  maxEntries?: number;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
}

/**
 * A token cache in this process's memory: the default of {@link tokenClient}. Pass one instance
 * to several clients to let clients with the same credentials, scope and audience share tokens.
 *
 * @throws {@link InvalidOptionError} (a TypeError) for an unknown or malformed option.
 * @example
 * ```ts
 * const cache = memoryTokenCache();
 * const a = tokenClient({ ...options, cache });
 * ```
 */
export function memoryTokenCache(options: MemoryTokenCacheOptions = {}): TokenCache {
  checkOptions<MemoryTokenCacheOptions>(options, 'memoryTokenCache()', ['maxEntries', 'clock']);
  const maxEntries = numberOption(options.maxEntries, 'maxEntries', { fallback: 1000, min: 1, max: 10_000_000, integer: true });
  const clock = functionOption(options.clock, 'clock', Date.now);
  const entries = new Map<string, { value: string; expiresAt: number }>();
  return {
    get(key) {
      const entry = entries.get(key);
      if (entry === undefined) return Promise.resolve(undefined);
      if (entry.expiresAt <= clock()) {
        entries.delete(key);
        return Promise.resolve(undefined);
      }
      return Promise.resolve(entry.value);
    },
    set(key, value, expiresAt) {
      entries.delete(key);
      entries.set(key, { value, expiresAt });
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done !== true) entries.delete(oldest.value);
      }
      return Promise.resolve();
    },
    delete(key, value) {
      if (value === undefined || entries.get(key)?.value === value) entries.delete(key);
      return Promise.resolve();
    },
  };
}

/** A token as the client keeps it. Times in milliseconds since the epoch. */
export interface CachedToken {
  accessToken: string;
  tokenType: string;
  scope: string;
  /** When the client received it. */
  issuedAt: number;
  expiresAt: number;
}

/** The keys a client derives from its credential: one names its cache entry, one seals it. */
export interface CacheKeys {
  /** The cache key: `m2m:token:` and 64 hex characters. */
  id: string;
  seal(token: CachedToken): string;
  /** The token, or `undefined` when `value` was not sealed by this credential or is malformed. */
  open(value: string): CachedToken | undefined;
}

const SEAL_VERSION = 'v1';

/**
 * Derives a client's cache key and sealing key. `parts` identify what the token is for (token URL,
 * client id, scope, audience); `credential` is the secret or private key, fed through HKDF-SHA256
 * so that neither the key nor the id reveal it (it is a high-entropy secret: a fast KDF is enough).
 */
export function deriveCacheKeys(credential: string, parts: readonly string[]): CacheKeys {
  const what = JSON.stringify(parts);
  const master = Buffer.from(hkdfSync('sha256', credential, 'express-m2m token cache', what, 64));
  const id = `m2m:token:${createHash('sha256').update(master.subarray(0, 32)).digest('hex')}`;
  const sealKey = master.subarray(32);
  return {
    id,
    seal(token) {
      const fields = [token.accessToken, token.tokenType, token.scope, token.issuedAt, token.expiresAt];
      const { iv, ciphertext, tag } = seal(sealKey, JSON.stringify(fields), id);
      return `${SEAL_VERSION}.${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${tag.toString('base64url')}`;
    },
    open(value) {
      const parts = value.split('.');
      if (parts.length !== 4 || parts[0] !== SEAL_VERSION) return undefined;
      try {
        const plain = open(sealKey, {
          iv: Buffer.from(parts[1] ?? '', 'base64url'),
          ciphertext: Buffer.from(parts[2] ?? '', 'base64url'),
          tag: Buffer.from(parts[3] ?? '', 'base64url'),
        }, id);
        const fields: unknown = JSON.parse(plain);
        if (!Array.isArray(fields) || fields.length !== 5) return undefined;
        const [accessToken, tokenType, scope, issuedAt, expiresAt] = fields as unknown[];
        if (typeof accessToken !== 'string' || typeof tokenType !== 'string' || typeof scope !== 'string'
          || typeof issuedAt !== 'number' || typeof expiresAt !== 'number') return undefined;
        return { accessToken, tokenType, scope, issuedAt, expiresAt };
      } catch {
        return undefined;
      }
    },
  };
}
