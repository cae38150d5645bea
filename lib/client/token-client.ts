/**
 * The caller's public object ({@link tokenClient}): `getToken`, `fetch`, `axios`, `invalidate`,
 * `revoke` and the events, wired to the parts that do the work: the current token and its single
 * flight (`token-source.ts`), the shared cache and its lock (`token-acquisition.ts`), the retries
 * (`token-retries.ts`), the endpoints' discovery (`token-url.ts`) and the revocation
 * (`token-revocation.ts`).
 */
import { inspect } from 'node:util';
import { discoverMetadata } from '../core/metadata.js';
import { resolveOptions, type TokenClientOptions } from './options.js';
import { attachToAxios, authorizedFetch, type AxiosLike, type RejectedRequest } from './adapters.js';
import type { AccessToken } from './access-token.js';
import { createClientContext, type ClientContext } from './client-context.js';
import type { TokenClientEvents } from './token-events.js';
import { revokeCurrent } from './token-revocation.js';
import { createTokenSource, type TokenSource } from './token-source.js';
import type { Discover } from './token-url.js';

export { AccessToken } from './access-token.js';
export type {
  TokenFetchedEvent, RefreshFailedEvent, RetryScheduledEvent, TokenRejectedEvent, CacheErrorEvent, TokenClientEventMap,
  TokenClientEvents,
} from './token-events.js';

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
  /**
   * Gives the current token back: drops it (here and from the shared cache) and revokes it at the
   * issuer's revocation endpoint (RFC 7009), `revocationUrl` or the `revocation_endpoint` of the
   * issuer's metadata, authenticated as token requests are; one attempt, no retries. For a job
   * that finishes before its token expires. Does nothing when no token is held; the next call
   * gets a new token.
   *
   * Resource servers that verify tokens themselves keep accepting a revoked token until it
   * expires; the issuer's introspection endpoint calls it inactive at once.
   *
   * @throws TokenRequestError when no revocation endpoint is known (`discovery_failed`) or the
   *   request fails; the token is dropped all the same.
   * @example
   * ```ts
   * try { await runNightlyReport(reports); } finally { await reports.revoke(); }
   * ```
   */
  revoke(): Promise<void>;
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

/** {@link tokenClient} with the metadata reader given: registrations of one {@link tokenClients} share theirs. */
export function createTokenClient(options: TokenClientOptions, discover: Discover): TokenClient {
  const ctx = createClientContext(resolveOptions(options), discover);
  return describable(publicClient(ctx, createTokenSource(ctx)), ctx);
}

/** The methods of the client of `ctx`, served by `source`. */
function publicClient(ctx: ClientContext, source: TokenSource): TokenClient {
  const { clientId, opts } = ctx;
  const { invalidate } = source;
  const token = async (rejected: string | undefined, signal: AbortSignal | undefined) => (await until(source.valid(rejected), signal)).token.accessToken;
  const rejected = (event: RejectedRequest) => ctx.emit('token.rejected', { clientId, ...event });
  return {
    clientId,
    events: ctx.events,
    getToken: async (options) => {
      const signal = options?.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
      return (await until(source.valid(), signal)).handle;
    },
    fetch: authorizedFetch({
      fetch: opts.fetch,
      replay: opts.replay,
      current: () => source.usable()?.token.accessToken,
      token,
      invalidate,
      rejected,
    }),
    axios: (instance) => attachToAxios(instance, { replay: opts.replay, token, invalidate, rejected }),
    invalidate,
    revoke: () => revokeCurrent(ctx, source),
  };
}

/** `client`, with `toString`, JSON and `util.inspect` that name it and never show a secret. */
function describable(client: TokenClient, ctx: ClientContext): TokenClient {
  const { clientId, opts } = ctx;
  const describe = () => ({ clientId, tokenUrl: ctx.tokenUrl.known() ?? opts.issuer, authMethod: opts.authMethod, scope: opts.scope });
  Object.defineProperties(client, {
    toString: { value: () => `TokenClient(${clientId})` },
    toJSON: { value: describe },
    [inspect.custom]: { value: () => `TokenClient ${inspect(describe())}` },
  });
  return client;
}
