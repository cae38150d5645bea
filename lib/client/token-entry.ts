/**
 * The token a client holds ({@link Entry}) and when this process stops using it and refreshes it
 * ({@link schedule}); {@link createEntrySlot} keeps the current one and decides which of two
 * tokens stays current.
 */
import { AccessToken } from './access-token.js';
import type { CachedToken } from './cache.js';
import type { ResolvedOptions } from './options.js';

/** A token as the client holds it: the token, its sealed form in the cache, its handle and its times. */
export interface Entry {
  token: CachedToken;
  sealed: string;
  handle: AccessToken;
  refreshAt: number;
  usableUntil: number;
}

/** Times when a token stops being used and when its refresh starts, for this process (jittered). */
export function schedule(token: CachedToken, options: ResolvedOptions): { refreshAt: number; usableUntil: number } {
  const lifetime = Math.max(0, token.expiresAt - token.issuedAt);
  const usableUntil = token.expiresAt - Math.min(options.expiryMargin, lifetime / 10);
  // Jitter spreads the refreshes of many instances holding the same token over a fifth of its life.
  const ratio = 0.65 + Math.random() * 0.2;
  const refreshAt = Math.min(token.issuedAt + lifetime * ratio, token.expiresAt - Math.min(options.refreshMargin, lifetime / 4));
  return { refreshAt: Math.min(refreshAt, usableUntil), usableUntil };
}

/** The client's current entry. */
export interface EntrySlot {
  /** The current entry, usable or not; `undefined` when none is held. */
  readonly current: Entry | undefined;
  /**
   * Makes an entry of `token` and returns it; it becomes current unless the current one expires
   * later and is still usable.
   */
  install(token: CachedToken, sealed: string): Entry;
  /** Drops the current entry. */
  clear(): void;
}

/** An empty {@link EntrySlot}: `options` give the margins and the clock. */
export function createEntrySlot(options: ResolvedOptions): EntrySlot {
  const { clock } = options;
  let current: Entry | undefined;
  return {
    get current() {
      return current;
    },
    install(token, sealed) {
      const entry: Entry = { token, sealed, handle: new AccessToken(token.accessToken, token.scope, token.expiresAt), ...schedule(token, options) };
      if (current === undefined || token.expiresAt >= current.token.expiresAt || clock() >= current.usableUntil) current = entry;
      return entry;
    },
    clear() {
      current = undefined;
    },
  };
}
