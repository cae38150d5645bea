import { constants, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { cryptoWorker, verifyInThreadPool } from './crypto-worker.js';
import { InvalidTokenError, OAuthError, TemporarilyUnavailableError } from '../errors.js';
import { isScopeToken } from './scope.js';

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

/** `all`: every required scope must be granted. `any`: at least one must be. */
export type ScopeMatch = 'all' | 'any';

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
  /** The claim holding the granted scopes: a space-delimited string or an array of strings. Default `scope`. */
  scopeClaim?: string;
  /** RFC 9068 §2 and §4 in full: `typ` must be `at+jwt`, and `sub`, `client_id`, `iat`, `jti` are required. Default false. */
  strict?: boolean;
  /** Extra claim checks, by claim name. */
  claims?: Readonly<Record<string, ClaimRequirement>>;
  /** Called for every request, cached tokens included; true refuses the token with `invalid_token`. */
  isRevoked?: (token: VerifiedAccessToken) => boolean | Promise<boolean>;
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
   * Synchronous, for the hot path; it runs no revocation check, so it answers undefined whenever
   * `isRevoked` is configured.
   */
  cached(token: string): VerifiedAccessToken | undefined;
}

/** Header `typ` values (lower-cased) of RFC 9068 §2.1; `JWT` and none are accepted too unless strict (RFC 8725 §3.11). */
const PROFILE_TYPES = new Set(['at+jwt', 'application/at+jwt']);
const ACCEPTED_TYPES = new Set([...PROFILE_TYPES, 'jwt']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const RETRY_AFTER_SECONDS = '5';

function toList(value: unknown, what: string): [string, ...string[]] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string' && v !== '')) {
    throw new TypeError(`${what} is required: a non-empty string or a non-empty array of strings`);
  }
  return [...new Set(list as string[])] as [string, ...string[]];
}

function checkNumber(value: unknown, what: string, fallback: number, min: number, max: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new TypeError(`${what} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

/**
 * Checks an `algorithms` option: a non-empty list of {@link AsymmetricAlgorithm}s.
 *
 * @throws TypeError naming `algorithms`, for `none`, `HS*` or an unknown algorithm.
 */
export function checkAlgorithms(value: unknown): AsymmetricAlgorithm[] {
  if (value === undefined) return [...DEFAULT_ALGORITHMS];
  if (!Array.isArray(value) || value.length === 0) throw new TypeError('algorithms must be a non-empty array');
  for (const alg of value) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(alg)) {
      throw new TypeError(`algorithms may hold only ${ASYMMETRIC_ALGORITHMS.join(', ')} (never none or HS*)`);
    }
  }
  return [...new Set(value as AsymmetricAlgorithm[])];
}

/**
 * Reads the granted scopes from a claim value: a space-delimited string (RFC 8693 §4.2, RFC 9068
 * §2.2.3) or an array of strings (`scp` at Okta, `roles` at Entra ID, `permissions` at Auth0).
 * An absent claim grants nothing.
 *
 * @returns The scopes, or undefined when the claim is neither form.
 */
export function readScopes(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value as string[];
  return undefined;
}

/**
 * True when `granted` satisfies `required`: every scope (`all`) or at least one (`any`). Scopes
 * compare as whole strings, never as substrings or prefixes (RFC 6749 §3.3).
 */
export function hasScopes(granted: readonly string[], required: readonly string[], match: ScopeMatch): boolean {
  return match === 'all' ? required.every((s) => granted.includes(s)) : required.some((s) => granted.includes(s));
}

/**
 * Checks a list of required scopes given by configuration.
 *
 * @throws TypeError naming `what` for an empty list or a malformed scope token (RFC 6749 §3.3).
 */
export function checkRequiredScopes(value: unknown, what: string): string[] {
  const list = typeof value === 'string' ? value.split(' ').filter((s) => s !== '') : value;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${what} must be a scope or a non-empty array of scopes`);
  for (const scope of list) {
    if (typeof scope !== 'string' || !isScopeToken(scope)) {
      throw new TypeError(`${what} holds a malformed scope token: ${JSON.stringify(String(scope).slice(0, 40))}`);
    }
  }
  return [...new Set(list as string[])];
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

function firstString(payload: Record<string, unknown>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = payload[name];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

const CLIENT_ID_CLAIMS = ['client_id', 'azp', 'cid', 'appid'] as const;

/** How to check one algorithm's signatures with one key. */
interface SignatureCheck {
  hash: 'sha256' | 'sha384' | 'sha512';
  key: KeyObject | VerifyKeyObjectInput;
  /** The signature's exact base64url length (RFC 7515 §2, no padding) for its exact byte size. */
  encodedLength: number;
  /**
   * Whether the check goes to the crypto worker (RSA: some 20 µs, less than handing it to the
   * thread pool costs) or to the thread pool (ECDSA: some 70 µs for P-256, where several pool
   * threads verifying at once measured faster than one worker).
   */
  batched: boolean;
  /** The key's id in the crypto worker, once registered there. */
  workerKeyId?: number;
}

/** The named curve (as node:crypto names it) and coordinate size in bytes of each ECDSA algorithm (RFC 7518 §3.4). */
const CURVES = { ES256: ['prime256v1', 32], ES384: ['secp384r1', 48], ES512: ['secp521r1', 66] } as const;

const encodedLength = (bytes: number): number => Math.ceil((bytes * 4) / 3);

/**
 * How `alg` signatures are checked with `key` (RFC 7518 §3.3-§3.5), or undefined when the key
 * cannot have made them: not a public key, an EC key on another curve, an RSA key for ES*, or an
 * RSA-PSS key restricted to other parameters (the checks jsonwebtoken made before verifying).
 */
function signatureCheck(key: KeyObject, alg: AsymmetricAlgorithm): SignatureCheck | undefined {
  if (key.type !== 'public') return undefined;
  const hash = `sha${alg.slice(2)}` as SignatureCheck['hash'];
  const hashBytes = Number(alg.slice(2)) / 8;
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (alg === 'ES256' || alg === 'ES384' || alg === 'ES512') {
    const [curve, size] = CURVES[alg];
    if (type !== 'ec' || details.namedCurve !== curve) return undefined;
    // RFC 7518 §3.4: R || S, each zero-padded to the coordinate size; not DER.
    return { hash, key: { key, dsaEncoding: 'ieee-p1363' }, encodedLength: encodedLength(2 * size), batched: false };
  }
  if (typeof details.modulusLength !== 'number') return undefined;
  const length = encodedLength(Math.ceil(details.modulusLength / 8));
  if (alg.startsWith('RS')) return type === 'rsa' ? { hash, key, encodedLength: length, batched: true } : undefined;
  if (type === 'rsa-pss') {
    if (details.hashAlgorithm !== hash || details.mgf1HashAlgorithm !== hash) return undefined;
    if (details.saltLength !== undefined && details.saltLength > hashBytes) return undefined;
  } else if (type !== 'rsa') {
    return undefined;
  }
  // RFC 7518 §3.5: MGF1 with the same hash, and a salt exactly as long as the hash.
  return { hash, key: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hashBytes }, encodedLength: length, batched: true };
}

/**
 * Checks a signature off the event loop. RSA signatures go to the process's crypto worker, which
 * verifies the signatures of one event-loop turn as one batch: one hand-off per batch instead of a
 * thread-pool job per token, whose wake-up cost more than the verification itself (in the guard
 * benchmark, 0.78x the server's CPU per fresh RS256 token). ECDSA signatures go through
 * node:crypto's callback form to libuv's thread pool: a P-256 verification costs three times an
 * RSA one, and one worker verifying them measured 0.9x the requests per second of the pool.
 */
function checkSignature(check: SignatureCheck, signingInput: string, encodedSignature: string): Promise<boolean> {
  if (!check.batched) return verifyInThreadPool(check, signingInput, encodedSignature);
  const worker = cryptoWorker();
  // Registered once per check; the worker frees the key when the check is collected (its KeyObject left the JWKS).
  check.workerKeyId ??= worker.addKey({ hash: check.hash, key: check.key }, check);
  return worker.verify(check.workerKeyId, signingInput, encodedSignature);
}

interface CacheEntry {
  auth: VerifiedAccessToken;
  /** The key the signature was checked with. */
  key: VerificationKey;
  /** `exp` in milliseconds: the entry is never used at or after it. */
  expiresAt: number;
}

/**
 * A least-recently-used map of verified tokens, bounded by entry count. A Map keeps insertion
 * order, so re-inserting on every hit keeps the least recently used entry first.
 */
function createTokenCache(max: number) {
  const entries = new Map<string, CacheEntry>();
  return {
    get(token: string, now: number, isKeyCurrent: ((key: VerificationKey) => boolean) | undefined): VerifiedAccessToken | undefined {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      entries.delete(token);
      // A withdrawn key (rotated out in a hurry, compromised) must not keep its tokens alive here.
      if (now >= entry.expiresAt || (isKeyCurrent !== undefined && !isKeyCurrent(entry.key))) return undefined;
      entries.set(token, entry);
      return entry.auth;
    },
    set(token: string, entry: CacheEntry): void {
      entries.delete(token);
      entries.set(token, entry);
      if (entries.size > max) {
        const oldest = entries.keys().next();
        if (oldest.done !== true) entries.delete(oldest.value);
      }
    },
  };
}

/**
 * Creates an access-token verifier: the JWS signature checked with node:crypto, keys through
 * `getKey`, the registered claims and the RFC 9068 profile checked here.
 *
 * Before any key is looked up (so that no JWKS request is ever made for them), tokens are refused
 * when they are not three base64url segments of JSON objects; when `alg` is not in the allow-list
 * (RFC 8725 §3.1: no `none`, no `HS*`); when `crit` is present (RFC 7515 §4.1.11: no extension is
 * understood); when `typ` is not `at+jwt`, `application/at+jwt`, `JWT` or absent (RFC 9068 §2.1,
 * RFC 8725 §3.11); when `iss` or `aud` is not configured, `exp` is missing or past, or `nbf` is in
 * the future (RFC 7519 §4.1, with the clock tolerance). After the lookup, a key whose JWK declares
 * an `alg` must declare the header's (RFC 7517 §4.4), and the key itself must fit the algorithm
 * (a public RSA key for RS* and PS*, an EC key on the algorithm's curve for ES*).
 *
 * The signature (RFC 7518 §3.3 RSASSA-PKCS1-v1_5, §3.5 RSASSA-PSS with MGF1 and a salt as long
 * as the hash, §3.4 ECDSA with R || S) must be exactly as long as the key makes it, else it is
 * refused unread; it is then checked with node:crypto's `verify` off the event loop: RSA in
 * the process's crypto worker thread, in batches (the signatures of one event-loop turn in one
 * message), ECDSA in libuv's thread pool. The signature check is the costly step of a fresh token:
 * off the event loop, it runs on another core while the loop parses and answers other requests,
 * as WebCrypto does for jose-based verifiers.
 * jsonwebtoken's `verify` would run it synchronously on the loop, and decode the token and check
 * the claims a second time.
 *
 * Verified tokens are kept in a bounded LRU keyed by the whole token string, each entry expiring
 * at the token's `exp`, so a token presented again costs a lookup rather than a signature check.
 *
 * @param options - See {@link TokenVerifierOptions}; validated once, here.
 * @throws TypeError for a missing or malformed option.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  if (options === null || typeof options !== 'object') throw new TypeError('createTokenVerifier() needs an options object');
  const issuers = toList(options.issuer, 'issuer');
  const audiences = toList(options.audience, 'audience');
  const getKey = options.getKey;
  if (typeof getKey !== 'function') throw new TypeError('getKey must be a function');
  const isKeyCurrent = options.isKeyCurrent;
  if (isKeyCurrent !== undefined && typeof isKeyCurrent !== 'function') throw new TypeError('isKeyCurrent must be a function');
  const algorithms = checkAlgorithms(options.algorithms);
  const clockTolerance = checkNumber(options.clockTolerance, 'clockTolerance', 5, 0, 300, false);
  const scopeClaim = options.scopeClaim ?? 'scope';
  if (typeof scopeClaim !== 'string' || scopeClaim === '') throw new TypeError('scopeClaim must be a non-empty claim name');
  const strict = options.strict ?? false;
  if (typeof strict !== 'boolean') throw new TypeError('strict must be a boolean');
  const claimChecks = Object.entries(options.claims ?? {});
  if (options.claims !== undefined && (options.claims === null || typeof options.claims !== 'object')) {
    throw new TypeError('claims must be an object of claim names to values or predicates');
  }
  for (const [name, requirement] of claimChecks) {
    if (!['string', 'number', 'boolean', 'function'].includes(typeof requirement)) {
      throw new TypeError(`claims.${name} must be a string, number, boolean or predicate function`);
    }
  }
  const isRevoked = options.isRevoked;
  if (isRevoked !== undefined && typeof isRevoked !== 'function') throw new TypeError('isRevoked must be a function');
  const cacheSize = checkNumber(options.tokenCacheSize, 'tokenCacheSize', 1000, 0, 1_000_000, true);
  const cache = cacheSize > 0 ? createTokenCache(cacheSize) : undefined;
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw new TypeError('clock must be a function returning milliseconds');
  const toleranceMs = clockTolerance * 1000;
  // Worked out once per key and algorithm: key details cross into C++ on every read.
  const checks = new WeakMap<KeyObject, Map<AsymmetricAlgorithm, SignatureCheck | undefined>>();

  function checkFor(key: KeyObject, alg: AsymmetricAlgorithm): SignatureCheck | undefined {
    let byAlg = checks.get(key);
    if (byAlg === undefined) {
      byAlg = new Map();
      checks.set(key, byAlg);
    }
    if (!byAlg.has(alg)) byAlg.set(alg, signatureCheck(key, alg));
    return byAlg.get(alg);
  }

  function checkClaims(payload: Record<string, unknown>, now: number): asserts payload is AccessTokenClaims {
    if (typeof payload.iss !== 'string' || !issuers.includes(payload.iss)) throw new InvalidTokenError('the token issuer is not accepted');
    const aud = payload.aud;
    const audOk = typeof aud === 'string' ? audiences.includes(aud)
      : Array.isArray(aud) && aud.some((a) => typeof a === 'string' && audiences.includes(a));
    if (!audOk) throw new InvalidTokenError('the token audience is not accepted');
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) throw new InvalidTokenError('the token has no expiry');
    if (now >= payload.exp * 1000 + toleranceMs) throw new InvalidTokenError('the token has expired');
    if (payload.nbf !== undefined) {
      if (typeof payload.nbf !== 'number' || !Number.isFinite(payload.nbf)) throw new InvalidTokenError('the token nbf claim is malformed');
      if (payload.nbf * 1000 > now + toleranceMs) throw new InvalidTokenError('the token is not valid yet');
    }
    if (payload.iat !== undefined && (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat))) {
      throw new InvalidTokenError('the token iat claim is malformed');
    }
    if (strict) {
      for (const name of ['sub', 'client_id', 'jti'] as const) {
        if (typeof payload[name] !== 'string' || payload[name] === '') throw new InvalidTokenError(`the token has no ${name} claim`);
      }
      if (typeof payload.iat !== 'number') throw new InvalidTokenError('the token has no iat claim');
    }
  }

  async function verifySignature(token: string): Promise<VerifiedAccessToken> {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[2] === '') throw new InvalidTokenError('the token is not a signed JWT');
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
    const header = decodeSegment(encodedHeader);
    if (header === undefined) throw new InvalidTokenError('the token header is malformed');
    const payload = decodeSegment(encodedPayload);
    if (payload === undefined) throw new InvalidTokenError('the token payload is malformed');
    // RFC 7515 §2: base64url without padding; checked here so that no key is fetched for it.
    if (!BASE64URL.test(encodedSignature)) throw new InvalidTokenError('the token signature is malformed');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(algorithms as readonly string[]).includes(alg)) {
      throw new InvalidTokenError('the token signing algorithm is not accepted');
    }
    if (header.crit !== undefined) throw new InvalidTokenError('the token header has critical extensions');
    const kid = header.kid;
    if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw new InvalidTokenError('the token kid is malformed');
    const typ = header.typ;
    if (typ !== undefined && typeof typ !== 'string') throw new InvalidTokenError('the token type is malformed');
    const type = typ?.toLowerCase();
    if (strict ? type === undefined || !PROFILE_TYPES.has(type) : type !== undefined && !ACCEPTED_TYPES.has(type)) {
      throw new InvalidTokenError(strict ? 'the token type is not at+jwt' : 'the token type is not accepted');
    }
    const now = clock();
    checkClaims(payload, now);

    let key: VerificationKey;
    try {
      key = await getKey({ issuer: payload.iss, kid, alg: alg as AsymmetricAlgorithm });
    } catch (err) {
      if (err instanceof OAuthError) throw err;
      // Not the caller's fault: their token may be fine once keys can be fetched (RFC 6750 §3.1
      // reserves invalid_token for the token itself).
      throw new TemporarilyUnavailableError('the signing keys are unavailable', { cause: err, headers: { 'Retry-After': RETRY_AFTER_SECONDS } });
    }
    if (key.alg !== undefined && key.alg !== alg) throw new InvalidTokenError('the token algorithm does not match its key');
    const check = checkFor(key.key, alg as AsymmetricAlgorithm);
    if (check === undefined) throw new InvalidTokenError('the token algorithm does not match its key');
    // A signature of any other length cannot be valid: refused before crypto sees it, so hostile
    // input costs no more than a length comparison.
    if (encodedSignature.length !== check.encodedLength) throw new InvalidTokenError('the token signature is malformed');
    let valid: boolean;
    try {
      const signingInput = token.slice(0, encodedHeader.length + 1 + encodedPayload.length);
      valid = await checkSignature(check, signingInput, encodedSignature);
    } catch (err) {
      throw new InvalidTokenError('the token signature or claims are invalid', { cause: err });
    }
    if (!valid) throw new InvalidTokenError('the token signature or claims are invalid');

    for (const [name, requirement] of claimChecks) {
      const value = payload[name];
      let ok: boolean;
      if (typeof requirement === 'function') {
        try {
          ok = requirement(value, payload) === true;
        } catch {
          ok = false;
        }
      } else {
        ok = value === requirement || (Array.isArray(value) && value.includes(requirement));
      }
      if (!ok) throw new InvalidTokenError(`the token ${name} claim is not accepted`);
    }
    const scopes = readScopes(payload[scopeClaim]);
    if (scopes === undefined) throw new InvalidTokenError(`the token ${scopeClaim} claim is malformed`);

    const auth: VerifiedAccessToken = Object.freeze({
      token,
      header: deepFreeze(header) as AccessTokenHeader,
      payload: deepFreeze(payload),
      clientId: firstString(payload, CLIENT_ID_CLAIMS),
      scopes: Object.freeze(scopes),
    });
    const expiresAt = payload.exp * 1000;
    if (cache && now < expiresAt) cache.set(token, { auth, key, expiresAt });
    return auth;
  }

  async function checkRevocation(auth: VerifiedAccessToken): Promise<VerifiedAccessToken> {
    if (!isRevoked) return auth;
    let revoked: boolean;
    try {
      revoked = await isRevoked(auth);
    } catch (err) {
      throw new TemporarilyUnavailableError('the revocation check is unavailable', { cause: err, headers: { 'Retry-After': RETRY_AFTER_SECONDS } });
    }
    if (revoked === true) throw new InvalidTokenError('the token has been revoked');
    return auth;
  }

  async function verify(token: string): Promise<VerifiedAccessToken> {
    if (typeof token !== 'string' || token === '') throw new InvalidTokenError('the token is empty');
    const cached = cache?.get(token, clock(), isKeyCurrent);
    if (cached !== undefined) return checkRevocation(cached);
    let auth: VerifiedAccessToken;
    try {
      auth = await verifySignature(token);
    } catch (err) {
      if (err instanceof OAuthError) throw err;
      // Whatever a broken token makes a parser do, it is the token's fault, never a 500.
      throw new InvalidTokenError('the token is malformed', { cause: err });
    }
    return checkRevocation(auth);
  }

  function cached(token: string): VerifiedAccessToken | undefined {
    return isRevoked === undefined ? cache?.get(token, clock(), isKeyCurrent) : undefined;
  }

  return { verify, cached };
}
