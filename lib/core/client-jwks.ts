import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { InvalidOptionError } from './options.js';
import { LOOPBACK_HOSTS } from './urls.js';

/**
 * A client's public key as registered for `private_key_jwt` (RFC 7517 §4, RFC 7518 §6): RSA or
 * EC, never with a private member. Members not listed here (`x5c`, `key_ops`, ...) are kept as
 * given.
 */
export interface ClientJwk {
  kty: 'RSA' | 'EC';
  /** Required when the set holds more than one key; unique within the set. */
  kid?: string;
  use?: 'sig';
  alg?: string;
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
  readonly [member: string]: unknown;
}

/** A client's registered public key set (RFC 7517 §5). */
export interface ClientJwks {
  keys: ClientJwk[];
}

/**
 * A key set as given at registration: JWK objects, which {@link checkClientJwks} checks. What
 * `publicKey.export({ format: 'jwk' })` returns fits.
 */
export interface ClientJwksInput {
  keys: readonly Readonly<Record<string, unknown>>[];
}

/** Most keys a client may register at once: enough to rotate through, bounded for every lookup. */
export const MAX_CLIENT_KEYS = 10;
/** Largest registered key set, as JSON, in characters. */
export const MAX_CLIENT_JWKS_LENGTH = 20_000;
/** Longest `jwksUri`, in characters. */
export const MAX_JWKS_URI_LENGTH = 2048;

/** JWK members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const CURVES: Readonly<Record<string, string>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const RSA_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const PRINTABLE = /^[^\x00-\x1F\x7F]{1,128}$/;
/** RSA modulus sizes accepted, in bits: RFC 7518 §3.3 asks for 2048 at least; the top bounds verification work. */
const RSA_BITS = { min: 2048, max: 8192 };

const invalid = (option: string, message: string): InvalidOptionError => new InvalidOptionError(option, message);

function checkMembers(jwk: Record<string, unknown>, at: string): void {
  const secret = PRIVATE_MEMBERS.find((member) => jwk[member] !== undefined);
  if (secret !== undefined) {
    throw invalid(at, `${at} holds private key material (${JSON.stringify(secret)}): register public keys only`);
  }
  if (jwk.kty !== 'RSA' && jwk.kty !== 'EC') throw invalid(at, `${at} must be an RSA or EC public key (kty "RSA" or "EC")`);
  if (jwk.use !== undefined && jwk.use !== 'sig') throw invalid(at, `${at} must have use "sig" or no use`);
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || !PRINTABLE.test(jwk.kid))) {
    throw invalid(at, `${at}.kid must be 1 to 128 characters without control characters`);
  }
  const required = jwk.kty === 'RSA' ? ['n', 'e'] : ['x', 'y'];
  for (const member of required) {
    if (typeof jwk[member] !== 'string' || !BASE64URL.test(jwk[member])) throw invalid(at, `${at}.${member} must be base64url`);
  }
}

function checkShape(jwk: Record<string, unknown>, at: string): void {
  if (jwk.kty === 'EC') {
    const curveAlg = typeof jwk.crv === 'string' ? CURVES[jwk.crv] : undefined;
    if (curveAlg === undefined) throw invalid(at, `${at}.crv must be P-256, P-384 or P-521`);
    if (jwk.alg !== undefined && jwk.alg !== curveAlg) throw invalid(at, `${at}.alg must be ${curveAlg} for a ${String(jwk.crv)} key`);
    return;
  }
  if (jwk.alg !== undefined && !RSA_ALGORITHMS.has(jwk.alg as string)) throw invalid(at, `${at}.alg must be RS256, RS384, RS512, PS256, PS384 or PS512 for an RSA key`);
  const modulus = Buffer.from(jwk.n as string, 'base64url');
  const leading = modulus.findIndex((byte) => byte !== 0);
  const bits = leading === -1 ? 0 : (modulus.length - leading) * 8 - Math.clz32(modulus[leading] as number) + 24;
  if (bits < RSA_BITS.min || bits > RSA_BITS.max) throw invalid(at, `${at} must have a modulus of ${RSA_BITS.min} to ${RSA_BITS.max} bits`);
}

/** Node parses the key as jwks-rsa will when verifying: a point off its curve fails here, at registration. */
function checkImport(jwk: Record<string, unknown>, at: string): void {
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (cause) {
    throw new InvalidOptionError(at, `${at} is not a usable public key`, 'ERR_M2M_INVALID_OPTION', { cause });
  }
}

function checkKey(value: unknown, at: string): ClientJwk {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(at, `${at} must be a JWK object`);
  const jwk = value as Record<string, unknown>;
  checkMembers(jwk, at);
  checkShape(jwk, at);
  checkImport(jwk, at);
  return jwk as ClientJwk;
}

/**
 * Checks a key set registered for `private_key_jwt`: 1 to {@link MAX_CLIENT_KEYS} RSA (2048 to
 * 8192 bits) or EC (P-256, P-384, P-521) public keys, at most {@link MAX_CLIENT_JWKS_LENGTH}
 * characters as JSON, no private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`), `use`
 * absent or `sig`, `alg` absent or one that fits the key, each key parsable, and unique `kid`s,
 * present on every key when there are several (a JWT names its key by `kid`, RFC 7515 §4.1.4).
 *
 * @returns A copy of the set.
 * @throws {@link InvalidOptionError} (a TypeError, code `ERR_M2M_INVALID_OPTION`) whose `option`
 *   names the offending key, for example `jwks.keys[1]`.
 */
export function checkClientJwks(value: unknown): ClientJwks {
  if (value === null || typeof value !== 'object' || !Array.isArray((value as { keys?: unknown }).keys)) {
    throw invalid('jwks', 'jwks must be a JWK Set: an object with a "keys" array');
  }
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw invalid('jwks', 'jwks must be plain JSON');
  }
  if (json.length > MAX_CLIENT_JWKS_LENGTH) throw invalid('jwks', `jwks is larger than ${MAX_CLIENT_JWKS_LENGTH} characters as JSON`);
  const { keys } = JSON.parse(json) as { keys: unknown[] };
  if (keys.length === 0 || keys.length > MAX_CLIENT_KEYS) throw invalid('jwks', `jwks must hold 1 to ${MAX_CLIENT_KEYS} keys`);
  const checked = keys.map((key, i) => checkKey(key, `jwks.keys[${i}]`));
  const kids = checked.map((key) => key.kid);
  if (checked.length > 1 && kids.includes(undefined)) throw invalid('jwks', 'every key of a jwks with several keys needs a kid');
  const duplicate = kids.find((kid, i) => kid !== undefined && kids.indexOf(kid) !== i);
  if (duplicate !== undefined) throw invalid('jwks', `jwks holds the kid ${JSON.stringify(duplicate)} more than once`);
  return { keys: checked };
}

/**
 * Checks a client's `jwks_uri`: an absolute https URL (plain http only on a loopback host, as for
 * the resource server's JWKS), without credentials or fragment, at most
 * {@link MAX_JWKS_URI_LENGTH} characters.
 *
 * @throws {@link InvalidOptionError} (a TypeError) naming `jwksUri`.
 */
export function checkClientJwksUri(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_JWKS_URI_LENGTH) {
    throw invalid('jwksUri', `jwksUri must be a URL of at most ${MAX_JWKS_URI_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('jwksUri', 'jwksUri must be an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw invalid('jwksUri', 'jwksUri must use https (http only on localhost, 127.0.0.1 or [::1])');
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '' || value.includes('#')) {
    throw invalid('jwksUri', 'jwksUri must hold no credentials and no fragment');
  }
  return value;
}
