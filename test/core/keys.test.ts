import {
  createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type JsonWebKey,
} from 'node:crypto';
import { expect } from 'chai';
import {
  generateSigningKey, importPrivateKey, isSigningAlgorithm, SIGNING_ALGORITHMS, toPublicJwk, type PublicJwk,
} from '../../lib/core/keys.js';

/** The RSA key of RFC 7638 §3.1 and its published thumbprint. */
const RFC7638_N =
  '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3o' +
  'knjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHz' +
  'u6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8' +
  'awapJzKnqDKgw';
const RFC7638_THUMBPRINT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * RFC 7638 §3 computed independently of the library: an object holding only the required members,
 * built with its keys in lexicographic order, serialised by JSON.stringify (no whitespace).
 */
function independentThumbprint(jwk: Record<string, unknown>): string {
  const required = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n'];
  const ordered: Record<string, unknown> = {};
  for (const name of [...required].sort()) ordered[name] = jwk[name];
  return createHash('sha256').update(JSON.stringify(ordered), 'utf8').digest('base64url');
}

describe('isSigningAlgorithm()', () => {
  it('accepts ES256, RS256 and PS256', () => {
    expect(SIGNING_ALGORITHMS).to.deep.equal(['ES256', 'RS256', 'PS256']);
    for (const alg of SIGNING_ALGORITHMS) expect(isSigningAlgorithm(alg)).to.equal(true);
  });

  it('rejects none, symmetric and unknown algorithms', () => {
    for (const alg of ['none', 'HS256', 'es256', 'ES384', 'EdDSA', '', undefined, null, 256]) {
      expect(isSigningAlgorithm(alg), String(alg)).to.equal(false);
    }
  });
});

describe('toPublicJwk()', () => {
  it('gives the RFC 7638 §3.1 example key its published thumbprint as kid', () => {
    const key = createPublicKey({ key: { kty: 'RSA', n: RFC7638_N, e: 'AQAB' }, format: 'jwk' });
    expect(independentThumbprint({ kty: 'RSA', n: RFC7638_N, e: 'AQAB' })).to.equal(RFC7638_THUMBPRINT);
    expect(toPublicJwk(key, 'RS256')).to.deep.equal({
      kty: 'RSA', n: RFC7638_N, e: 'AQAB', kid: RFC7638_THUMBPRINT, alg: 'RS256', use: 'sig',
    });
  });

  it('gives an EC key the RFC 7638 thumbprint of crv, kty, x, y as kid', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const full = privateKey.export({ format: 'jwk' });
    const jwk = toPublicJwk(privateKey, 'ES256');
    expect(jwk).to.deep.equal({
      kty: 'EC', crv: 'P-256', x: full.x, y: full.y, kid: independentThumbprint(full as Record<string, unknown>),
      alg: 'ES256', use: 'sig',
    });
  });

  it('copies no private member from a private RSA key', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(Object.keys(privateKey.export({ format: 'jwk' }))).to.include.members(['d', 'p', 'q', 'dp', 'dq', 'qi']);
    const jwk = toPublicJwk(privateKey, 'PS256');
    expect(Object.keys(jwk).sort()).to.deep.equal(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });

  it('copies no private member from a private EC key', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = toPublicJwk(privateKey, 'ES256');
    expect(Object.keys(jwk).sort()).to.deep.equal(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });

  it('gives the same kid for the private key and its public key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(toPublicJwk(privateKey, 'ES256')).to.deep.equal(toPublicJwk(publicKey, 'ES256'));
  });
});

describe('generateSigningKey()', () => {
  const cases: readonly { alg: 'ES256' | 'RS256' | 'PS256'; kty: 'EC' | 'RSA'; members: string[] }[] = [
    { alg: 'ES256', kty: 'EC', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] },
    { alg: 'RS256', kty: 'RSA', members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] },
    { alg: 'PS256', kty: 'RSA', members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] },
  ];

  for (const { alg, kty, members } of cases) {
    describe(`with alg ${alg}`, () => {
      let key: Awaited<ReturnType<typeof generateSigningKey>>;
      before(async () => {
        key = await generateSigningKey(alg);
      });

      it('returns a public JWK with only public members and use "sig"', () => {
        expect(key.alg).to.equal(alg);
        expect(key.publicJwk.kty).to.equal(kty);
        expect(key.publicJwk.alg).to.equal(alg);
        expect(key.publicJwk.use).to.equal('sig');
        expect(Object.keys(key.publicJwk).sort()).to.deep.equal(members);
        for (const name of PRIVATE_MEMBERS) expect(key.publicJwk).to.not.have.property(name);
      });

      it('uses the RFC 7638 thumbprint of the public key as kid', () => {
        expect(key.kid).to.equal(key.publicJwk.kid);
        expect(key.kid).to.equal(independentThumbprint(key.publicJwk as unknown as Record<string, unknown>));
        expect(key.kid).to.match(/^[A-Za-z0-9_-]{43}$/);
      });

      it('stores the private key as a PKCS#8 PEM', () => {
        expect(key.privateKeyPem).to.match(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/);
        const imported = createPrivateKey(key.privateKeyPem);
        expect(imported.asymmetricKeyType).to.equal(kty === 'EC' ? 'ec' : 'rsa');
        if (kty === 'EC') expect(imported.asymmetricKeyDetails).to.deep.include({ namedCurve: 'prime256v1' });
        else expect(imported.asymmetricKeyDetails).to.deep.include({ modulusLength: 2048, publicExponent: 65537n });
      });

      it('pairs the private PEM with the published public JWK', () => {
        const data = Buffer.from('signing input');
        const signature = sign('sha256', data, importPrivateKey(key.privateKeyPem));
        const publicKey = createPublicKey({ key: key.publicJwk as unknown as JsonWebKey, format: 'jwk' });
        expect(verify('sha256', data, publicKey, signature)).to.equal(true);
        expect(verify('sha256', Buffer.from('other input'), publicKey, signature)).to.equal(false);
      });
    });
  }

  it('generates a new key on every call', async () => {
    const [a, b] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('ES256')]);
    expect(a.kid).to.not.equal(b.kid);
    expect(a.privateKeyPem).to.not.equal(b.privateKeyPem);
  });
});

describe('importPrivateKey()', () => {
  it('imports a PKCS#8 PEM as a private key object', async () => {
    const key = await generateSigningKey('ES256');
    const imported = importPrivateKey(key.privateKeyPem);
    expect(imported.type).to.equal('private');
    const jwk: PublicJwk = toPublicJwk(imported, 'ES256');
    expect(jwk).to.deep.equal(key.publicJwk);
  });

  it('throws on text that is not a PEM key', () => {
    expect(() => importPrivateKey('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n')).to.throw();
  });
});
