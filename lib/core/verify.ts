import type { KeyObject } from 'node:crypto';
import { InvalidTokenError, OAuthError } from '../errors.js';
import { jwtWorker } from './jwt-worker.js';
import {
  booleanOption, functionOption, InvalidOptionError, numberOption, stringListOption,
} from './options.js';
import { createTokenCache } from './token-cache.js';
import type { RevocationStatus, RevocationView } from './revocation-view.js';
import { checkProfile, parseToken, refuseEarly, refusal, type TokenProfile } from './token-profile.js';
import { unavailable } from './unavailable.js';

export type { ScopeMatch } from './scope.js';

/**
 * Asymmetric JWS algorithms (RFC 7518 §3.1) a resource server can verify with a JWKS. Symmetric
 * (`HS*`) and `none` are never accepted: a JWKS holds public keys only, and RFC 8725 §3.1 asks
 * verifiers to allow-list algorithms.
 */
export type AsymmetricAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

/** Every {@link AsymmetricAlgorithm}. */
export const ASYMMETRIC_ALGORITHMS: readonly AsymmetricAlgorithm[] = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512',
];

/** Algorithms accepted when none are configured: what standard issuers sign access tokens with. */
export const DEFAULT_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['RS256', 'PS256', 'ES256'];

/** The JOSE header of a verified access token (RFC 7515 §4). */
export interface AccessTokenHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly typ?: string;
  readonly [parameter: string]: unknown;
}

/** The claims of a verified access token (RFC 7519 §4.1, RFC 9068 §2.2). */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly aud: string | readonly string[];
  /** Expiry, in seconds since the epoch. Always present: tokens without `exp` are refused. */
  readonly exp: number;
  readonly sub?: string;
  readonly client_id?: string;
  readonly iat?: number;
  readonly nbf?: number;
  readonly jti?: string;
  readonly [claim: string]: unknown;
}

/**
 * A verified access token, as `req.auth` holds it. Frozen: the same object may serve several
 * requests that carry the same token.
 */
export interface VerifiedAccessToken {
  /** The compact JWT as received. */
  readonly token: string;
  readonly header: AccessTokenHeader;
  readonly payload: AccessTokenClaims;
  /**
   * The OAuth client the token was issued to: `client_id` (RFC 9068 §2.2), else `azp` (OpenID
   * Connect, Keycloak, Entra ID v2), else `cid` (Okta), else `appid` (Entra ID v1); undefined
   * when the token names none.
   */
  readonly clientId: string | undefined;
  /** The scopes the token grants, read from the configured scope claim. */
  readonly scopes: readonly string[];
}

/**
 * A required claim value, or a predicate over the claim's value. A value matches a claim equal to
 * it, or an array claim that holds it. A predicate is given the claim's value (undefined when the
 * claim is absent) and the whole payload, and must return true to accept the token; it must be
 * pure, since a cached token is not checked again.
 */
export type ClaimRequirement =
  | string
  | number
  | boolean
  | ((value: unknown, payload: AccessTokenClaims) => boolean);

/** What the verifier asks for when it needs a key. */
export interface KeyRequest {
  /** The token's `iss`, already checked against the configured issuers. */
  issuer: string;
  /** The header's `kid`, when present. */
  kid: string | undefined;
  /** The header's `alg`, already checked against the allow-list. */
  alg: AsymmetricAlgorithm;
}

/** A public key to verify with, and the `alg` its JWK declared (RFC 7517 §4.4), if any. */
export interface VerificationKey {
  key: KeyObject;
  alg: string | undefined;
}

/** Options of {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  /** Accepted `iss` values (exact string match). At least one. */
  issuer: string | readonly string[];
  /** Accepted `aud` values; the token's `aud` must hold at least one. At least one. */
  audience: string | readonly string[];
  /** Finds the key for a token. Throws {@link InvalidTokenError} for an unknown key, anything else when keys are unavailable. */
  getKey: (request: KeyRequest) => Promise<VerificationKey>;
  /**
   * Whether a key returned by `getKey` earlier is still published. A cached token whose key is no
   * longer current is verified again (and refused if its key is gone). Default: always current.
   */
  isKeyCurrent?: (key: VerificationKey) => boolean;
  /** Accepted `alg` values, asymmetric only. Default RS256, PS256, ES256. */
  algorithms?: readonly AsymmetricAlgorithm[];
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. Default 5. */
  clockTolerance?: number;
  /**
   * Refuse tokens issued (`iat`) longer ago than this, in seconds, whatever their `exp`
   * (jsonwebtoken's `maxAge`); tokens without `iat` are then refused. Default: no limit.
   */
  maxTokenAge?: number;
  /** The claim holding the granted scopes: a space-delimited string or an array of strings. Default `scope`. */
  scopeClaim?: string;
  /** RFC 9068 §2 and §4 in full: `typ` must be `at+jwt`, and `sub`, `client_id`, `iat`, `jti` are required. Default false. */
  strict?: boolean;
  /** Extra claim checks, by claim name. */
  claims?: Readonly<Record<string, ClaimRequirement>>;
  /** Called for every request, cached tokens included; true refuses the token with `invalid_token`. */
  isRevoked?: (token: VerifiedAccessToken) => boolean | Promise<boolean>;
  /**
   * The revocation view of an issuer, when it has one (see `createRevocationView`): checked for
   * every request, cached tokens included, synchronously while it is fresh.
   */
  revocationView?: (issuer: string) => RevocationView | undefined;
  /** How many verified tokens to keep, least recently used evicted first. 0 switches the cache off. Default 1000. */
  tokenCacheSize?: number;
  /** Current time in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
}

/** Verifies access tokens; see {@link createTokenVerifier}. */
export interface TokenVerifier {
  /**
   * Verifies a compact JWT access token and returns it decoded.
   *
   * @throws {@link InvalidTokenError} for any token that is malformed, forged, expired or not for
   *   this resource server; {@link TemporarilyUnavailableError} when keys or the revocation check
   *   are unavailable.
   */
  verify(token: string): Promise<VerifiedAccessToken>;
  /**
   * The verified token from the cache, when `token` is there and not expired, else undefined.
   * Synchronous, for the hot path: it answers undefined whenever `isRevoked` is configured, and
   * when the revocation view is stale; it throws {@link InvalidTokenError} for a token the view
   * says is revoked.
   */
  cached(token: string): VerifiedAccessToken | undefined;
}


/**
 * Checks an `algorithms` option: a non-empty list of {@link AsymmetricAlgorithm}s.
 *
 * @throws TypeError naming `algorithms`, for `none`, `HS*` or an unknown algorithm.
 */
export function checkAlgorithms(value: unknown): AsymmetricAlgorithm[] {
  if (value === undefined) return [...DEFAULT_ALGORITHMS];
  if (!Array.isArray(value) || value.length === 0) throw new InvalidOptionError('algorithms', 'algorithms must be a non-empty array');
  for (const alg of value) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(alg)) {
      throw new InvalidOptionError('algorithms', `algorithms may hold only ${ASYMMETRIC_ALGORITHMS.join(', ')} (never none or HS*)`);
    }
  }
  return [...new Set(value as AsymmetricAlgorithm[])];
}

function checkClaimRequirements(claims: unknown): [string, ClaimRequirement][] {
  if (claims === undefined) return [];
  if (claims === null || typeof claims !== 'object') throw new InvalidOptionError('claims', 'claims must be an object of claim names to values or predicates');
  const entries = Object.entries(claims as Record<string, ClaimRequirement>);
  for (const [name, requirement] of entries) {
    if (!['string', 'number', 'boolean', 'function'].includes(typeof requirement)) {
      throw new InvalidOptionError(`claims.${name}`, `claims.${name} must be a string, number, boolean or predicate function`);
    }
  }
  return entries;
}

function resolveProfile(options: TokenVerifierOptions): TokenProfile {
  const scopeClaim = options.scopeClaim === undefined ? 'scope' : options.scopeClaim;
  if (typeof scopeClaim !== 'string' || scopeClaim === '') throw new InvalidOptionError('scopeClaim', 'scopeClaim must be a non-empty claim name');
  return {
    issuers: stringListOption(options.issuer, 'issuer'),
    audiences: stringListOption(options.audience, 'audience'),
    algorithms: checkAlgorithms(options.algorithms),
    toleranceMs: numberOption(options.clockTolerance, 'clockTolerance', { fallback: 5, min: 0, max: 300, unit: 'seconds' }) * 1000,
    strict: booleanOption(options.strict, 'strict', false),
    scopeClaim,
    claimChecks: checkClaimRequirements(options.claims),
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}


/**
 * `jwt.verify` with this verifier's options in the JWT worker thread: each key is registered with
 * the worker once, with the options, and freed when the key is garbage-collected.
 */
function workerVerification(profile: TokenProfile, maxTokenAge: number | undefined): (key: VerificationKey, token: string, now: number) => Promise<void> {
  const worker = jwtWorker();
  const verifyOptions = {
    algorithms: [...profile.algorithms], issuer: [...profile.issuers] as [string, ...string[]], audience: [...profile.audiences] as [string, ...string[]],
    clockTolerance: profile.toleranceMs / 1000,
    ...(maxTokenAge === undefined ? {} : { maxAge: maxTokenAge }),
  };
  const ids = new WeakMap<VerificationKey, number>();
  return (key, token, now) => {
    let id = ids.get(key);
    if (id === undefined) {
      id = worker.addKey({ key: key.key, verify: verifyOptions }, key);
      ids.set(key, id);
    }
    return worker.verify(id, token, now);
  };
}

/**
 * The revocation checks of a verifier: the issuer's revocation view, then the `isRevoked` hook.
 * `fresh` is the synchronous part for cached tokens: true when the view (if any) says the token
 * is not revoked; false when it is stale; it throws for a revoked token.
 */
function revocationCheck(
  isRevoked: TokenVerifierOptions['isRevoked'], revocationView: TokenVerifierOptions['revocationView'],
): { check(auth: VerifiedAccessToken): Promise<VerifiedAccessToken>; fresh(auth: VerifiedAccessToken): boolean } {
  function viewStatus(auth: VerifiedAccessToken, view: RevocationView | undefined): RevocationStatus {
    if (view === undefined) return 'ok';
    const status = view.status({ jti: auth.payload.jti, clientId: auth.clientId, iat: auth.payload.iat });
    if (status === 'revoked') throw new InvalidTokenError('the token has been revoked');
    return status;
  }
  return {
    async check(auth) {
      const view = revocationView?.(auth.payload.iss);
      if (viewStatus(auth, view) === 'stale') {
        await view?.whenFresh();
        if (viewStatus(auth, view) === 'stale') throw unavailable('the revocation list is unavailable');
      }
      if (!isRevoked) return auth;
      let revoked: boolean;
      try {
        revoked = await isRevoked(auth);
      } catch (err) {
        throw unavailable('the revocation check is unavailable', err);
      }
      if (revoked === true) throw new InvalidTokenError('the token has been revoked');
      return auth;
    },
    fresh: (auth) => revocationView === undefined || viewStatus(auth, revocationView(auth.payload.iss)) === 'ok',
  };
}

/**
 * Creates an access-token verifier: jsonwebtoken's `verify` checks the signature and the
 * registered claims (algorithm allow-list, `iss`, `aud`, `exp`, `nbf`, clock tolerance), with the
 * RFC 9068 profile checked here on top, keys through `getKey`.
 *
 * 1. The token is taken apart and its header checked before any key is looked up, and tokens
 *    whose `iss`, `aud`, `exp` or `nbf` cannot pass are refused then too (see `parseToken` and
 *    `refuseEarly` in token-profile.ts), so that no JWKS request is made for them.
 * 2. The key: a key whose JWK declares an `alg` must declare the header's (RFC 7517 §4.4).
 * 3. `jwt.verify(token, key, { algorithms, issuer, audience, clockTolerance, clockTimestamp })`
 *    runs in the process's JWT worker thread, in batches (the tokens of one event-loop turn in one
 *    message): the signature, the costly step of a fresh token, runs on another core while the
 *    event loop parses and answers other requests, as WebCrypto does for jose-based verifiers.
 *    jsonwebtoken also checks that the key fits the algorithm (an RSA public key for RS* and PS*,
 *    an EC key on the algorithm's curve for ES*). Its error is the cause of the
 *    {@link InvalidTokenError}.
 * 4. The profile: `strict` claims, claim requirements, the scope claim.
 *
 * Verified tokens are kept in a bounded LRU keyed by the whole token string, each entry expiring
 * at the token's `exp`, so a token presented again costs a lookup rather than a signature check.
 *
 * @param options - See {@link TokenVerifierOptions}; validated once, here.
 * @throws TypeError for a missing or malformed option.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'createTokenVerifier() needs an options object');
  const profile = resolveProfile(options);
  if (typeof options.getKey !== 'function') throw new InvalidOptionError('getKey', 'getKey must be a function');
  const getKey = options.getKey;
  const isKeyCurrent = functionOption(options.isKeyCurrent, 'isKeyCurrent');
  const isRevoked = functionOption(options.isRevoked, 'isRevoked');
  const revocation = revocationCheck(isRevoked, functionOption(options.revocationView, 'revocationView'));
  const cacheSize = numberOption(options.tokenCacheSize, 'tokenCacheSize', { fallback: 1000, min: 0, max: 1_000_000, integer: true });
  const cache = cacheSize > 0 ? createTokenCache(cacheSize, isKeyCurrent) : undefined;
  const clock = functionOption(options.clock, 'clock', Date.now);
  const maxTokenAge = options.maxTokenAge === undefined ? undefined
    : numberOption(options.maxTokenAge, 'maxTokenAge', { fallback: 0, min: 1, max: 366 * 86_400, integer: true, unit: 'seconds' });
  const checkSignature = workerVerification(profile, maxTokenAge);

  async function keyFor(parsed: { alg: AsymmetricAlgorithm; kid: string | undefined }, issuer: string): Promise<VerificationKey> {
    let key: VerificationKey;
    try {
      key = await getKey({ issuer, kid: parsed.kid, alg: parsed.alg });
    } catch (err) {
      if (err instanceof OAuthError) throw err;
      // Not the caller's fault: their token may be fine once keys can be fetched (RFC 6750 §3.1
      // reserves invalid_token for the token itself).
      throw unavailable('the signing keys are unavailable', err);
    }
    if (key.alg !== undefined && key.alg !== parsed.alg) throw new InvalidTokenError('the token algorithm does not match its key');
    return key;
  }

  async function verifyToken(token: string): Promise<VerifiedAccessToken> {
    const parsed = parseToken(token, profile);
    const { header, payload } = parsed;
    const now = clock();
    refuseEarly(payload, now, profile);
    const key = await keyFor(parsed, payload.iss);
    try {
      await checkSignature(key, token, now);
    } catch (err) {
      throw refusal(err as Error);
    }
    const { clientId, scopes } = checkProfile(payload, profile);
    const auth: VerifiedAccessToken = Object.freeze({
      token,
      header: deepFreeze(header) as AccessTokenHeader,
      payload: deepFreeze(payload),
      clientId,
      scopes: Object.freeze(scopes),
    });
    const expiresAt = payload.exp * 1000;
    if (cache && now < expiresAt) cache.set(token, auth, key, expiresAt);
    return auth;
  }

  async function verify(token: string): Promise<VerifiedAccessToken> {
    if (typeof token !== 'string' || token === '') throw new InvalidTokenError('the token is empty');
    const cached = cache?.get(token, clock());
    if (cached !== undefined) return revocation.check(cached);
    let auth: VerifiedAccessToken;
    try {
      auth = await verifyToken(token);
    } catch (err) {
      if (err instanceof OAuthError) throw err;
      // Whatever a broken token makes a parser do, it is the token's fault, never a 500.
      throw new InvalidTokenError('the token is malformed', { cause: err });
    }
    return revocation.check(auth);
  }

  function cached(token: string): VerifiedAccessToken | undefined {
    if (isRevoked !== undefined) return undefined;
    const hit = cache?.get(token, clock());
    return hit !== undefined && revocation.fresh(hit) ? hit : undefined;
  }

  return { verify, cached };
}
