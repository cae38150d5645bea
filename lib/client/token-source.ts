/**
 * The tokens one client serves ({@link createTokenSource}): the current token while it is usable,
 * a refresh in the background once it is due, and one acquisition at a time in this process that
 * every waiting caller shares.
 */
import { TokenRequestError } from '../errors.js';
import type { ClientContext } from './client-context.js';
import { acquire } from './token-acquisition.js';
import type { Entry } from './token-entry.js';

/** What the public client asks of its tokens. */
export interface TokenSource {
  /** The current entry when usable now (starting a refresh when it is due), else `undefined`. */
  usable(): Entry | undefined;
  /**
   * A usable entry whose token is not `rejected`: the current one, or a new one that the callers
   * waiting at the same time share.
   */
  valid(rejected?: string): Promise<Entry>;
  /** Drops `token` while it is the current one (any token when not given), here and in the shared cache. */
  invalidate(token?: string): Promise<void>;
}

/** The {@link TokenSource} of the client of `ctx`. */
export function createTokenSource(ctx: ClientContext): TokenSource {
  const { clientId, slot } = ctx;
  const { clock } = ctx.opts;
  let inflight: Promise<Entry> | undefined;
  let nextRefreshAt = 0;

  /** Single flight: every caller in this process waits on the same acquisition. */
  function obtain(rejected: string | undefined, refresh: boolean): Promise<Entry> {
    inflight ??= acquire(ctx, rejected, refresh).finally(() => { inflight = undefined; });
    return inflight;
  }

  function refreshFailed(entry: Entry, error: unknown): void {
    // The next caller past this point tries again: at least a second apart, or as the server asked.
    const retryAfter = error instanceof TokenRequestError ? (error.retryAfter ?? 0) * 1000 : 0;
    const delay = Math.min(60_000, Math.max(1000, retryAfter));
    nextRefreshAt = clock() + delay;
    ctx.emit('token.refresh_failed', {
      clientId, tokenUrl: ctx.tokenUrl.known(), error: error as TokenRequestError, expiresAt: entry.handle.expiresAt, nextAttemptAt: new Date(nextRefreshAt),
    });
  }

  function refreshInBackground(entry: Entry, now: number): void {
    if (inflight !== undefined || now < nextRefreshAt) return;
    obtain(undefined, true).then(() => { nextRefreshAt = 0; }, (error: unknown) => refreshFailed(entry, error));
  }

  function usable(): Entry | undefined {
    const entry = slot.current;
    if (entry === undefined) return undefined;
    const now = clock();
    if (now >= entry.usableUntil) return undefined;
    if (now >= entry.refreshAt) refreshInBackground(entry, now);
    return entry;
  }

  async function valid(rejected?: string): Promise<Entry> {
    const entry = usable();
    if (entry !== undefined && entry.token.accessToken !== rejected) return entry;
    const next = await obtain(rejected, false);
    // The flight this call joined may have started before the token was rejected.
    return next.token.accessToken === rejected ? obtain(rejected, false) : next;
  }

  async function invalidate(token?: string): Promise<void> {
    const entry = slot.current;
    if (token !== undefined && entry?.token.accessToken !== token) return;
    slot.clear();
    await ctx.cached('delete', () => ctx.opts.cache.delete(ctx.keys.id, entry?.sealed), undefined);
  }

  return { usable, valid, invalidate };
}
