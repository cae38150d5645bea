import { InvalidTokenError } from '../errors.js';
import { readScopes } from './scope.js';
import type { AccessTokenClaims, AsymmetricAlgorithm, ClaimRequirement } from './verify.js';

/** Header `typ` values (lower-cased) of RFC 9068 §2.1; `JWT` and none are accepted too unless strict (RFC 8725 §3.11). */
const PROFILE_TYPES = new Set(['at+jwt', 'application/at+jwt']);
const ACCEPTED_TYPES = new Set([...PROFILE_TYPES, 'jwt']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const CLIENT_ID_CLAIMS = ['client_id', 'azp', 'cid', 'appid'] as const;

/** What a verifier accepts, resolved once from its options. */
export interface TokenProfile {
  issuers: readonly string[];
  audiences: readonly string[];
  algorithms: readonly AsymmetricAlgorithm[];
  /** Clock tolerance in milliseconds. */
  toleranceMs: number;
  strict: boolean;
  scopeClaim: string;
  claimChecks: readonly (readonly [string, ClaimRequirement])[];
}

/** A token taken apart, its header checked and its claims not yet trusted. */
export interface ParsedToken {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  alg: AsymmetricAlgorithm;
  kid: string | undefined;
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

function checkType(typ: unknown, strict: boolean): void {
  if (typ !== undefined && typeof typ !== 'string') throw new InvalidTokenError('the token type is malformed');
  const type = typ?.toLowerCase();
  if (strict ? type === undefined || !PROFILE_TYPES.has(type) : type !== undefined && !ACCEPTED_TYPES.has(type)) {
    throw new InvalidTokenError(strict ? 'the token type is not at+jwt' : 'the token type is not accepted');
  }
}

/**
 * Takes a compact JWS apart and refuses, before any key is looked up (so that no JWKS request is
 * ever made for it), a token that is not three base64url segments of JSON objects; whose `alg` is
 * not in the allow-list (RFC 8725 §3.1: no `none`, no `HS*`); that has `crit` (RFC 7515 §4.1.11:
 * no extension is understood); or whose `typ` is not `at+jwt`, `application/at+jwt`, `JWT` or
 * absent (RFC 9068 §2.1, RFC 8725 §3.11; only the first two with `strict`). The signature and
 * the claims are jsonwebtoken's to check.
 */
export function parseToken(token: string, profile: TokenProfile): ParsedToken {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[2] === '') throw new InvalidTokenError('the token is not a signed JWT');
  const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
  const header = decodeSegment(encodedHeader);
  if (header === undefined) throw new InvalidTokenError('the token header is malformed');
  const payload = decodeSegment(encodedPayload);
  if (payload === undefined) throw new InvalidTokenError('the token payload is malformed');
  // RFC 7515 §2: base64url without padding.
  if (!BASE64URL.test(encodedSignature)) throw new InvalidTokenError('the token signature is malformed');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(profile.algorithms as readonly string[]).includes(alg)) {
    throw new InvalidTokenError('the token signing algorithm is not accepted');
  }
  if (header.crit !== undefined) throw new InvalidTokenError('the token header has critical extensions');
  const kid = header.kid;
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw new InvalidTokenError('the token kid is malformed');
  checkType(header.typ, profile.strict);
  return { header, payload, alg: alg as AsymmetricAlgorithm, kid };
}

/**
 * Refuses, before any key is looked up, a token whose `iss` or `aud` is not accepted, whose `exp`
 * is missing or past, or whose `nbf` or `iat` is in the future (RFC 7519 §4.1, with the clock
 * tolerance).
 * jsonwebtoken checks the same claims again after the signature; this early pass only spares
 * the key set requests for tokens that cannot pass, and makes `exp` required (RFC 9068 §2.2),
 * which jsonwebtoken does not.
 */
export function refuseEarly(payload: Record<string, unknown>, now: number, profile: TokenProfile): asserts payload is AccessTokenClaims {
  const { issuers, audiences, toleranceMs } = profile;
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
  if (payload.iat !== undefined) {
    if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) throw new InvalidTokenError('the token iat claim is malformed');
    // jsonwebtoken does not look at a future iat; a token minted ahead of time is a clock or a forgery.
    if (payload.iat * 1000 > now + toleranceMs) throw new InvalidTokenError('the token was issued in the future');
  }
}

/** jsonwebtoken's `JsonWebTokenError` messages (its documented ones) and what we answer for each. */
const JWT_ERRORS: readonly (readonly [string, string])[] = [
  ['jwt audience invalid', 'the token audience is not accepted'],
  ['jwt issuer invalid', 'the token issuer is not accepted'],
  ['invalid algorithm', 'the token signing algorithm is not accepted'],
  ['secretOrPublicKey must be', 'the token algorithm does not match its key'],
  ['invalid nbf value', 'the token nbf claim is malformed'],
  ['invalid exp value', 'the token has no expiry'],
  ['iat required when maxAge is specified', 'the token has no iat claim'],
];

/**
 * The {@link InvalidTokenError} for an error of jsonwebtoken's `verify`, which stays its cause.
 * A plain `Error` comes from jsonwebtoken's check that the key fits the algorithm (an RSA key for
 * ES256, a P-384 key for ES256, an RSA-PSS key restricted to another hash).
 */
export function refusal(cause: Error): InvalidTokenError {
  let description = 'the token signature or claims are invalid';
  if (cause.name === 'TokenExpiredError') description = cause.message === 'maxAge exceeded' ? 'the token is too old' : 'the token has expired';
  else if (cause.name === 'NotBeforeError') description = 'the token is not valid yet';
  else if (cause.name === 'JsonWebTokenError') description = JWT_ERRORS.find(([prefix]) => cause.message.startsWith(prefix))?.[1] ?? description;
  else if (cause.name === 'Error') description = 'the token algorithm does not match its key';
  return new InvalidTokenError(description, { cause });
}

function firstString(payload: Record<string, unknown>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = payload[name];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

function meets(requirement: ClaimRequirement, value: unknown, payload: AccessTokenClaims): boolean {
  if (typeof requirement !== 'function') return value === requirement || (Array.isArray(value) && value.includes(requirement));
  try {
    return requirement(value, payload) === true;
  } catch {
    return false;
  }
}

/**
 * The RFC 9068 profile on top of a token jsonwebtoken has verified: with `strict`, `sub`,
 * `client_id`, `jti` and `iat` are required (§2.2); then the configured claim requirements; then
 * the scope claim, a space-delimited string or an array of strings.
 *
 * @returns The client id (`client_id`, else `azp`, `cid`, `appid`) and the granted scopes.
 */
export function checkProfile(payload: AccessTokenClaims, profile: TokenProfile): { clientId: string | undefined; scopes: string[] } {
  if (profile.strict) {
    for (const name of ['sub', 'client_id', 'jti'] as const) {
      if (typeof payload[name] !== 'string' || payload[name] === '') throw new InvalidTokenError(`the token has no ${name} claim`);
    }
    if (typeof payload.iat !== 'number') throw new InvalidTokenError('the token has no iat claim');
  }
  for (const [name, requirement] of profile.claimChecks) {
    if (!meets(requirement, payload[name], payload)) throw new InvalidTokenError(`the token ${name} claim is not accepted`);
  }
  const scopes = readScopes(payload[profile.scopeClaim]);
  if (scopes === undefined) throw new InvalidTokenError(`the token ${profile.scopeClaim} claim is malformed`);
  return { clientId: firstString(payload, CLIENT_ID_CLAIMS), scopes };
}
