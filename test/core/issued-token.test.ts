import { expect } from 'chai';
import { createIssuedTokenVerifier } from '../../lib/core/issued-token.js';
import { jwtWorker } from '../../lib/core/jwt-worker.js';
import { generateSigningKey, importPrivateKey, type GeneratedKey, type PublicJwk } from '../../lib/core/keys.js';
import { buildAccessTokenClaims, createTokenSigner } from '../../lib/core/token.js';
import { rejectionOf } from '../support/rejection.js';

const ISSUER = 'https://auth.internal/oauth';
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('createIssuedTokenVerifier()', () => {
  let es: GeneratedKey;
  let rs: GeneratedKey;
  let now: number;
  let published: { keys: PublicJwk[] };
  let reads: number;

  before(async () => {
    [es, rs] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('RS256')]);
  });
  beforeEach(() => {
    now = T0;
    published = { keys: [es.publicJwk, rs.publicJwk] };
    reads = 0;
  });

  const verifier = () => createIssuedTokenVerifier({ issuer: ISSUER, clock: () => now, jwks: async () => { reads++; return published; } });

  /** A token of `key` as the issuer signs it, with `extra` claims over the issuer's own. */
  async function issue(key: GeneratedKey, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
    const signer = createTokenSigner({ kid: key.kid, alg: key.alg, privateKey: importPrivateKey(key.privateKeyPem) });
    try {
      const claims = { ...buildAccessTokenClaims({ issuer: ISSUER, clientId: 'svc', audience: ['https://a.internal'], scopes: ['a'], lifetime: 300, now }), ...extra };
      const token = await signer(claims);
      if (Object.keys(header).length === 0) return token;
      const [h, p, sig] = token.split('.') as [string, string, string];
      const changed = { ...JSON.parse(Buffer.from(h, 'base64url').toString()) as object, ...header };
      return `${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${p}.${sig}`;
    } finally {
      signer.dispose();
    }
  }

  it('accepts the issuer\'s tokens signed with any published key, and gives their claims', async () => {
    const verify = verifier();
    for (const key of [es, rs]) {
      const token = await issue(key);
      const issued = await verify(token);
      expect(issued?.claims).to.deep.include({ iss: ISSUER, sub: 'svc', client_id: 'svc', aud: 'https://a.internal', scope: 'a', iat: T0 / 1000, exp: T0 / 1000 + 300 });
    }
  });

  it('refuses, with undefined, an expired token, another issuer\'s, a changed header, a missing claim, and a key no longer published', async () => {
    const verify = verifier();
    const refused = [
      await issue(es, { iss: 'https://elsewhere.internal' }),
      await issue(es, { jti: undefined }),
      await issue(es, {}, { typ: 'JWT' }),
      await issue(es, {}, { kid: undefined }),
      await issue(es, {}, { kid: rs.kid }),
      await issue(es, { scope: 42 }),
      'x'.repeat(9000),
    ];
    for (const token of refused) expect(await verify(token), token.slice(0, 40)).to.equal(undefined);
    const token = await issue(es);
    now = T0 + 300_000;
    expect(await verify(token)).to.equal(undefined);
    now = T0;
    published = { keys: [rs.publicJwk] };
    expect(await verify(token)).to.equal(undefined);
    published = { keys: [rs.publicJwk, es.publicJwk] };
    expect(await verify(token)).not.to.equal(undefined);
  });

  it('passes on a failure to read the keys', async () => {
    const verify = createIssuedTokenVerifier({ issuer: ISSUER, clock: () => now, jwks: () => Promise.reject(new Error('store down')) });
    const err = await rejectionOf(verify(await issue(es)), Error);
    expect(err.message).to.equal('store down');
  });

  it('reads the key set for each token, and registers a key with the JWT worker once, however often the set is read again', async () => {
    const verify = verifier();
    const token = await issue(es);
    expect(await verify(token)).not.to.equal(undefined);
    const registered = jwtWorker().keyCount;
    for (let i = 0; i < 3; i++) {
      published = { keys: [...published.keys] };
      expect(await verify(token)).not.to.equal(undefined);
    }
    published = { keys: [rs.publicJwk] };
    expect(await verify(token)).to.equal(undefined);
    published = { keys: [es.publicJwk, rs.publicJwk] };
    expect(await verify(token)).not.to.equal(undefined);
    expect([reads, jwtWorker().keyCount]).to.deep.equal([6, registered]);
  });
});
