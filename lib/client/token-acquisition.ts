/**
 * Getting a token through the shared cache ({@link acquire}): a token another process (or client)
 * stored is taken when it fits; else, with a cache that locks, one process takes the lock and
 * fetches while the others wait for the token it stores. Every cache failure is reported as
 * `cache.error` and gone past: the token endpoint is the fallback, never an error of its own.
 */
import type { ClientContext } from './client-context.js';
import { schedule, type Entry } from './token-entry.js';
import { fetchWithRetries, sleep } from './token-retries.js';

type Release = () => Promise<void>;

/** After the lock step: a token to use, or the lock to fetch under (neither: fetch without it). */
interface Held {
  entry?: Entry;
  release?: Release;
}

/** `token.fetched` for `entry`. */
function announce(ctx: ClientContext, entry: Entry, details: { source: 'endpoint' | 'cache'; refresh: boolean; attempts: number; durationMs: number }): void {
  ctx.emit('token.fetched', {
    clientId: ctx.clientId, tokenUrl: ctx.tokenUrl.known(), scope: entry.token.scope, expiresAt: entry.handle.expiresAt, ...details,
  });
}

/** A token from the shared cache that this call may use instead of fetching one, if any. */
async function fromCache(ctx: ClientContext, rejected: string | undefined, refresh: boolean): Promise<Entry | undefined> {
  const { opts, keys, slot } = ctx;
  const { cache, clock } = opts;
  const sealed = await ctx.cached('get', () => cache.get(keys.id), undefined);
  if (sealed === undefined || sealed === slot.current?.sealed) return undefined;
  const token = keys.open(sealed);
  if (token === undefined || token.accessToken === rejected) return undefined;
  const { refreshAt, usableUntil } = schedule(token, opts);
  const now = clock();
  if (now >= usableUntil) return undefined;
  // A refresh wants a token newer than the one it replaces and not itself due for refresh.
  if (refresh && (token.expiresAt <= (slot.current?.token.expiresAt ?? 0) || now >= refreshAt)) return undefined;
  const entry = slot.install(token, sealed);
  announce(ctx, entry, { source: 'cache', refresh, attempts: 0, durationMs: 0 });
  return entry;
}

/** The lock on the client's entry, or `undefined` while another holds it. */
function takeLock(ctx: ClientContext): Promise<Release | undefined> {
  const { cache, lockTimeout } = ctx.opts;
  // A lock that fails (an outage) is no reason to fail: a no-op release lets the caller fetch without it.
  return ctx.cached('lock', () => cache.lock?.(ctx.lockKey, lockTimeout) ?? Promise.resolve(undefined), async () => {});
}

/** With the lock just taken: a token stored meanwhile (the lock let go at once), else the lock. */
async function recheck(ctx: ClientContext, release: Release, rejected: string | undefined, refresh: boolean): Promise<Held> {
  const late = await fromCache(ctx, rejected, refresh);
  if (late === undefined) return { release };
  await ctx.cached('unlock', release, undefined);
  return { entry: late };
}

/** Waits for the process holding the lock to store its token; or takes the lock when it is freed. */
async function waitForHolder(ctx: ClientContext, rejected: string | undefined, refresh: boolean): Promise<Held> {
  const deadline = Date.now() + ctx.opts.lockTimeout;
  while (Date.now() < deadline) {
    await sleep(25 + Math.random() * 50);
    const entry = await fromCache(ctx, rejected, refresh);
    if (entry) return { entry };
    // A lock that fails while waiting ends the wait: fetch without it rather than stall.
    const release = await takeLock(ctx);
    // The holder may have stored its token and let go between the read above and this lock.
    if (release) return recheck(ctx, release, rejected, refresh);
  }
  return {};
}

/** Takes the lock, or waits for the token of the process that holds it. */
async function holdLock(ctx: ClientContext, rejected: string | undefined, refresh: boolean): Promise<Held> {
  // A cache that cannot lock (an outage) is no reason to fail: fetch without the lock.
  const release = await takeLock(ctx);
  if (release === undefined) return waitForHolder(ctx, rejected, refresh);
  // Another process may have stored a token between our read and our lock.
  return recheck(ctx, release, rejected, refresh);
}

/** A token from the endpoint, stored in the shared cache (sealed) and installed. */
async function fromEndpoint(ctx: ClientContext, refresh: boolean): Promise<Entry> {
  const { opts, keys } = ctx;
  const { token, attempts, durationMs } = await fetchWithRetries(ctx);
  const sealed = keys.seal(token);
  await ctx.cached('set', () => opts.cache.set(keys.id, sealed, token.expiresAt), undefined);
  const entry = ctx.slot.install(token, sealed);
  announce(ctx, entry, { source: 'endpoint', refresh, attempts, durationMs });
  return entry;
}

/**
 * A token for this client: from the shared cache when it holds one that fits, else from the
 * endpoint (under the cache's lock when it has one). `rejected` is a token an API refused: never
 * taken again. A `refresh` takes from the cache only a token newer than the current one.
 *
 * @throws TokenRequestError when the endpoint refuses or fails.
 */
export async function acquire(ctx: ClientContext, rejected: string | undefined, refresh: boolean): Promise<Entry> {
  const hit = await fromCache(ctx, rejected, refresh);
  if (hit) return hit;
  const held: Held = ctx.opts.cache.lock ? await holdLock(ctx, rejected, refresh) : {};
  if (held.entry) return held.entry;
  try {
    return await fromEndpoint(ctx, refresh);
  } finally {
    if (held.release) await ctx.cached('unlock', held.release, undefined);
  }
}
