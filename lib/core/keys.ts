import { createHash, createPrivateKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Signing algorithms the issuer supports: asymmetric only, so resource servers verify with a JWKS. */
export type SigningAlgorithm = 'ES256' | 'RS256' | 'PS256';

/** Every {@link SigningAlgorithm}, in order of preference. */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'RS256', 'PS256'];

/** True when `value` is a supported {@link SigningAlgorithm}. */
export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return typeof value === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/** A public JSON Web Key as published in the JWKS (RFC 7517), with no private member. */
export interface PublicJwk {
  kty: 'EC' | 'RSA';
  kid: string;
  alg: SigningAlgorithm;
  use: 'sig';
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

/** A freshly generated key pair, ready to persist. */
export interface GeneratedKey {
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  kid: string;
  alg: SigningAlgorithm;
  publicJwk: PublicJwk;
  /** PKCS#8 PEM. Secret material: store it, never publish it. */
  privateKeyPem: string;
}

function thumbprint(jwk: Record<string, unknown>): string {
  // RFC 7638 §3.2: only the required members, in lexicographic order, no whitespace.
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n'];
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * Builds the public JWK for a key, copying only public members: whatever the input holds, `d`,
 * `p`, `q`, `dp`, `dq` and `qi` never reach the result.
 *
 * @param key - Any key object, public or private.
 * @param alg - The algorithm the key signs with.
 */
export function toPublicJwk(key: KeyObject, alg: SigningAlgorithm): PublicJwk {
  const full = key.export({ format: 'jwk' });
  const kty = full.kty === 'EC' ? 'EC' : 'RSA';
  const jwk: PublicJwk =
    kty === 'EC'
      ? { kty, crv: String(full.crv), x: String(full.x), y: String(full.y), kid: '', alg, use: 'sig' }
      : { kty, n: String(full.n), e: String(full.e), kid: '', alg, use: 'sig' };
  jwk.kid = thumbprint(jwk as unknown as Record<string, unknown>);
  return jwk;
}

/**
 * Generates a signing key pair off the main thread: P-256 for ES256, RSA 2048 for RS256 and PS256.
 *
 * @param alg - The algorithm the key will sign with.
 */
export async function generateSigningKey(alg: SigningAlgorithm): Promise<GeneratedKey> {
  const { privateKey } =
    alg === 'ES256'
      ? await generateKeyPairAsync('ec', { namedCurve: 'P-256' })
      : await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const publicJwk = toPublicJwk(privateKey, alg);
  return {
    kid: publicJwk.kid,
    alg,
    publicJwk,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** Imports a PKCS#8 PEM private key once, for repeated signing. */
export function importPrivateKey(pem: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem' });
}

/**
 * True when `privateKey` is the private half of `publicJwk`: the same curve and point, or the same
 * modulus and exponent. Checked before a stored key signs, so that a row whose private key was
 * swapped (tampered with, or copied from another row) never signs under its published kid.
 */
export function matchesPublicJwk(privateKey: KeyObject, publicJwk: PublicJwk): boolean {
  const own = toPublicJwk(privateKey, publicJwk.alg);
  return own.kty === publicJwk.kty && own.crv === publicJwk.crv && own.x === publicJwk.x && own.y === publicJwk.y
    && own.n === publicJwk.n && own.e === publicJwk.e;
}
