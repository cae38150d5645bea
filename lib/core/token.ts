import { constants, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from './keys.js';

/**
 * Claims that identify and bound an RFC 9068 access token. Per-client and hook claims can never
 * replace them.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'scp',
  'auth_time', 'acr', 'amr', 'cnf', 'act', 'may_act', 'typ', 'azp', 'sid',
]);

/** What the issuer knows when it mints a token. */
export interface AccessTokenInput {
  issuer: string;
  clientId: string;
  audience: readonly string[];
  scopes: readonly string[];
  /** Lifetime in seconds. */
  lifetime: number;
  /** Issue time in milliseconds since the epoch. */
  now: number;
  /** Extra claims; any reserved name among them is dropped. */
  extraClaims?: Readonly<Record<string, unknown>>;
}

/**
 * Builds the RFC 9068 §2.2 claim set: `iss`, `sub` (the client id: in the client credentials grant
 * the client is the subject), `aud` (a string for one audience), `exp`, `iat`, `jti`, `client_id`,
 * `scope`, then extra claims that do not collide with {@link RESERVED_CLAIMS}.
 */
export function buildAccessTokenClaims(input: AccessTokenInput): Record<string, unknown> {
  const iat = Math.floor(input.now / 1000);
  const claims: Record<string, unknown> = {};
  if (input.extraClaims) {
    for (const [name, value] of Object.entries(input.extraClaims)) {
      if (!RESERVED_CLAIMS.has(name) && value !== undefined) claims[name] = value;
    }
  }
  claims.iss = input.issuer;
  claims.sub = input.clientId;
  claims.aud = input.audience.length === 1 ? input.audience[0] : [...input.audience];
  claims.exp = iat + input.lifetime;
  claims.iat = iat;
  // randomUUID draws from a pool Node refills in bulk; randomBytes(16) cost a CSPRNG call per token.
  claims.jti = randomUUID();
  claims.client_id = input.clientId;
  claims.scope = input.scopes.join(' ');
  return claims;
}

/** A key ready to sign with: imported once, reused for every token. */
export interface SigningKeyHandle {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
}

/** Signs a claim set into a compact JWT with header `{ alg, typ: "at+jwt", kid }`. */
export type TokenSigner = (claims: Record<string, unknown>) => Promise<string>;

const encodeJson = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Creates the signer for one key.
 *
 * The JWS compact serialisation (RFC 7515 §7.1) is assembled here and signed with node:crypto
 * directly rather than through jsonwebtoken, for two measured reasons: jsonwebtoken re-validates
 * its options and the payload on every call (about half the cost of an ES256 token), and it signs
 * synchronously on the event loop. Every algorithm goes through `crypto.sign`'s callback form,
 * which runs in libuv's thread pool: for RSA (about a millisecond a signature) that is the
 * difference between blocking and not, and even for P-256 the hand-off pays: signed synchronously,
 * ES256 issued 24% fewer tokens per second in the benchmark (the hand-off costs the event loop
 * less than the signature does). ES256 uses the IEEE P1363 `r || s` encoding
 * JWS requires (RFC 7518 §3.4). Verification (the guard) uses node:crypto in the thread pool too.
 */
export function createTokenSigner(key: SigningKeyHandle): TokenSigner {
  const encodedHeader = encodeJson({ alg: key.alg, typ: 'at+jwt', kid: key.kid });
  const options =
    key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' as const }
      : key.alg === 'PS256' ? { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
        : { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING };
  return (claims) =>
    new Promise((resolve, reject) => {
      const input = `${encodedHeader}.${encodeJson(claims)}`;
      sign('sha256', Buffer.from(input), options, (err, signature) => {
        if (err) reject(err);
        else resolve(`${input}.${signature.toString('base64url')}`);
      });
    });
}
