import { createPublicKey } from 'node:crypto';
import jwksRsa from 'jwks-rsa';
import { jwtWorker } from './jwt-worker.js';
import { SIGNING_ALGORITHMS, type PublicJwk, type SigningAlgorithm } from './keys.js';
import { checkProfile, parseToken, type TokenProfile } from './token-profile.js';
import type { AccessTokenClaims } from './verify.js';

/** Options of {@link createIssuedTokenVerifier}. */
export interface IssuedTokenVerifierOptions {
  /** The issuer identifier: the only accepted `iss`. */
  issuer: string;
  /**
   * The issuer's published key set (its JWKS): the keys that may have signed a token still alive.
   * Rejects when the keys cannot be read; the verifier passes that rejection on.
   */
  jwks: () => Promise<{ keys: readonly PublicJwk[] }>;
  /** Current time in milliseconds since the epoch. */
  clock: () => number;
}

/** An access token this issuer signed, not expired: the RFC 9068 §2.2 claims it must hold, checked. */
export interface IssuedToken {
  claims: AccessTokenClaims & { sub: string; client_id: string; jti: string; iat: number; scope?: string };
}

/** Checks that a token is one of this issuer's own; see {@link createIssuedTokenVerifier}. */
export type IssuedTokenVerifier = (token: string) => Promise<IssuedToken | undefined>;

/** A published key, imported, with its id in the JWT worker. */
interface OwnKey {
  alg: string;
  workerId: number;
}

/** Longest token looked at; the form limits of the endpoints keep tokens far below this anyway. */
const MAX_TOKEN_LENGTH = 8192;

/**
 * Creates the check of the issuer's own access tokens, for its revocation (RFC 7009) and
 * introspection (RFC 7662) endpoints. A token passes when jsonwebtoken's `verify` accepts it,
 * in the process's JWT worker, with a key of the issuer's published set (made into keys by
 * jwks-rsa, as a guard makes them, once per change of the set), the key's `alg` and `iss` equal
 * to the issuer, with no clock tolerance: the issuer's clock is the one that says when its tokens
 * expire. The token must have the RFC 9068 profile as this issuer writes it (`typ: at+jwt`, a
 * `kid`, `sub`, `client_id`, `jti`, `iat`, a well-formed `scope`). Its audience is not checked:
 * every audience is the issuer's.
 *
 * @returns A function that resolves to the token's claims, or to undefined for anything else
 *   (malformed, forged, expired, another issuer's, signed with a key no longer published); it
 *   rejects only when `jwks` does.
 */
export function createIssuedTokenVerifier(options: IssuedTokenVerifierOptions): IssuedTokenVerifier {
  const { issuer, jwks, clock } = options;
  const profile: TokenProfile = {
    issuers: [issuer], audiences: [], algorithms: SIGNING_ALGORITHMS, toleranceMs: 0, strict: true, scopeClaim: 'scope', claimChecks: [],
  };
  const worker = jwtWorker();
  /**
   * Every key imported so far, by kid and PEM. Registered with the worker once and kept: an
   * issuer publishes a handful of keys over its life, and a registration freed while a
   * verification is on its way would fail that verification.
   */
  const imported = new Map<string, OwnKey>();
  let current: { set: object; text: string; keys: Promise<Map<string, OwnKey>> } | undefined;

  /** The keys of `set` by kid: jwks-rsa makes them of the set as it makes those of a fetched JWKS. */
  async function importKeys(set: { keys: readonly PublicJwk[] }): Promise<Map<string, OwnKey>> {
    const client = new jwksRsa.JwksClient({ cache: false, rateLimit: false, jwksUri: issuer, fetcher: async () => ({ keys: set.keys }) });
    const byKid = new Map<string, OwnKey>();
    for (const signingKey of await client.getSigningKeys()) {
      const pem = signingKey.getPublicKey();
      const alg = signingKey.alg;
      if (!(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) continue;
      const id = `${signingKey.kid}\n${alg}\n${pem}`;
      let own = imported.get(id);
      if (own === undefined) {
        const key = createPublicKey(pem);
        own = { alg, workerId: worker.addKey({ key, verify: { algorithms: [alg as SigningAlgorithm], issuer } }, imported) };
        imported.set(id, own);
      }
      byKid.set(signingKey.kid, own);
    }
    return byKid;
  }

  /** The published key `kid` names, from the set as the issuer last read it. */
  async function keyFor(kid: string): Promise<OwnKey | undefined> {
    const set = await jwks();
    // The issuer hands the same object until it reads its keys again; a new object with the same
    // keys keeps the keys made already.
    if (current?.set !== set) {
      const text = JSON.stringify(set.keys);
      current = current?.text === text ? { ...current, set } : { set, text, keys: importKeys(set) };
    }
    return (await current.keys).get(kid);
  }

  return async function verifyIssued(token) {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return undefined;
    let parsed;
    try {
      parsed = parseToken(token, profile);
    } catch {
      return undefined;
    }
    const { payload, kid } = parsed;
    const now = clock();
    // Spares the key lookup and the signature for what cannot pass; jsonwebtoken checks these again.
    if (payload.iss !== issuer || kid === undefined || typeof payload.exp !== 'number' || now >= payload.exp * 1000) return undefined;
    const own = await keyFor(kid);
    if (own === undefined || own.alg !== parsed.alg) return undefined;
    try {
      await worker.verify(own.workerId, token, now);
      checkProfile(payload as AccessTokenClaims, profile);
    } catch {
      return undefined;
    }
    return { claims: payload as IssuedToken['claims'] };
  };
}
