import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { FetchFunction } from '../core/jwks.js';
import type { AsymmetricAlgorithm, ClaimRequirement, VerifiedAccessToken } from '../core/verify.js';
import { InsufficientScopeError, TokenRequiredError } from '../errors.js';
import { checkRequiredScopes, hasScopes, type ScopeMatch } from '../core/scope.js';
import { readBearerToken } from './bearer.js';
import { resolveGuardOptions, resolveRouteOptions } from './guard-settings.js';
import { createGuardEmitter, type ResourceServerEvents } from './guard-events.js';
import { startGuardCheck, type GuardCheck } from './guard-observer.js';
import { createRefusal } from './guard-response.js';
import { setRequestAuth } from './request-auth.js';

// Re-exported so that loading this module's declarations always loads the req.auth augmentation.
export type { AuthenticatedRequest, AuthenticatedRequestFields } from './request-auth.js';

/** Options of {@link createResourceServer} and {@link requireScope}. */
export interface ResourceServerOptions {
  /**
   * The accepted token issuer(s): each compared exactly with `iss` (RFC 7519 §4.1.1), and the base
   * of discovery when `jwksUri` is absent. Required: there is no default.
   */
  issuer: string | readonly string[];
  /**
   * The audience(s) this resource server answers to: the token's `aud` must hold at least one
   * (RFC 7519 §4.1.3, RFC 9068 §4). Required: there is no default.
   */
  audience: string | readonly string[];
  /**
   * Where the issuer publishes its keys (RFC 7517 §5). Absent: discovered from each issuer's
   * metadata (OpenID Connect Discovery 1.0, RFC 8414), whose `issuer` must equal the configured one.
   */
  jwksUri?: string;
  /** Accepted signing algorithms, asymmetric only (RFC 8725 §3.1). Default `['RS256', 'PS256', 'ES256']`. */
  algorithms?: readonly AsymmetricAlgorithm[];
  /** Allowed clock skew when checking `exp`, `nbf` and `iat`, in seconds. Default 5. */
  clockTolerance?: number;
  /**
   * Refuse tokens issued (`iat`) longer ago than this, in seconds, whatever their `exp`; tokens
   * without `iat` are then refused. Default: no limit.
   */
  maxTokenAge?: number;
  /**
   * The claim holding the granted scopes, a space-delimited string or an array of strings.
   * Default `scope` (RFC 9068 §2.2.3); `scp` (Okta, Entra ID), `roles`, `permissions` (Auth0) or any name.
   */
  scopeClaim?: string;
  /** `all` (default): every listed scope is required. `any`: one of them is enough. */
  match?: ScopeMatch;
  /**
   * When true, a request with no Bearer credentials at all passes through without `req.auth`
   * (the route decides); a request that presents a token must still present a valid one with the
   * scopes. Default false.
   */
  optional?: boolean;
  /** RFC 9068 in full: `typ: at+jwt` and the `sub`, `client_id`, `iat`, `jti` claims are required. Default false. */
  strict?: boolean;
  /**
   * Extra claim checks, by claim name: a value the claim must equal (or an array claim must hold),
   * or a predicate `(value, payload) => boolean`. Run once per token: a cached token is not checked
   * again, so predicates must be pure.
   */
  claims?: Readonly<Record<string, ClaimRequirement>>;
  /**
   * Revocation hook, run on every request (cached tokens included): resolve true to refuse the
   * token with 401 `invalid_token`. If it throws or rejects, the request is answered 503.
   */
  isRevoked?: (token: VerifiedAccessToken) => boolean | Promise<boolean>;
  /**
   * Refuse revoked tokens, as the issuer's revocation list says (this package's issuer serves it at
   * `<issuer>/revocations`): `true`, or settings. The list is read in the background, every
   * `refreshInterval`; each request, cached tokens included, is checked against the copy held here,
   * without a network call. A token revoked at the issuer (RFC 7009 `/revoke`, a client disabled,
   * deleted, or `clients revoke-tokens`) is refused (401 `invalid_token`) within `refreshInterval`
   * plus one read. When the list cannot be read for longer than `maxStale`, every token is refused
   * with 503 `temporarily_unavailable` (fail closed). Default off.
   */
  revocations?: boolean | RevocationListOptions;
  /** Deadline of one JWKS or metadata request, in seconds. Default 5. A timeout fails closed (503). */
  jwksTimeout?: number;
  /** How long a fetched JWKS is used before it is fetched again, in seconds. Default 600. */
  jwksCacheMaxAge?: number;
  /**
   * Least time between two JWKS refetches caused by a token whose `kid` is not in the cached set,
   * in seconds. Default 30. Bounds the requests a flood of random kids can cause.
   */
  jwksCooldown?: number;
  /**
   * For how long past `jwksCacheMaxAge` the last fetched keys may still be used while the JWKS is
   * unreachable, in seconds. Default 0 (off): a key withdrawn during an outage would stay trusted.
   */
  jwksServeStale?: number;
  /** Number of verified tokens kept in the LRU cache (by whole token, never past `exp`). 0 switches it off. Default 1000. */
  tokenCacheSize?: number;
  /** The `realm` of `WWW-Authenticate` challenges (RFC 6750 §3). Default: the first audience (`api` if it cannot be quoted as is). */
  realm?: string;
  /**
   * `respond` (default): errors are answered here, as RFC 6750 §3 and JSON `{ error,
   * error_description }`. `next`: errors go to `next(err)`; each carries `status`, `code` and
   * `headers` (`WWW-Authenticate`, `Retry-After`) for the host's own error handler.
   */
  errors?: 'respond' | 'next';
  /** Allow http (not only https) JWKS and metadata URLs off loopback hosts. Default false. */
  allowHttp?: boolean;
  /** The `fetch` for metadata and JWKS requests. Default: the platform's `fetch` (metadata) and jwks-rsa's client (JWKS). */
  fetch?: FetchFunction;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
}

/** Settings of the `revocations` option of {@link ResourceServerOptions}. */
export interface RevocationListOptions {
  /** The revocation list's URL. Default `<issuer>/revocations` for each issuer; only with a single issuer. */
  uri?: string;
  /** How often the list is read, in seconds. Default 10. */
  refreshInterval?: number;
  /**
   * How long the guard goes on answering from its copy when the list cannot be read, in seconds;
   * after that every token is refused with 503 until a read succeeds. Default 60; at least `refreshInterval`.
   */
  maxStale?: number;
  /**
   * The `fetch` that reads the list. This package's issuer answers it only to a Bearer token with
   * the `m2m:revocations` scope: pass the `fetch` of a `tokenClient()` that gets one. Default: the
   * resource server's `fetch`.
   */
  fetch?: FetchFunction;
}

/** Per-route options of {@link ResourceServer.requireScope}. */
export interface RequireScopeOptions {
  /** Overrides the resource server's `match` for this route. */
  match?: ScopeMatch;
  /** Overrides the resource server's `optional` for this route. */
  optional?: boolean;
}

/** Per-route options of {@link ResourceServer.authenticate}. */
export interface AuthenticateOptions {
  /** Overrides the resource server's `optional` for this route. */
  optional?: boolean;
}

/** A configured resource server: its middleware share one JWKS client per URI and one token cache. */
export interface ResourceServer {
  /**
   * Middleware that lets a request through only with a valid Bearer token granting `scopes`
   * (all of them, or any with `match: 'any'`), setting `req.auth`.
   *
   * @param scopes - One scope, a space-delimited list, or an array (RFC 6749 §3.3 tokens).
   * @throws TypeError for an empty or malformed scope list.
   */
  requireScope(scopes: string | readonly string[], options?: RequireScopeOptions): RequestHandler;
  /** Middleware that requires a valid Bearer token, whatever its scopes, setting `req.auth`. */
  authenticate(options?: AuthenticateOptions): RequestHandler;
  /**
   * Verifies a token outside Express (a WebSocket upgrade, a queue message).
   *
   * @throws {@link InvalidTokenError} for a bad token; {@link TemporarilyUnavailableError} when
   *   keys cannot be fetched.
   */
  verify(token: string): Promise<VerifiedAccessToken>;
  /**
   * Fetches every key set in use again now, whatever its age or a recent failure: after a key was
   * revoked at the issuer, call it so that tokens signed with that key are refused at once, even
   * those already cached here.
   *
   * @throws {@link TemporarilyUnavailableError} when a key set cannot be fetched.
   */
  refreshKeys(): Promise<void>;
  /**
   * Reads the revocation list of every issuer now (with the `revocations` option; nothing
   * without it), so that a revocation made a moment ago is known at once.
   *
   * @throws {@link TemporarilyUnavailableError} when a list cannot be read.
   */
  refreshRevocations(): Promise<void>;
  /**
   * Typed events: `token.accepted`, `token.refused` (with the reason, never the token),
   * `keys.fetched`, `keys.unavailable`, `revocations.fetched` and `revocations.unavailable`. A
   * listener that throws never breaks a request.
   */
  readonly events: ResourceServerEvents;
}

/**
 * Creates a resource server: middleware that protects routes of an existing Express app with
 * Bearer JWT access tokens (RFC 6750, RFC 9068), checked with keys from the issuer's JWKS through
 * jwks-rsa, with one JWKS client per JWKS URI however many routes use it.
 *
 * Answers as RFC 6750 §3 says: no credentials → 401 with `WWW-Authenticate: Bearer realm="..."`;
 * malformed credentials or two tokens → 400 `invalid_request`; a token that is malformed, forged,
 * expired, for another audience or issuer, or signed with an algorithm not allowed → 401
 * `invalid_token`; missing scope → 403 `insufficient_scope` with `scope="..."`; keys unavailable →
 * 503 `temporarily_unavailable` with `Retry-After`.
 *
 * @param options - See {@link ResourceServerOptions}; validated once, here.
 * @throws TypeError for a missing or malformed option (`issuer` and `audience` are required).
 * @example
 * ```ts
 * const rs = createResourceServer({ issuer: 'https://auth.internal/oauth', audience: 'https://reports.internal' });
 * app.get('/reports', rs.requireScope('reports:read'), (req, res) => res.json({ client: req.auth?.clientId }));
 * app.post('/reports', rs.requireScope(['reports:write']), handler);
 * ```
 */
export function createResourceServer(options: ResourceServerOptions): ResourceServer {
  const emitter = createGuardEmitter();
  const settings = resolveGuardOptions(options, (outcome) => emitter.fetched(outcome), (outcome) => emitter.revocationsRead(outcome));
  const { verifier, keySource } = settings;
  const respond = createRefusal(settings.realm, settings.errors);
  function fail(check: GuardCheck, res: Response, next: NextFunction, err: unknown, clientId?: string): void {
    check.refused(err, clientId);
    respond(res, next, err);
  }

  function guard(required: readonly string[] | undefined, match: ScopeMatch, optional: boolean): RequestHandler {
    const missingScope = match === 'any' && required && required.length > 1
      ? 'the token has none of the accepted scopes' : 'the token lacks a required scope';
    /** Lets the request through when the verified token grants the scopes. */
    function admit(check: GuardCheck, auth: VerifiedAccessToken, req: Request, res: Response, next: NextFunction, cached: boolean): void {
      if (required && !hasScopes(auth.scopes, required, match)) {
        fail(check, res, next, new InsufficientScopeError(missingScope, required), auth.clientId);
        return;
      }
      setRequestAuth(req, auth);
      check.accepted(auth, cached);
      next();
    }
    // Not an async function: a repeated token is answered from the cache without a promise,
    // neither ours nor the one Express would wait on.
    return function requireScopeMiddleware(req: Request, res: Response, next: NextFunction): void {
      const check = startGuardCheck(emitter, req);
      let token: string | undefined;
      let cached: VerifiedAccessToken | undefined;
      try {
        token = readBearerToken(req);
        if (token === undefined) {
          if (optional) {
            check.anonymous();
            next();
            return;
          }
          throw new TokenRequiredError('an access token is required');
        }
        cached = verifier.cached(token);
      } catch (err) {
        fail(check, res, next, err);
        return;
      }
      if (cached !== undefined) {
        check.cacheHit();
        admit(check, cached, req, res, next, true);
        return;
      }
      const presented = token;
      check.verify(() => verifier.verify(presented))
        .then((auth) => admit(check, auth, req, res, next, false), (err: unknown) => fail(check, res, next, err));
    };
  }

  return {
    requireScope(scopes, routeOptions) {
      const required = checkRequiredScopes(scopes, 'scopes');
      const route = resolveRouteOptions(routeOptions, 'requireScope() route options', ['match', 'optional'], settings);
      return guard(required, route.match, route.optional);
    },
    authenticate(routeOptions) {
      const route = resolveRouteOptions(routeOptions, 'authenticate() options', ['optional'], settings);
      return guard(undefined, settings.match, route.optional);
    },
    async verify(token) {
      try {
        const cached = typeof token === 'string' && verifier.cached(token) !== undefined;
        const auth = await verifier.verify(token);
        emitter.accepted(auth, undefined, cached);
        return auth;
      } catch (err) {
        emitter.refused(err, undefined);
        throw err;
      }
    },
    refreshKeys: () => keySource.refresh(),
    async refreshRevocations() {
      await Promise.all([...settings.revocationViews.values()].map((view) => view.refresh()));
    },
    events: emitter.events,
  };
}

/**
 * Middleware that lets a request through only with a valid Bearer access token granting `scopes`
 * (RFC 6750, RFC 9068), setting `req.auth = { token, header, payload, clientId, scopes }`.
 *
 * Each call creates its own resource server (JWKS client, token cache). Routes that share an
 * issuer should share one through {@link createResourceServer} instead, so that the JWKS is
 * fetched and each token verified once for all of them.
 *
 * @param scopes - One scope, a space-delimited list, or an array (RFC 6749 §3.3 tokens).
 * @param options - See {@link ResourceServerOptions}; `issuer` and `audience` are required.
 * @throws TypeError for a missing or malformed option or scope.
 * @example
 * ```ts
 * app.get('/reports', requireScope('reports:read', {
 *   issuer: 'https://auth.internal/oauth', audience: 'https://reports.internal' }), handler);
 * ```
 */
export function requireScope(scopes: string | readonly string[], options: ResourceServerOptions): RequestHandler {
  const required = checkRequiredScopes(scopes, 'scopes');
  return createResourceServer(options).requireScope(required);
}
