import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import { TokenRequestError } from '../errors.js';
import { discoverMetadata } from '../core/metadata.js';
import { checkRemoteUrl } from '../core/urls.js';
import { deriveCacheKeys, type CachedToken, type CacheKeys } from './cache.js';
import { requestToken, type TokenRequestConfig } from './token-request.js';
import { resolveOptions, type ResolvedOptions, type TokenClientOptions } from './options.js';
import { attachToAxios, authorizedFetch, type AxiosLike } from './adapters.js';

/**
 * An access token as {@link TokenClient.getToken} returns it. `accessToken` is readable but kept
 * out of `JSON.stringify` and `util.inspect`, so that logging the object does not log the token.
 */
export class AccessToken {
  readonly #value: string;
  /** Always `Bearer`: the client accepts no other token type. */
  readonly tokenType = 'Bearer';
  /** The granted scope (RFC 6749 §5.1: the requested scope when the server named none). */
  readonly scope: string;
  /** When the token expires, by the server's `expires_in` counted from when the request was sent. */
  readonly expiresAt: Date;

  /** @internal */
  constructor(value: string, scope: string, expiresAt: number) {
    this.#value = value;
    this.scope = scope;
    this.expiresAt = new Date(expiresAt);
  }

  /** The token itself, for an `Authorization: Bearer` header. */
  get accessToken(): string {
    return this.#value;
  }

  /** What JSON holds of the token: everything but the token. */
  toJSON(): { tokenType: 'Bearer'; scope: string; expiresAt: string } {
    return { tokenType: this.tokenType, scope: this.scope, expiresAt: this.expiresAt.toISOString() };
  }

  /** @internal */
  [inspect.custom](): string {
    return `AccessToken { tokenType: 'Bearer', scope: ${JSON.stringify(this.scope)}, expiresAt: ${this.expiresAt.toISOString()}, accessToken: [redacted] }`;
  }
}

/** Payload of `token.fetched`: a token was obtained from the endpoint or taken from a shared cache. */
export interface TokenFetchedEvent {
  clientId: string;
  tokenUrl: string | undefined;
  scope: string;
  expiresAt: Date;
  /** `endpoint`: a token request; `cache`: a token another process (or client) had stored. */
  source: 'endpoint' | 'cache';
  /** True when it replaced a token that was still valid (a refresh ahead of expiry). */
  refresh: boolean;
  /** Token requests made, retries included (0 from the cache). */
  attempts: number;
  /** Time from the first request to the answer, in milliseconds (0 from the cache). */
  durationMs: number;
}

/** Payload of `token.refresh_failed`: a background refresh failed; the current token is still served. */
export interface RefreshFailedEvent {
  clientId: string;
  tokenUrl: string | undefined;
  error: TokenRequestError;
  /** Expiry of the token still being served. */
  expiresAt: Date;
  /** When the next refresh may start. */
  nextAttemptAt: Date;
}

/** Payload of `token.retry_scheduled`: a token request failed in a retryable way and will be made again. */
export interface RetryScheduledEvent {
  clientId: string;
  tokenUrl: string | undefined;
  error: TokenRequestError;
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
}

/** Payload of `token.rejected`: an API answered 401 `invalid_token`; the token was dropped. */
export interface TokenRejectedEvent {
  clientId: string;
  /** The request's origin and path (no query: it may hold identifiers). */
  url: string;
  method: string;
  /** Whether the request was sent again with a new token. */
  replayed: boolean;
}

/** Payload of `cache.error`: the shared cache failed; the client went on without it. */
export interface CacheErrorEvent {
  clientId: string;
  operation: 'get' | 'set' | 'delete' | 'lock' | 'unlock';
  error: unknown;
}

/** Events of a {@link TokenClient}, by name. None carries a secret, a key, an assertion or a token. */
export interface TokenClientEventMap {
  'token.fetched': TokenFetchedEvent;
  'token.refresh_failed': RefreshFailedEvent;
  'token.retry_scheduled': RetryScheduledEvent;
  'token.rejected': TokenRejectedEvent;
  'cache.error': CacheErrorEvent;
}

/** A typed event emitter. A listener that throws is ignored: it never breaks a call. */
export interface TokenClientEvents {
  on<K extends keyof TokenClientEventMap>(event: K, listener: (payload: TokenClientEventMap[K]) => void): this;
  once<K extends keyof TokenClientEventMap>(event: K, listener: (payload: TokenClientEventMap[K]) => void): this;
  off<K extends keyof TokenClientEventMap>(event: K, listener: (payload: TokenClientEventMap[K]) => void): this;
}

/** The client returned by {@link tokenClient}. */
export interface TokenClient {
  /** The client id, for logs. */
  readonly clientId: string;
  /** Subscribe to `token.fetched`, `token.refresh_failed`, `token.retry_scheduled`, `token.rejected`, `cache.error`. */
  readonly events: TokenClientEvents;
  /**
   * A valid token: the cached one, or a new one when none is valid (concurrent callers share one
   * request). Starts a background refresh once the token is past its refresh point.
   *
   * @param options - `signal` ends this call's wait with the signal's reason (an `AbortError` by
   *   default), as `fetch` does; a token request under way goes on for the other callers and the
   *   cache.
   * @throws TokenRequestError when no valid token exists and the token endpoint refuses or fails.
   */
  getToken(options?: { signal?: AbortSignal }): Promise<AccessToken>;
  /**
   * `fetch` with `Authorization: Bearer <token>`. After a 401 whose `WWW-Authenticate` says
   * `error="invalid_token"` (RFC 6750 §3.1), drops that token, gets a new one and sends the request
   * once more when the replay policy allows it; a second 401 is returned as it is.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /**
   * Installs request and response interceptors on an axios instance, with the behaviour of
   * {@link TokenClient.fetch}. Returns the instance. axios is an optional peer dependency.
   */
  axios<T extends AxiosLike>(instance: T): T;
  /**
   * Drops a token: `token` when given (only while it is the current one, so that a late 401 never
   * drops its replacement), else whatever is cached. The next call gets a new one.
   */
  invalidate(token?: string): Promise<void>;
}

interface Entry {
  token: CachedToken;
  sealed: string;
  handle: AccessToken;
  refreshAt: number;
  usableUntil: number;
}

/** `promise`, or the signal's reason as soon as it aborts. */
function until<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const abort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

// Referenced on purpose: a job that awaits a token must stay alive through the backoff and end with
// the error, not exit quietly with an unsettled await (exit code 13). Retries are bounded.
const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms); });

/** Times when a token stops being used and when its refresh starts, for this process (jittered). */
function schedule(token: CachedToken, options: ResolvedOptions): { refreshAt: number; usableUntil: number } {
  const lifetime = Math.max(0, token.expiresAt - token.issuedAt);
  const usableUntil = token.expiresAt - Math.min(options.expiryMargin, lifetime / 10);
  // Jitter spreads the refreshes of many instances holding the same token over a fifth of its life.
  const ratio = 0.65 + Math.random() * 0.2;
  const refreshAt = Math.min(token.issuedAt + lifetime * ratio, token.expiresAt - Math.min(options.refreshMargin, lifetime / 4));
  return { refreshAt: Math.min(refreshAt, usableUntil), usableUntil };
}

/**
 * Creates a caller: a client credentials client (RFC 6749 §4.4) that obtains access tokens,
 * keeps them in a cache, refreshes them before they expire and attaches them to outgoing requests.
 *
 * - One token per cache key (token URL or issuer, client id, a hash of the credential, scope,
 *   audience); concurrent callers share one token request in a process, and across processes
 *   with a cache that locks (Redis).
 * - The refresh starts in the background at a random point between 65% and 85% of the token's
 *   lifetime (never later than `refreshMargin` before expiry) while the current token is served;
 *   callers wait only when no usable token exists.
 * - Failed token requests are retried (5xx, 429, 408, network errors, timeouts) with exponential
 *   backoff, full jitter and `Retry-After`; `invalid_client`, `invalid_scope` and other 4xx fail
 *   fast with a {@link TokenRequestError}.
 * - Secrets, keys and tokens never appear in errors, events, `toString`, `util.inspect` or JSON.
 *
 * @example
 * ```ts
 * const reports = tokenClient({
 *   tokenUrl: 'https://auth.internal/oauth/token',
 *   clientId: 'archival-service',
 *   clientSecret: process.env.REPORTS_CLIENT_SECRET,
 *   scope: 'reports:read',
 *   audience: 'https://reports.internal',
 * });
 * const res = await reports.fetch('https://reports.internal/reports');
 * ```
 * @throws {@link InvalidOptionError} (a TypeError) at creation for a missing, malformed or unknown option.
 */
export function tokenClient(options: TokenClientOptions): TokenClient {
  return createTokenClient(options, discoverMetadata);
}

/** Reads an issuer's metadata: {@link discoverMetadata}, or a shared memo of it ({@link tokenClients}). */
export type Discover = typeof discoverMetadata;

/** {@link tokenClient} with the metadata reader given: registrations of one {@link tokenClients} share theirs. */
export function createTokenClient(options: TokenClientOptions, discover: Discover): TokenClient {
  const opts = resolveOptions(options);
  const { cache, clock, clientId } = opts;
  const emitter = new EventEmitter();
  const keys: CacheKeys = deriveCacheKeys(opts.credential, [
    opts.tokenUrl ?? `issuer:${opts.issuer ?? ''}`, clientId, opts.authMethod, opts.scope,
    opts.audience.join(' '), opts.resource.join(' '), JSON.stringify(opts.params),
  ]);
  const lockKey = `${keys.id}:lock`;
  let tokenUrl = opts.tokenUrl;
  let current: Entry | undefined;
  let inflight: Promise<Entry> | undefined;
  let nextRefreshAt = 0;

  function emit<K extends keyof TokenClientEventMap>(event: K, payload: TokenClientEventMap[K]): void {
    for (const listener of emitter.listeners(event)) {
      try {
        (listener as (p: TokenClientEventMap[K]) => void)(payload);
      } catch {
        // A host's listener must not break token handling.
      }
    }
  }

  async function cached<T>(operation: CacheErrorEvent['operation'], run: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await run();
    } catch (error) {
      emit('cache.error', { clientId, operation, error });
      return fallback;
    }
  }

  async function resolveTokenUrl(): Promise<string> {
    if (tokenUrl !== undefined) return tokenUrl;
    const issuer = opts.issuer as string;
    try {
      const { metadata, url } = await discover(opts.fetch, issuer, opts.timeout);
      const found = metadata.token_endpoint;
      checkRemoteUrl(found, `token_endpoint in the metadata at ${url}`, opts.allowHttp);
      if (new URL(found as string).username !== '') throw new TypeError('the token_endpoint holds credentials');
      tokenUrl = found as string;
      return tokenUrl;
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      throw new TokenRequestError(`the token endpoint of ${issuer} could not be discovered`, {
        reason: 'discovery_failed', tokenUrl: issuer, clientId, retryable: true, cause: err,
        ...(typeof status === 'number' ? { status } : {}),
      });
    }
  }

  function requestConfig(url: string): TokenRequestConfig {
    return {
      tokenUrl: url, clientId, authMethod: opts.authMethod, clientSecret: opts.clientSecret, privateKey: opts.privateKey,
      assertionAlgorithm: opts.assertionAlgorithm, keyId: opts.keyId, assertionAudience: opts.assertionAudience,
      scope: opts.scope, audience: opts.audience, resource: opts.resource, params: opts.params,
      timeout: opts.timeout, defaultLifetime: opts.defaultLifetime, fetch: opts.fetch, clock,
    };
  }

  /** One token from the endpoint, retrying what may pass by itself. */
  async function fetchWithRetries(): Promise<{ token: CachedToken; attempts: number; durationMs: number }> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const url = await resolveTokenUrl();
        const token = await requestToken(requestConfig(url));
        return { token, attempts: attempt + 1, durationMs: Date.now() - started };
      } catch (err) {
        const error = err instanceof TokenRequestError ? err : new TokenRequestError('the token request failed', {
          reason: 'network_error', tokenUrl: tokenUrl ?? opts.issuer ?? '', clientId, retryable: false, cause: err,
        });
        if (!error.retryable || attempt >= opts.retries) throw error;
        let delay = Math.random() * Math.min(opts.maxDelay, opts.minDelay * 2 ** attempt);
        if (error.retryAfter !== undefined) {
          // A server asking for more patience than allowed gets no retry now: the caller hears at once.
          if (error.retryAfter * 1000 > opts.maxDelay) throw error;
          delay = Math.max(delay, error.retryAfter * 1000);
        }
        emit('token.retry_scheduled', { clientId, tokenUrl, error, attempt: attempt + 1, delayMs: Math.round(delay) });
        await sleep(delay);
      }
    }
  }

  function install(token: CachedToken, sealed: string): Entry {
    const entry: Entry = { token, sealed, handle: new AccessToken(token.accessToken, token.scope, token.expiresAt), ...schedule(token, opts) };
    if (current === undefined || token.expiresAt >= current.token.expiresAt || clock() >= current.usableUntil) current = entry;
    return entry;
  }

  /** A token from the shared cache that this call may use instead of fetching one, if any. */
  async function fromCache(rejected: string | undefined, refresh: boolean): Promise<Entry | undefined> {
    const sealed = await cached('get', () => cache.get(keys.id), undefined);
    if (sealed === undefined || sealed === current?.sealed) return undefined;
    const token = keys.open(sealed);
    if (token === undefined || token.accessToken === rejected) return undefined;
    const { refreshAt, usableUntil } = schedule(token, opts);
    const now = clock();
    if (now >= usableUntil) return undefined;
    // A refresh wants a token newer than the one it replaces and not itself due for refresh.
    if (refresh && (token.expiresAt <= (current?.token.expiresAt ?? 0) || now >= refreshAt)) return undefined;
    const entry = install(token, sealed);
    emit('token.fetched', {
      clientId, tokenUrl, scope: token.scope, expiresAt: entry.handle.expiresAt, source: 'cache', refresh, attempts: 0, durationMs: 0,
    });
    return entry;
  }

  /** Waits for the process holding the lock to store its token; or takes the lock when it is freed. */
  async function waitForHolder(rejected: string | undefined, refresh: boolean) {
    const deadline = Date.now() + opts.lockTimeout;
    while (Date.now() < deadline) {
      await sleep(25 + Math.random() * 50);
      const entry = await fromCache(rejected, refresh);
      if (entry) return { entry };
      // A lock that fails while waiting ends the wait: fetch without it rather than stall.
      const release = await cached('lock', () => cache.lock?.(lockKey, opts.lockTimeout) ?? Promise.resolve(undefined), async () => {});
      if (release) {
        // The holder may have stored its token and let go between the read above and this lock.
        const late = await fromCache(rejected, refresh);
        if (late === undefined) return { release };
        await cached('unlock', release, undefined);
        return { entry: late };
      }
    }
    return {};
  }

  async function acquire(rejected: string | undefined, refresh: boolean): Promise<Entry> {
    const hit = await fromCache(rejected, refresh);
    if (hit) return hit;
    let release: (() => Promise<void>) | undefined;
    if (cache.lock) {
      // A cache that cannot lock (an outage) is no reason to fail: fetch without the lock.
      release = await cached('lock', () => cache.lock?.(lockKey, opts.lockTimeout) ?? Promise.resolve(undefined), async () => {});
      if (release === undefined) {
        const waited = await waitForHolder(rejected, refresh);
        if (waited.entry) return waited.entry;
        release = waited.release;
      } else {
        // Another process may have stored a token between our read and our lock.
        const late = await fromCache(rejected, refresh);
        if (late) {
          await cached('unlock', release, undefined);
          return late;
        }
      }
    }
    try {
      const { token, attempts, durationMs } = await fetchWithRetries();
      const sealed = keys.seal(token);
      await cached('set', () => cache.set(keys.id, sealed, token.expiresAt), undefined);
      const entry = install(token, sealed);
      emit('token.fetched', {
        clientId, tokenUrl, scope: token.scope, expiresAt: entry.handle.expiresAt, source: 'endpoint', refresh, attempts, durationMs,
      });
      return entry;
    } finally {
      if (release) await cached('unlock', release, undefined);
    }
  }

  /** Single flight: every caller in this process waits on the same acquisition. */
  function obtain(rejected: string | undefined, refresh: boolean): Promise<Entry> {
    inflight ??= acquire(rejected, refresh).finally(() => { inflight = undefined; });
    return inflight;
  }

  function refreshInBackground(entry: Entry, now: number): void {
    if (inflight !== undefined || now < nextRefreshAt) return;
    obtain(undefined, true).then(() => { nextRefreshAt = 0; }, (error: unknown) => {
      // The next caller past this point tries again: at least a second apart, or as the server asked.
      const retryAfter = error instanceof TokenRequestError ? (error.retryAfter ?? 0) * 1000 : 0;
      const delay = Math.min(60_000, Math.max(1000, retryAfter));
      nextRefreshAt = clock() + delay;
      emit('token.refresh_failed', {
        clientId, tokenUrl, error: error as TokenRequestError, expiresAt: entry.handle.expiresAt, nextAttemptAt: new Date(nextRefreshAt),
      });
    });
  }

  /** The current entry when usable now (starting a refresh when it is due), else `undefined`. */
  function usable(): Entry | undefined {
    const entry = current;
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
    const entry = current;
    if (token !== undefined && entry?.token.accessToken !== token) return;
    current = undefined;
    await cached('delete', () => cache.delete(keys.id, entry?.sealed), undefined);
  }

  const describe = () => ({ clientId, tokenUrl: tokenUrl ?? opts.issuer, authMethod: opts.authMethod, scope: opts.scope });
  const client: TokenClient = {
    clientId,
    events: emitter as TokenClientEvents,
    getToken: async (options) => {
      const signal = options?.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
      return (await until(valid(), signal)).handle;
    },
    fetch: authorizedFetch({
      fetch: opts.fetch,
      replay: opts.replay,
      current: () => usable()?.token.accessToken,
      token: async (rejected, signal) => (await until(valid(rejected), signal)).token.accessToken,
      invalidate,
      rejected: (event) => emit('token.rejected', { clientId, ...event }),
    }),
    axios: (instance) => attachToAxios(instance, {
      replay: opts.replay,
      token: async (rejected, signal) => (await until(valid(rejected), signal)).token.accessToken,
      invalidate,
      rejected: (event) => emit('token.rejected', { clientId, ...event }),
    }),
    invalidate,
  };
  Object.defineProperties(client, {
    toString: { value: () => `TokenClient(${clientId})` },
    toJSON: { value: describe },
    [inspect.custom]: { value: () => `TokenClient ${inspect(describe())}` },
  });
  return client;
}
