import { EventEmitter } from 'node:events';
import express, { type Request, type Response, type Router } from 'express';
import { isClientId, type Client } from '../core/client.js';
import { resolveAudience, resolveScopes, type ScopePolicy } from '../core/grant.js';
import { selectKeys } from '../core/key-set.js';
import { importPrivateKey, isSigningAlgorithm, SIGNING_ALGORITHMS, type PublicJwk, type SigningAlgorithm } from '../core/keys.js';
import type { IssuerStore } from '../core/store.js';
import { buildAccessTokenClaims, createTokenSigner, type TokenSigner } from '../core/token.js';
import {
  InvalidRequestError, OAuthError, TemporarilyUnavailableError, UnauthorizedClientError, UnsupportedGrantTypeError,
} from '../errors.js';
import {
  clientAuthenticationError, createClientAuthenticator, detectClientCredentials, type ClientAuthFailure,
  type ClientAuthMethod,
} from './client-auth.js';
import { createFailureLimiter, type FailureLimiter, type RateLimitOptions } from './rate-limit.js';
import { createFormReader, type Form } from './form.js';
import { sendJson, sendOAuthError } from './render.js';

/** What the claims hook is told about the token being issued. */
export interface ClaimsContext {
  client: Client;
  scopes: readonly string[];
  audience: readonly string[];
}

/** Options of {@link authorizationServer}. */
export interface AuthorizationServerOptions {
  /**
   * The issuer identifier: the absolute URL at which this router is mounted, for example
   * `https://auth.internal/oauth`. Sent as `iss` and in the metadata. https, or http on a loopback
   * host (localhost, 127.0.0.1, [::1]); no query, no fragment, no trailing slash. Required.
   */
  issuer: string;
  /** Where clients and keys live, usually `createKnexStore(knex)`. Required. */
  store: IssuerStore;
  /** Access-token lifetime in seconds when the client sets none. Default 300. */
  tokenLifetime?: number;
  /**
   * Upper bound of any token lifetime, per-client overrides included, in seconds. Default 3600.
   * A retired signing key stays in the JWKS at least this long plus one minute of clock skew (longer
   * if its stored `retention` says so); this retention is recorded with the keys the issuer signs
   * with, which is what `express-m2m keys list` reads.
   */
  maxTokenLifetime?: number;
  /**
   * `reject` (default): a request for a scope the client may not have fails with `invalid_scope`.
   * `downscope`: such a request gets the allowed part, echoed in the response's `scope`.
   */
  scopePolicy?: ScopePolicy;
  /**
   * Adds claims to each token. May be async. Reserved claims (`iss`, `sub`, `aud`, `exp`, `iat`,
   * `jti`, `client_id`, `scope`, ...) returned by the hook are ignored: they can never be overridden.
   */
  claims?: (context: ClaimsContext) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Algorithm of the key generated when the store holds none. ES256 (default), RS256 or PS256. */
  signingAlgorithm?: SigningAlgorithm;
  /** How long this instance keeps the key list before reading the store again, in seconds. Default 30. */
  keyCacheTtl?: number;
  /** `Cache-Control: max-age` of the JWKS response, in seconds. Default 300. */
  jwksMaxAge?: number;
  /** Brute-force protection for client authentication; false to switch off. Default: in memory. */
  rateLimit?: RateLimitOptions | false;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
}

/** Emitted after a token is issued. Holds no token. */
export interface TokenIssuedEvent {
  clientId: string;
  scopes: string[];
  audience: string[];
  expiresIn: number;
  jti: string;
  kid: string;
  method: ClientAuthMethod;
}

/** Emitted when client authentication fails. `clientId` is the id the request claimed, when it is well formed (1 to 128 printable ASCII characters). */
export interface AuthenticationFailedEvent {
  clientId: string | undefined;
  reason: ClientAuthFailure;
  method: ClientAuthMethod | undefined;
  address: string;
}

/** Emitted when a request is refused with 429. */
export interface RateLimitedEvent {
  clientId: string | undefined;
  address: string;
  retryAfter: number;
}

/** Emitted when a request fails for a server-side reason (store down, hook threw). */
export interface InternalErrorEvent {
  error: unknown;
  endpoint: 'token' | 'jwks';
}

/** Every event of {@link AuthorizationServer.events}, by name. */
export interface AuthorizationServerEventMap {
  'token.issued': TokenIssuedEvent;
  'client.authentication_failed': AuthenticationFailedEvent;
  'rate_limited': RateLimitedEvent;
  'internal_error': InternalErrorEvent;
}

/** A typed event emitter: events never carry secrets or tokens. */
export interface AuthorizationServerEvents {
  on<K extends keyof AuthorizationServerEventMap>(event: K, listener: (payload: AuthorizationServerEventMap[K]) => void): this;
  once<K extends keyof AuthorizationServerEventMap>(event: K, listener: (payload: AuthorizationServerEventMap[K]) => void): this;
  off<K extends keyof AuthorizationServerEventMap>(event: K, listener: (payload: AuthorizationServerEventMap[K]) => void): this;
}

/** The router returned by {@link authorizationServer}, with its events and a readiness check. */
export type AuthorizationServer = Router & {
  /** Subscribe to `token.issued`, `client.authentication_failed`, `rate_limited`, `internal_error`. */
  events: AuthorizationServerEvents;
  /** Resolves once a signing key exists and is loaded (creating one on first start). */
  ready(): Promise<void>;
  /**
   * The RFC 8414 metadata handler, for the host to mount at the location RFC 8414 §3.1 derives
   * from the issuer (`/.well-known/oauth-authorization-server` inserted before the issuer's path),
   * which a router mounted at that path cannot reach. {@link AuthorizationServer.metadataPath}
   * gives the path.
   *
   * @example
   * ```ts
   * app.get(oauth.metadataPath, oauth.metadata);  // '/.well-known/oauth-authorization-server/oauth'
   * ```
   */
  metadata: (req: Request, res: Response) => void;
  /** The RFC 8414 §3.1 metadata path for this issuer, for example `/.well-known/oauth-authorization-server/oauth`. */
  metadataPath: string;
};

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function checkIssuer(value: unknown): string {
  if (typeof value !== 'string') throw new TypeError('issuer is required: the absolute URL where the router is mounted');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError('issuer must be an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new TypeError('issuer must use https (http is accepted only for localhost and loopback addresses)');
  }
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) {
    throw new TypeError('issuer must not have a query or fragment');
  }
  if (value.endsWith('/')) throw new TypeError('issuer must not end with a slash');
  if (url.username !== '' || url.password !== '') throw new TypeError('issuer must not hold credentials');
  return value;
}

function checkSeconds(value: unknown, what: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new TypeError(`${what} must be an integer number of seconds from 1 to ${max}`);
  }
  return value;
}

interface LoadedKeys {
  signer: TokenSigner | undefined;
  /** Why the signing key could not be loaded (say, it cannot be decrypted); the JWKS is served all the same. */
  signerError: unknown;
  kid: string | undefined;
  jwks: { keys: PublicJwk[] };
  loadedAt: number;
}

interface TokenRequest {
  grantType: string;
  scope: string | undefined;
  resources: string[];
  audience: string | undefined;
}

/** Parameters that may appear once only (RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once"). */
const SINGLE_PARAMETERS = ['grant_type', 'scope', 'audience', 'client_id', 'client_secret'] as const;

/**
 * Creates the authorization server: an Express router with the token endpoint, the JWKS and the
 * RFC 8414 metadata, to mount at the issuer's path.
 *
 * - `POST /token`: the client credentials grant (RFC 6749 §4.4), client_secret_basic or
 *   client_secret_post, RFC 9068 JWT access tokens.
 * - `GET /jwks.json`: the public signing keys (RFC 7517).
 * - `GET /.well-known/oauth-authorization-server`: metadata (RFC 8414).
 *
 * @param options - See {@link AuthorizationServerOptions}; validated once, here.
 * @throws TypeError for a missing or malformed option.
 * @example
 * ```ts
 * const store = createKnexStore(knex);
 * await store.migrate();
 * app.use('/oauth', authorizationServer({ issuer: 'https://auth.internal/oauth', store }));
 * ```
 */
export function authorizationServer(options: AuthorizationServerOptions): AuthorizationServer {
  if (options === null || typeof options !== 'object') throw new TypeError('authorizationServer() needs an options object');
  const issuer = checkIssuer(options.issuer);
  const store = options.store;
  if (!store || typeof store !== 'object' || !store.clients || !store.keys) {
    throw new TypeError('store is required: use createKnexStore(knex) or an object implementing IssuerStore');
  }
  const maxTokenLifetime = checkSeconds(options.maxTokenLifetime, 'maxTokenLifetime', 3600, 86_400);
  const tokenLifetime = checkSeconds(options.tokenLifetime, 'tokenLifetime', Math.min(300, maxTokenLifetime), maxTokenLifetime);
  const keyCacheTtl = checkSeconds(options.keyCacheTtl, 'keyCacheTtl', 30, 3600);
  const jwksMaxAge = checkSeconds(options.jwksMaxAge, 'jwksMaxAge', 300, 86_400);
  const scopePolicy = options.scopePolicy ?? 'reject';
  if (scopePolicy !== 'reject' && scopePolicy !== 'downscope') throw new TypeError('scopePolicy must be "reject" or "downscope"');
  const claimsHook = options.claims;
  if (claimsHook !== undefined && typeof claimsHook !== 'function') throw new TypeError('claims must be a function');
  const signingAlgorithm = options.signingAlgorithm ?? 'ES256';
  if (!isSigningAlgorithm(signingAlgorithm)) throw new TypeError('signingAlgorithm must be ES256, RS256 or PS256');
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw new TypeError('clock must be a function returning milliseconds');
  const limiter: FailureLimiter | undefined = options.rateLimit === false ? undefined : createFailureLimiter(options.rateLimit ?? {});
  const realm = new URL(issuer).host;

  const events = new EventEmitter();
  const emit = <K extends keyof AuthorizationServerEventMap>(name: K, payload: AuthorizationServerEventMap[K]): void => {
    // A throwing listener must not turn a good answer into a failure.
    try { events.emit(name, payload); } catch { /* the host's listener failed; nothing to do here */ }
  };
  const authenticateClient = createClientAuthenticator(store.clients);

  // ---- keys: ensured once, read from the store at most every keyCacheTtl seconds ----
  let ensured: Promise<void> | undefined;
  let loaded: LoadedKeys | undefined;
  let loading: Promise<LoadedKeys> | undefined;
  const signers = new Map<string, TokenSigner>();

  function ensureKey(): Promise<void> {
    ensured ??= store.keys.ensure(signingAlgorithm, { retention: maxTokenLifetime + 60 }).catch((err: unknown) => {
      ensured = undefined;
      throw err;
    });
    return ensured;
  }

  async function loadKeys(): Promise<LoadedKeys> {
    await ensureKey();
    const now = clock();
    const view = selectKeys(await store.keys.list(), now, maxTokenLifetime + 60);
    let signer: TokenSigner | undefined;
    let signerError: unknown;
    if (view.signing) {
      const key = view.signing;
      signer = signers.get(key.kid);
      if (!signer) {
        try {
          // Import once per key, never per request.
          signer = createTokenSigner({ kid: key.kid, alg: key.alg, privateKey: importPrivateKey(key.privateKeyPem) });
          for (const old of signers.values()) old.dispose();
          signers.clear();
          signers.set(key.kid, signer);
        } catch (err) {
          signerError = err;
        }
      }
    }
    return {
      signer,
      signerError,
      kid: view.signing?.kid,
      jwks: { keys: view.published.map((k) => k.publicJwk) },
      loadedAt: now,
    };
  }

  async function currentKeys(): Promise<LoadedKeys> {
    if (keysAreFresh(loaded)) return loaded;
    loading ??= loadKeys().then(
      (keys) => { loaded = keys; return keys; },
      (err: unknown) => {
        // Keep serving the last good key set if the store is briefly unreachable.
        if (loaded) return loaded;
        throw new TemporarilyUnavailableError('signing keys are unavailable', { cause: err, headers: { 'Retry-After': '5' } });
      },
    ).finally(() => { loading = undefined; });
    return loading;
  }

  // ---- token endpoint steps ----
  const readForm = createFormReader({ maxBytes: 4096, maxParameters: 32 });

  function readTokenRequest(form: Form): TokenRequest {
    for (const name of SINGLE_PARAMETERS) {
      const values = form.get(name);
      if (values !== undefined && values.length > 1) throw new InvalidRequestError(`the ${name} parameter is repeated`);
    }
    const grantType = form.get('grant_type')?.[0];
    if (grantType === undefined || grantType === '') throw new InvalidRequestError('the grant_type parameter is missing');
    return { grantType, scope: form.get('scope')?.[0], resources: form.get('resource') ?? [], audience: form.get('audience')?.[0] };
  }

  function keysAreFresh(keys: LoadedKeys | undefined): keys is LoadedKeys {
    return keys !== undefined && clock() - keys.loadedAt < keyCacheTtl * 1000;
  }

  async function token(req: Request, res: Response): Promise<void> {
    const form = await readForm(req, res);
    const request = readTokenRequest(form);
    if (request.grantType !== 'client_credentials') {
      throw new UnsupportedGrantTypeError('only the client_credentials grant is supported');
    }
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const presented = detectClientCredentials(req.headers.authorization,
      { clientId: form.get('client_id')?.[0], clientSecret: form.get('client_secret')?.[0] });
    // Only well-formed ids become counter keys: a 10 kB id must not become a 10 kB Redis key.
    const claimedId = isClientId(presented.clientId) ? presented.clientId : undefined;
    if (limiter) {
      const wait = await limiter.blockedFor(claimedId, address);
      if (wait > 0) {
        emit('rate_limited', { clientId: claimedId, address, retryAfter: wait });
        throw new TemporarilyUnavailableError('too many failed client authentications; retry later',
          { status: 429, headers: { 'Retry-After': String(wait) } });
      }
    }
    const outcome = await authenticateClient(req, res, presented);
    if (!outcome.ok) {
      // Only a well-formed id reaches the event: a hostile one (control characters, 3 kB) would
      // otherwise flow into the host's logs.
      emit('client.authentication_failed', { clientId: claimedId, reason: outcome.reason, method: outcome.method, address });
      if (limiter) await limiter.recordFailure(claimedId, address);
      throw clientAuthenticationError(outcome.method, realm);
    }
    const client = outcome.client;
    if (!client.grantTypes.includes('client_credentials')) {
      throw new UnauthorizedClientError('the client is not allowed the client_credentials grant');
    }
    const scopes = resolveScopes(client, request.scope, scopePolicy);
    const audience = resolveAudience(client, request.resources, request.audience);
    const lifetime = Math.min(client.tokenLifetime ?? tokenLifetime, maxTokenLifetime);
    const hookClaims = claimsHook ? await claimsHook({ client, scopes, audience }) : undefined;
    // The common case, a fresh key set, skips a promise and a turn of the microtask queue.
    const keys = keysAreFresh(loaded) ? loaded : await currentKeys();
    if (!keys.signer || keys.kid === undefined) {
      if (keys.signerError !== undefined) {
        throw new TemporarilyUnavailableError('signing keys are unavailable', { cause: keys.signerError, headers: { 'Retry-After': '5' } });
      }
      throw new TemporarilyUnavailableError('no signing key is active', { headers: { 'Retry-After': '5' } });
    }
    const claims = buildAccessTokenClaims({
      issuer, clientId: client.clientId, audience, scopes, lifetime, now: clock(),
      extraClaims: hookClaims === undefined ? client.claims : { ...client.claims, ...hookClaims },
    });
    const accessToken = await keys.signer(claims);
    sendJson(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: lifetime, scope: claims.scope });
    if (events.listenerCount('token.issued') > 0) {
      emit('token.issued', {
        clientId: client.clientId, scopes, audience, expiresIn: lifetime, jti: claims.jti as string, kid: keys.kid,
        method: outcome.method,
      });
    }
  }

  function tokenHandler(req: Request, res: Response): void {
    token(req, res).catch((err: unknown) => {
      if (!(err instanceof OAuthError) || err.status >= 500) emit('internal_error', { error: err, endpoint: 'token' });
      sendOAuthError(res, err);
    });
  }

  function methodNotAllowed(allow: string) {
    return function rejectMethod(_req: Request, res: Response): void {
      sendOAuthError(res, new InvalidRequestError(`this endpoint accepts ${allow} only`, { status: 405, headers: { Allow: allow } }));
    };
  }

  function jwks(_req: Request, res: Response): void {
    currentKeys().then(
      (keys) => {
        res.status(200).set('Cache-Control', `public, max-age=${jwksMaxAge}`).type('application/jwk-set+json').send(JSON.stringify(keys.jwks));
      },
      (err: unknown) => {
        emit('internal_error', { error: err, endpoint: 'jwks' });
        sendOAuthError(res, err);
      },
    );
  }

  const metadataBody = JSON.stringify({
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks.json`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    response_types_supported: [],
    // Tokens may be signed with any supported algorithm after a rotation.
    access_token_signing_alg_values_supported: [...SIGNING_ALGORITHMS],
  });

  function metadata(_req: Request, res: Response): void {
    res.status(200).set('Cache-Control', 'public, max-age=3600').type('application/json').send(metadataBody);
  }

  const router = express.Router({ strict: false, caseSensitive: true }) as AuthorizationServer;
  router.post('/token', tokenHandler);
  router.all('/token', methodNotAllowed('POST'));
  router.get('/jwks.json', jwks);
  router.all('/jwks.json', methodNotAllowed('GET'));
  router.get('/.well-known/oauth-authorization-server', metadata);
  router.all('/.well-known/oauth-authorization-server', methodNotAllowed('GET'));
  router.events = events as unknown as AuthorizationServerEvents;
  router.ready = async () => { await currentKeys(); };
  router.metadata = metadata;
  const issuerPath = new URL(issuer).pathname;
  router.metadataPath = `/.well-known/oauth-authorization-server${issuerPath === '/' ? '' : issuerPath}`;
  return router;
}
