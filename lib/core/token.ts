import { constants, randomUUID, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from './keys.js';
import { cryptoWorker, signInThreadPool, type WorkerKey } from './crypto-worker.js';

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
export interface TokenSigner {
  (claims: Record<string, unknown>): Promise<string>;
  /** Releases the key: the signer must not be called afterwards. */
  dispose(): void;
}

const encodeJson = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Creates the signer for one key.
 *
 * The JWS compact serialisation (RFC 7515 §7.1) is assembled here and signed with node:crypto
 * directly rather than through jsonwebtoken, for two measured reasons: jsonwebtoken re-validates
 * its options and the payload on every call (about half the cost of an ES256 token), and it signs
 * synchronously on the event loop. No signature is made on the event loop:
 *
 * - ES256 goes to the process's crypto worker ({@link cryptoWorker}), which signs the tokens of
 *   one event-loop turn as one batch. A P-256 signature is cheap (some 20 µs); what cost more was
 *   handing each one over: signed synchronously, ES256 issued 24% fewer tokens per second in the
 *   benchmark, and through `crypto.sign`'s thread-pool callback each signature woke a pool thread.
 *   The batching worker cut the server's CPU time per token by a fifth against the thread pool.
 * - RS256 and PS256 (about half a millisecond a signature) go through `crypto.sign`'s callback
 *   form, which spreads them over libuv's thread pool: there the signature is the cost, and the
 *   pool's threads sign several at once.
 *
 * ES256 uses the IEEE P1363 `r || s` encoding JWS requires (RFC 7518 §3.4). Verification (the
 * guard's, for RSA) goes through the same crypto worker.
 */
export function createTokenSigner(key: SigningKeyHandle): TokenSigner {
  const encodedHeader = encodeJson({ alg: key.alg, typ: 'at+jwt', kid: key.kid });
  if (key.alg === 'ES256') {
    const worker = cryptoWorker();
    const signer = (claims: Record<string, unknown>): Promise<string> => {
      const input = `${encodedHeader}.${encodeJson(claims)}`;
      return worker.sign(keyId, input).then((signature) => `${input}.${signature}`);
    };
    // A signer dropped without dispose() (an issuer discarded by its host) still frees its key.
    const keyId = worker.addKey({ hash: 'sha256', key: { key: key.privateKey, dsaEncoding: 'ieee-p1363' } }, signer);
    return Object.assign(signer, { dispose: () => worker.removeKey(keyId) });
  }
  const rsaKey: WorkerKey = {
    hash: 'sha256',
    key: key.alg === 'PS256'
      ? { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
      : { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING },
  };
  const signer = (claims: Record<string, unknown>): Promise<string> => {
    const input = `${encodedHeader}.${encodeJson(claims)}`;
    return signInThreadPool(rsaKey, input).then((signature) => `${input}.${signature}`);
  };
  return Object.assign(signer, { dispose: () => {} });
}
