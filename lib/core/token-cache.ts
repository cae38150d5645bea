import { LRUCache } from 'lru-cache';
import type { VerificationKey, VerifiedAccessToken } from './verify.js';

interface Entry {
  auth: VerifiedAccessToken;
  /** The key the signature was checked with. */
  key: VerificationKey;
  /** `exp` in milliseconds: the entry is never used at or after it. */
  expiresAt: number;
}

/** Verified tokens by their whole compact string; see {@link createTokenCache}. */
export interface TokenCache {
  /** The verified token, when cached, not expired at `now`, and its key still current. */
  get(token: string, now: number): VerifiedAccessToken | undefined;
  set(token: string, auth: VerifiedAccessToken, key: VerificationKey, expiresAt: number): void;
}

/**
 * A least-recently-used cache of verified tokens (lru-cache), bounded by entry count, so that a
 * token presented again costs a lookup rather than a signature check. Expiry is checked against
 * the verifier's clock on every read, and an entry whose key has since left the key set
 * (`isKeyCurrent` false: rotated out in a hurry, compromised) is dropped, so that the cache never
 * keeps a withdrawn key's tokens alive.
 */
export function createTokenCache(max: number, isKeyCurrent: ((key: VerificationKey) => boolean) | undefined): TokenCache {
  const entries = new LRUCache<string, Entry>({ max });
  return {
    get(token, now) {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      if (now >= entry.expiresAt || (isKeyCurrent !== undefined && !isKeyCurrent(entry.key))) {
        entries.delete(token);
        return undefined;
      }
      return entry.auth;
    },
    set(token, auth, key, expiresAt) {
      entries.set(token, { auth, key, expiresAt });
    },
  };
}
