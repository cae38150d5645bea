import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { generateSigningKey, importPrivateKey, type GeneratedKey, type SigningAlgorithm } from '../../lib/core/keys.js';
import { buildAccessTokenClaims, createTokenSigner, RESERVED_CLAIMS, type AccessTokenInput } from '../../lib/core/token.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0, 789);
const IAT = Math.floor(NOW / 1000);

const input: AccessTokenInput = {
  issuer: 'https://auth.internal/oauth',
  clientId: 'svc-reports',
  audience: ['https://reports.internal'],
  scopes: ['reports:read', 'reports:write'],
  lifetime: 300,
  now: NOW,
};

const JTI = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function withoutJti(claims: Record<string, unknown>): Record<string, unknown> {
  const { jti: _jti, ...rest } = claims;
  return rest;
}

const publicKeyOf = (key: GeneratedKey): KeyObject =>
  createPublicKey({ key: key.publicJwk as unknown as JsonWebKey, format: 'jwk' });

function decodeSegment(segment: string | undefined): unknown {
  return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'));
}

describe('buildAccessTokenClaims()', () => {
  it('builds the RFC 9068 claim set with a single audience as a string', () => {
    const claims = buildAccessTokenClaims(input);
    expect(claims.jti).to.match(JTI);
    expect(withoutJti(claims)).to.deep.equal({
      iss: 'https://auth.internal/oauth',
      sub: 'svc-reports',
      aud: 'https://reports.internal',
      exp: IAT + 300,
      iat: IAT,
      client_id: 'svc-reports',
      scope: 'reports:read reports:write',
    });
  });

  it('gives several audiences as an array, in order', () => {
    const audience = ['https://reports.internal', 'urn:example:billing'];
    const claims = buildAccessTokenClaims({ ...input, audience });
    expect(claims.aud).to.deep.equal(['https://reports.internal', 'urn:example:billing']);
    expect(claims.aud).to.not.equal(audience);
  });

  it('counts iat and exp in whole seconds, rounding the clock down', () => {
    const claims = buildAccessTokenClaims({ ...input, now: 1_999, lifetime: 1 });
    expect(claims.iat).to.equal(1);
    expect(claims.exp).to.equal(2);
  });

  it('gives every token a different random (version 4) UUID as jti: 122 random bits', () => {
    const seen = new Set(Array.from({ length: 100 }, () => buildAccessTokenClaims(input).jti));
    expect(seen.size).to.equal(100);
    for (const jti of seen) expect(jti).to.match(JTI);
  });

  it('formats an empty scope list as the empty string', () => {
    expect(buildAccessTokenClaims({ ...input, scopes: [] }).scope).to.equal('');
  });

  it('adds extra claims that do not collide with reserved ones', () => {
    const claims = buildAccessTokenClaims({
      ...input, extraClaims: { tenant: 'acme', roles: ['a', 'b'], nested: { x: 1 }, none: null },
    });
    expect(withoutJti(claims)).to.deep.equal({
      tenant: 'acme', roles: ['a', 'b'], nested: { x: 1 }, none: null,
      iss: 'https://auth.internal/oauth', sub: 'svc-reports', aud: 'https://reports.internal',
      exp: IAT + 300, iat: IAT, client_id: 'svc-reports', scope: 'reports:read reports:write',
    });
  });

  it('drops extra claims whose value is undefined', () => {
    const claims = buildAccessTokenClaims({ ...input, extraClaims: { gone: undefined, kept: 0 } });
    expect(claims).to.not.have.property('gone');
    expect(claims.kept).to.equal(0);
  });

  it('never lets extra claims override a reserved claim', () => {
    const hostile = Object.fromEntries([...RESERVED_CLAIMS].map((name) => [name, `hostile-${name}`]));
    const claims = buildAccessTokenClaims({ ...input, extraClaims: { ...hostile, tenant: 'acme' } });
    expect(claims.jti).to.match(JTI);
    expect(withoutJti(claims)).to.deep.equal({
      tenant: 'acme',
      iss: 'https://auth.internal/oauth', sub: 'svc-reports', aud: 'https://reports.internal',
      exp: IAT + 300, iat: IAT, client_id: 'svc-reports', scope: 'reports:read reports:write',
    });
    for (const name of RESERVED_CLAIMS) expect(claims[name], name).to.not.equal(`hostile-${name}`);
  });

  it('does not let an extra "aud" or "exp" leak in when the audience has several entries', () => {
    const claims = buildAccessTokenClaims({
      ...input, audience: ['https://a', 'https://b'], extraClaims: { aud: 'https://evil', exp: 9_999_999_999 },
    });
    expect(claims.aud).to.deep.equal(['https://a', 'https://b']);
    expect(claims.exp).to.equal(IAT + 300);
  });
});

describe('createTokenSigner()', () => {
  const algs: readonly SigningAlgorithm[] = ['ES256', 'RS256', 'PS256'];
  const keys = new Map<SigningAlgorithm, GeneratedKey>();
  let other: GeneratedKey;

  before(async () => {
    for (const alg of algs) keys.set(alg, await generateSigningKey(alg));
    other = await generateSigningKey('ES256');
  });

  for (const alg of algs) {
    describe(`with alg ${alg}`, () => {
      let key: GeneratedKey;
      let token: string;
      let claims: Record<string, unknown>;

      before(async () => {
        key = keys.get(alg) as GeneratedKey;
        const sign = createTokenSigner({ kid: key.kid, alg, privateKey: importPrivateKey(key.privateKeyPem) });
        claims = buildAccessTokenClaims({ ...input, extraClaims: { tenant: 'acme' } });
        token = await sign(claims);
      });

      it('produces a compact JWS of three base64url segments', () => {
        expect(token).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      });

      it('sets the header to { alg, typ: "at+jwt", kid }', () => {
        expect(decodeSegment(token.split('.')[0])).to.deep.equal({ alg, typ: 'at+jwt', kid: key.kid });
        const decoded = jwt.decode(token, { complete: true });
        expect(decoded?.header).to.deep.equal({ alg, typ: 'at+jwt', kid: key.kid });
      });

      it('carries exactly the claims given', () => {
        expect(decodeSegment(token.split('.')[1])).to.deep.equal(claims);
      });

      it('is accepted by jsonwebtoken.verify() with the published public key', () => {
        const payload = jwt.verify(token, publicKeyOf(key), { algorithms: [alg], clockTimestamp: IAT + 10 });
        expect(payload).to.deep.equal(claims);
      });

      it('is rejected after the payload is tampered with', () => {
        const [header, , signature] = token.split('.');
        const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url');
        expect(() => jwt.verify(`${header}.${forged}.${signature}`, publicKeyOf(key), { algorithms: [alg], clockTimestamp: IAT }))
          .to.throw(jwt.JsonWebTokenError, 'invalid signature');
      });

      it('is rejected after the header is tampered with', () => {
        const [, payload, signature] = token.split('.');
        const forged = Buffer.from(JSON.stringify({ alg, typ: 'at+jwt', kid: other.kid })).toString('base64url');
        expect(() => jwt.verify(`${forged}.${payload}.${signature}`, publicKeyOf(key), { algorithms: [alg], clockTimestamp: IAT }))
          .to.throw(jwt.JsonWebTokenError, 'invalid signature');
      });

      it('is rejected after one character of the signature changes', () => {
        const [header, payload, signature = ''] = token.split('.');
        const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
        expect(() => jwt.verify(`${header}.${payload}.${flipped}`, publicKeyOf(key), { algorithms: [alg], clockTimestamp: IAT }))
          .to.throw(jwt.JsonWebTokenError, 'invalid signature');
      });

      it('is rejected with another key', () => {
        const wrong = alg === 'ES256' ? other : (keys.get(alg === 'RS256' ? 'PS256' : 'RS256') as GeneratedKey);
        expect(() => jwt.verify(token, publicKeyOf(wrong), { algorithms: [alg], clockTimestamp: IAT }))
          .to.throw(jwt.JsonWebTokenError, 'invalid signature');
      });

      it('is rejected when the verifier does not allow its algorithm', () => {
        const allowed: SigningAlgorithm[] = alg === 'ES256' ? ['RS256'] : [alg === 'RS256' ? 'PS256' : 'RS256'];
        expect(() => jwt.verify(token, publicKeyOf(key), { algorithms: allowed, clockTimestamp: IAT }))
          .to.throw(jwt.JsonWebTokenError, 'invalid algorithm');
      });

      it('is rejected by jsonwebtoken.verify() once expired', () => {
        expect(() => jwt.verify(token, publicKeyOf(key), { algorithms: [alg], clockTimestamp: IAT + 300 }))
          .to.throw(jwt.TokenExpiredError);
      });
    });
  }

  it('signs ES256 in the JOSE r||s form (64 bytes), not DER', async () => {
    const key = keys.get('ES256') as GeneratedKey;
    const sign = createTokenSigner({ kid: key.kid, alg: 'ES256', privateKey: importPrivateKey(key.privateKeyPem) });
    const jws = await sign({ a: 1 });
    const [header, payload, signature = ''] = jws.split('.');
    const sig = Buffer.from(signature, 'base64url');
    expect(sig).to.have.length(64);
    expect(verify('sha256', Buffer.from(`${header}.${payload}`), { key: publicKeyOf(key), dsaEncoding: 'ieee-p1363' }, sig))
      .to.equal(true);
  });

  it('signs PS256 with RSASSA-PSS, MGF1-SHA-256 and a 32-byte salt (RFC 7518 §3.5)', async () => {
    const key = keys.get('PS256') as GeneratedKey;
    const sign = createTokenSigner({ kid: key.kid, alg: 'PS256', privateKey: importPrivateKey(key.privateKeyPem) });
    const jws = await sign({ a: 1 });
    const [header, payload, signature = ''] = jws.split('.');
    const data = Buffer.from(`${header}.${payload}`);
    const sig = Buffer.from(signature, 'base64url');
    const pub = publicKeyOf(key);
    expect(sig).to.have.length(256);
    expect(verify('sha256', data, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)).to.equal(true);
    expect(verify('sha256', data, { key: pub, padding: constants.RSA_PKCS1_PADDING }, sig)).to.equal(false);
  });

  it('signs RS256 with RSASSA-PKCS1-v1_5', async () => {
    const key = keys.get('RS256') as GeneratedKey;
    const sign = createTokenSigner({ kid: key.kid, alg: 'RS256', privateKey: importPrivateKey(key.privateKeyPem) });
    const jws = await sign({ a: 1 });
    const [header, payload, signature = ''] = jws.split('.');
    const pub = publicKeyOf(key);
    expect(verify('sha256', Buffer.from(`${header}.${payload}`), { key: pub, padding: constants.RSA_PKCS1_PADDING },
      Buffer.from(signature, 'base64url'))).to.equal(true);
  });

  it('signs many tokens concurrently, each verifiable', async () => {
    for (const alg of algs) {
      const key = keys.get(alg) as GeneratedKey;
      const sign = createTokenSigner({ kid: key.kid, alg, privateKey: importPrivateKey(key.privateKeyPem) });
      const all = Array.from({ length: 20 }, (_, i) => buildAccessTokenClaims({ ...input, extraClaims: { i } }));
      const tokens = await Promise.all(all.map((c) => sign(c)));
      tokens.forEach((t, i) => {
        expect(jwt.verify(t, publicKeyOf(key), { algorithms: [alg], clockTimestamp: IAT })).to.deep.equal(all[i]);
      });
    }
  });
});
