import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createKeySource, type FetchFunction } from '../core/jwks.js';
import { checkRemoteUrl, RETRY_AFTER_SECONDS } from '../core/urls.js';
import {
  checkAlgorithms, createTokenVerifier, type AsymmetricAlgorithm, type ClaimRequirement,
  type VerifiedAccessToken,
} from '../core/verify.js';
import {
  InsufficientScopeError, InvalidRequestError, InvalidTokenError, OAuthError, TemporarilyUnavailableError, TokenRequiredError,
} from '../errors.js';
import { checkRequiredScopes, hasScopes, type ScopeMatch } from '../core/scope.js';
import {
  booleanOption, checkOptions, choiceOption, functionOption, InvalidOptionError, numberOption,
} from '../core/options.js';
import { NO_STORE_HEADERS, sendOAuthError } from './render.js';
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
}

/** RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const BEARER_SCHEME = /^Bearer(?:[ ,]|$)/i;
/** RFC 9110 §11.1: auth-scheme = token, followed by a space or nothing. */
const OTHER_SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?: |$)/;
/** Characters allowed in a quoted `realm` value here: printable ASCII without `"` and `\`. */
const REALM = /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,200}$/;

const OPTION_NAMES: readonly (keyof ResourceServerOptions)[] = [
  'issuer', 'audience', 'jwksUri', 'algorithms', 'clockTolerance', 'maxTokenAge', 'scopeClaim', 'match', 'optional', 'strict', 'claims',
  'isRevoked', 'jwksTimeout', 'jwksCacheMaxAge', 'jwksCooldown', 'jwksServeStale', 'tokenCacheSize', 'realm', 'errors',
  'allowHttp', 'fetch', 'clock',
];
const MATCHES: readonly ScopeMatch[] = ['all', 'any'];

const seconds = (value: unknown, name: string, fallback: number, min: number, max: number): number =>
  numberOption(value, name, { fallback, min, max, unit: 'seconds' });

const QUERY_TOKEN = /[?&]access_token=/;

/**
 * RFC 6750 §2: a client must not use more than one method to send the token. The query string
 * and a body the host already parsed are looked at only for that (never read as a token); the
 * URL is scanned before `req.query` is parsed, which costs every request.
 */
function hasOtherTokenParameter(req: Request): boolean {
  if (QUERY_TOKEN.test(req.url) && req.query.access_token !== undefined) return true;
  const body: unknown = req.body;
  return body !== null && typeof body === 'object' && Object.hasOwn(body, 'access_token');
}

/**
 * Reads the access token from the Authorization header only (RFC 6750 §2.1; never the query
 * string or the body, which leak into logs).
 *
 * @returns The token, or undefined when the request carries no Bearer credentials.
 * @throws {@link InvalidRequestError} for malformed Bearer credentials, two tokens, or two
 *   Authorization headers (Node keeps only the first, so they are counted in `rawHeaders`).
 */
function readBearerToken(req: Request): string | undefined {
  const value = req.headers.authorization;
  if (value === undefined) return undefined;
  const raw = req.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 13 && name.toLowerCase() === 'authorization') count++;
  }
  if (count > 1) throw new InvalidRequestError('the request has more than one Authorization header');
  const match = BEARER.exec(value);
  if (match) {
    if (hasOtherTokenParameter(req)) throw new InvalidRequestError('the request presents an access token in more than one way');
    return match[1];
  }
  if (!BEARER_SCHEME.test(value)) {
    // Another authentication scheme (Basic, DPoP, ...): no Bearer credentials were presented.
    if (OTHER_SCHEME.test(value)) return undefined;
  } else if (value.slice(6).split(/[\s,]+/).filter((part) => part !== '').length > 1) {
    throw new InvalidRequestError('the request holds more than one Bearer token');
  }
  throw new InvalidRequestError('the Authorization header is not a well-formed Bearer credential');
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
  checkOptions<ResourceServerOptions>(options, 'createResourceServer()', OPTION_NAMES);
  if (options.issuer === undefined) throw new InvalidOptionError('issuer', 'issuer is required: the iss value(s) of accepted tokens');
  if (options.audience === undefined) throw new InvalidOptionError('audience', 'audience is required: the aud value(s) this resource server answers to');
  const allowHttp = booleanOption(options.allowHttp, 'allowHttp', false);
  const jwksUri = options.jwksUri === undefined ? undefined : checkRemoteUrl(options.jwksUri, 'jwksUri', allowHttp);
  const clock = functionOption(options.clock, 'clock', Date.now);
  const fetchFn = functionOption(options.fetch, 'fetch');
  checkAlgorithms(options.algorithms);
  const jwksTimeout = seconds(options.jwksTimeout, 'jwksTimeout', 5, 0.001, 60);
  const jwksCacheMaxAge = seconds(options.jwksCacheMaxAge, 'jwksCacheMaxAge', 600, 1, 86_400);
  const jwksCooldown = seconds(options.jwksCooldown, 'jwksCooldown', 30, 0, 86_400);
  const jwksServeStale = seconds(options.jwksServeStale, 'jwksServeStale', 0, 0, 7 * 86_400);
  const defaultMatch = choiceOption(options.match, 'match', MATCHES, 'all');
  const defaultOptional = booleanOption(options.optional, 'optional', false);
  const errorMode = choiceOption(options.errors, 'errors', ['respond', 'next'] as const, 'respond');

  // The verifier validates issuer, audience, algorithms, clock tolerance, claims and cache size.
  const verifier = createTokenVerifier({
    issuer: options.issuer,
    audience: options.audience,
    getKey: (request) => keySource.getKey(request),
    isKeyCurrent: (key) => keySource.isCurrent(key),
    ...(options.algorithms !== undefined ? { algorithms: options.algorithms } : {}),
    ...(options.clockTolerance !== undefined ? { clockTolerance: options.clockTolerance } : {}),
    ...(options.maxTokenAge !== undefined ? { maxTokenAge: options.maxTokenAge } : {}),
    ...(options.scopeClaim !== undefined ? { scopeClaim: options.scopeClaim } : {}),
    ...(options.strict !== undefined ? { strict: options.strict } : {}),
    ...(options.claims !== undefined ? { claims: options.claims } : {}),
    ...(options.isRevoked !== undefined ? { isRevoked: options.isRevoked } : {}),
    ...(options.tokenCacheSize !== undefined ? { tokenCacheSize: options.tokenCacheSize } : {}),
    clock,
  });
  const issuers = typeof options.issuer === 'string' ? [options.issuer] : [...options.issuer];
  if (jwksUri === undefined) {
    for (const issuer of issuers) checkRemoteUrl(issuer, `issuer ${JSON.stringify(issuer)} (used for discovery without jwksUri)`, allowHttp);
  }
  const keySource = createKeySource({
    issuers, jwksUri, timeout: jwksTimeout * 1000, cacheMaxAge: jwksCacheMaxAge * 1000, cooldown: jwksCooldown * 1000,
    serveStale: jwksServeStale * 1000, allowHttp, fetch: fetchFn, clock,
  });
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  const firstAudience = audiences[0] as string;
  const realm = options.realm === undefined ? (REALM.test(firstAudience) ? firstAudience : 'api') : options.realm;
  if (typeof realm !== 'string' || !REALM.test(realm)) {
    throw new InvalidOptionError('realm', 'realm must be 1 to 200 printable ASCII characters without quotes or backslashes');
  }

  /** RFC 6750 §3: `Bearer realm="...", error="...", error_description="...", scope="..."`. */
  function challenge(error?: OAuthError, scopes?: readonly string[]): string {
    let value = `Bearer realm="${realm}"`;
    if (error) value += `, error="${error.code}", error_description="${error.description}"`;
    if (scopes) value += `, scope="${scopes.join(' ')}"`;
    return value;
  }

  /** The error with the headers its response needs: a challenge for 400, 401 and 403 (RFC 6750 §3). */
  function toResponseError(err: unknown): OAuthError {
    if (err instanceof TokenRequiredError) {
      return new TokenRequiredError(err.description, { headers: { 'WWW-Authenticate': challenge() } });
    }
    if (err instanceof InsufficientScopeError) {
      return new InsufficientScopeError(err.description, err.scopes, { headers: { 'WWW-Authenticate': challenge(err, err.scopes) } });
    }
    if (err instanceof InvalidTokenError || err instanceof InvalidRequestError) {
      const Class = err instanceof InvalidTokenError ? InvalidTokenError : InvalidRequestError;
      return new Class(err.description, { cause: err.cause, headers: { ...err.headers, 'WWW-Authenticate': challenge(err) } });
    }
    if (err instanceof OAuthError) return err;
    // Nothing else should reach here; if it does, it is ours, not the caller's: 503, never 500.
    return new TemporarilyUnavailableError('the token could not be checked', { cause: err, headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } });
  }

  function fail(res: Response, next: NextFunction, err: unknown): void {
    const error = toResponseError(err);
    if (errorMode === 'next') {
      next(error);
    } else if (error instanceof TokenRequiredError) {
      res.status(401).set(NO_STORE_HEADERS).set(error.headers).end();
    } else {
      sendOAuthError(res, error);
    }
  }

  function guard(required: readonly string[] | undefined, match: ScopeMatch, optional: boolean): RequestHandler {
    const missingScope = match === 'any' && required && required.length > 1
      ? 'the token has none of the accepted scopes' : 'the token lacks a required scope';
    /** Lets the request through when the verified token grants the scopes. */
    function admit(auth: VerifiedAccessToken, req: Request, res: Response, next: NextFunction): void {
      if (required && !hasScopes(auth.scopes, required, match)) {
        fail(res, next, new InsufficientScopeError(missingScope, required));
        return;
      }
      setRequestAuth(req, auth);
      next();
    }
    // Not an async function: a repeated token is answered from the cache without a promise,
    // neither ours nor the one Express would wait on.
    return function requireScopeMiddleware(req: Request, res: Response, next: NextFunction): void {
      let token: string | undefined;
      let cached: VerifiedAccessToken | undefined;
      try {
        token = readBearerToken(req);
        if (token === undefined) {
          if (optional) {
            next();
            return;
          }
          throw new TokenRequiredError('an access token is required');
        }
        cached = verifier.cached(token);
      } catch (err) {
        fail(res, next, err);
        return;
      }
      if (cached !== undefined) {
        admit(cached, req, res, next);
        return;
      }
      verifier.verify(token).then((auth) => admit(auth, req, res, next), (err: unknown) => fail(res, next, err));
    };
  }

  function checkRouteOptions(value: unknown, what: string, names: readonly ('match' | 'optional')[]): { match: ScopeMatch; optional: boolean } {
    const route = value === undefined ? {} : checkOptions<RequireScopeOptions>(value, what, names);
    return {
      match: choiceOption(route.match, 'match', MATCHES, defaultMatch),
      optional: booleanOption(route.optional, 'optional', defaultOptional),
    };
  }

  return {
    requireScope(scopes, routeOptions) {
      const required = checkRequiredScopes(scopes, 'scopes');
      const route = checkRouteOptions(routeOptions, 'requireScope() route options', ['match', 'optional']);
      return guard(required, route.match, route.optional);
    },
    authenticate(routeOptions) {
      const route = checkRouteOptions(routeOptions, 'authenticate() options', ['optional']);
      return guard(undefined, defaultMatch, route.optional);
    },
    verify: (token) => verifier.verify(token),
    refreshKeys: () => keySource.refresh(),
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
