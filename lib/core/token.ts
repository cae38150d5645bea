import { randomUUID, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from './keys.js';
import { jwtWorker } from './jwt-worker.js';

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

/**
 * Creates the signer for one key: jsonwebtoken's `sign` with `{ algorithm, keyid, header: { typ:
 * "at+jwt" } }` (RFC 9068 §2.1), run in the process's JWT worker thread ({@link jwtWorker}), which
 * signs the tokens of one event-loop turn as one batch, so that no signature is made on the
 * event loop. The claims are passed as built by {@link buildAccessTokenClaims}: they hold `iat`,
 * so jsonwebtoken adds no timestamp of its own.
 */
export function createTokenSigner(key: SigningKeyHandle): TokenSigner {
  const worker = jwtWorker();
  const signer = (claims: Record<string, unknown>): Promise<string> => worker.sign(keyId, claims);
  // A signer dropped without dispose() (an issuer discarded by its host) still frees its key.
  const keyId = worker.addKey({
    key: key.privateKey,
    sign: { algorithm: key.alg, keyid: key.kid, header: { alg: key.alg, typ: 'at+jwt' } },
  }, signer);
  return Object.assign(signer, { dispose: () => worker.removeKey(keyId) });
}
