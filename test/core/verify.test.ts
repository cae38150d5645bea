import { constants, createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { rejectionOf } from '../support/rejection.js';
import { InvalidTokenError, TemporarilyUnavailableError } from '../../lib/errors.js';
import {
  ASYMMETRIC_ALGORITHMS, checkAlgorithms, createTokenVerifier, type KeyRequest, type TokenVerifierOptions, type VerificationKey,
} from '../../lib/core/verify.js';
import { checkRequiredScopes, hasScopes, readScopes } from '../../lib/core/scope.js';
import { AUDIENCE, claims, makeKey, mint, segment, type TestKey } from '../express/resource-server-fixtures.js';

const ISSUER = 'https://auth.internal/oauth';

async function rejection(promise: Promise<unknown>): Promise<{ name: string; status: number; message: string }> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof Error)) throw new Error('expected a rejection');
  return { name: err.name, status: (err as InvalidTokenError).status, message: err.message };
}

describe('readScopes()', () => {
  it('splits a space-delimited string, dropping empty tokens', () => {
    expect(readScopes(' a  b:c ')).to.deep.equal(['a', 'b:c']);
  });
  it('takes an array of strings as is', () => {
    expect(readScopes(['a', 'b'])).to.deep.equal(['a', 'b']);
  });
  it('grants nothing for an absent or null claim', () => {
    expect(readScopes(undefined)).to.deep.equal([]);
    expect(readScopes(null)).to.deep.equal([]);
  });
  it('returns undefined for any other value', () => {
    for (const value of [1, true, {}, ['a', 1], [['a']]]) expect(readScopes(value)).to.equal(undefined);
  });
});

describe('hasScopes()', () => {
  it('requires every scope with "all"', () => {
    expect(hasScopes(['a', 'b'], ['a', 'b'], 'all')).to.equal(true);
    expect(hasScopes(['a'], ['a', 'b'], 'all')).to.equal(false);
  });
  it('requires one scope with "any"', () => {
    expect(hasScopes(['b'], ['a', 'b'], 'any')).to.equal(true);
    expect(hasScopes(['c'], ['a', 'b'], 'any')).to.equal(false);
  });
  it('compares whole scope tokens, never substrings', () => {
    expect(hasScopes(['reports:readonly'], ['reports:read'], 'all')).to.equal(false);
    expect(hasScopes(['reports:read write'], ['write'], 'any')).to.equal(false);
  });
});

describe('checkAlgorithms()', () => {
  it('defaults to RS256, PS256 and ES256', () => {
    expect(checkAlgorithms(undefined)).to.deep.equal(['RS256', 'PS256', 'ES256']);
  });
  it('throws a TypeError for none, HS256 or an unknown algorithm', () => {
    for (const bad of [['none'], ['HS256'], ['RS256', 'EdDSA'], [], 'RS256']) {
      expect(() => checkAlgorithms(bad)).to.throw(TypeError, /algorithms/);
    }
  });
});

describe('checkRequiredScopes()', () => {
  it('accepts one scope, a space-delimited list or an array, deduplicated', () => {
    expect(checkRequiredScopes('a b a', 'scopes')).to.deep.equal(['a', 'b']);
    expect(checkRequiredScopes(['a'], 'scopes')).to.deep.equal(['a']);
  });
  it('throws a TypeError for an empty list or a malformed token', () => {
    for (const bad of ['', [], ['a"b'], ['a\\b'], [7]]) expect(() => checkRequiredScopes(bad, 'scopes')).to.throw(TypeError, /scopes/);
  });
});

describe('createTokenVerifier()', () => {
  let rsKey: TestKey;
  let esKey: TestKey;
  /** What getKey finds, by kid: rsKey and esKey, and whatever a test adds. */
  let keys: TestKey[];
  let now: number;
  let requests: KeyRequest[];

  before(() => {
    rsKey = makeKey('RS256');
    esKey = makeKey('ES256');
  });
  beforeEach(() => {
    now = Date.now();
    requests = [];
    keys = [rsKey, esKey];
  });

  function verifier(options: Partial<TokenVerifierOptions> = {}) {
    return createTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      clock: () => now,
      getKey: async (request): Promise<VerificationKey> => {
        requests.push(request);
        const key = keys.find((k) => k.kid === request.kid);
        if (!key) throw new InvalidTokenError('no key matches the token kid');
        return { key: key.publicKey, alg: key.jwk.alg === undefined ? undefined : key.alg };
      },
      ...options,
    });
  }

  const token = (key: TestKey, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    mint(key, claims(ISSUER, extra, () => now), header);

  describe('options', () => {
    const cases: [string, Partial<Record<keyof TokenVerifierOptions, unknown>>, RegExp][] = [
      ['no issuer', { issuer: undefined }, /issuer is required/],
      ['an issuer list with an empty string', { issuer: [ISSUER, ''] }, /issuer is required/],
      ['no audience', { audience: undefined }, /audience is required/],
      ['no getKey', { getKey: undefined }, /getKey/],
      ['a clockTolerance over 300 s', { clockTolerance: 301 }, /clockTolerance/],
      ['a negative tokenCacheSize', { tokenCacheSize: -1 }, /tokenCacheSize/],
      ['a clock that is not a function', { clock: 0 }, /clock/],
      ['claims that are not an object', { claims: 'tenant' }, /claims/],
    ];
    for (const [what, change, message] of cases) {
      it(`throws a TypeError for ${what}`, () => {
        const options = { issuer: ISSUER, audience: AUDIENCE, getKey: () => Promise.reject(new Error('unused')), ...change };
        expect(() => createTokenVerifier(options as TokenVerifierOptions)).to.throw(TypeError, message);
      });
    }
  });

  it('returns the header, payload, client id and scopes of a valid token, frozen', async () => {
    const t = token(esKey, { azp: 'ignored-after-client_id' });
    const auth = await verifier().verify(t);
    const [h = '', p = ''] = t.split('.');
    expect(auth).to.deep.equal({
      token: t, header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
      clientId: 'svc-reports', scopes: ['reports:read', 'reports:list'],
    });
    expect([Object.isFrozen(auth), Object.isFrozen(auth.header), Object.isFrozen(auth.payload), Object.isFrozen(auth.scopes)])
      .to.deep.equal([true, true, true, true]);
    expect(requests).to.deep.equal([{ issuer: ISSUER, kid: esKey.kid, alg: 'ES256' }]);
  });

  it('reads the client id from client_id, azp, cid or appid, in that order', async () => {
    const v = verifier({ tokenCacheSize: 0 });
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{ client_id: 'a', azp: 'b' }, 'a'],
      [{ client_id: undefined, azp: 'b', cid: 'c' }, 'b'],
      [{ client_id: undefined, cid: 'c', appid: 'd' }, 'c'],
      [{ client_id: undefined, appid: 'd' }, 'd'],
      [{ client_id: undefined, azp: 7 }, undefined],
    ];
    for (const [extra, clientId] of cases) expect((await v.verify(token(rsKey, extra))).clientId).to.equal(clientId);
  });

  it('asks for no key for a token refused by its header or claims', async () => {
    const v = verifier();
    const hs = `${segment({ alg: 'HS256', kid: rsKey.kid })}.${segment(claims(ISSUER))}`;
    const tokens = [
      `${segment({ alg: 'none' })}.${segment(claims(ISSUER))}.`,
      `${hs}.${createHmac('sha256', 'k').update(hs).digest('base64url')}`,
      token(rsKey, { iss: 'https://evil.example' }),
      token(rsKey, { exp: Math.floor(now / 1000) - 10 }),
      token(rsKey, { aud: 'https://other.internal' }),
      token(rsKey, {}, { typ: 'JOSE' }),
    ];
    for (const t of tokens) expect((await rejection(v.verify(t))).status).to.equal(401);
    expect(requests).to.deep.equal([]);
  });

  it('answers a repeated token from the cache without asking for a key again', async () => {
    const v = verifier();
    const t = token(rsKey);
    const first = await v.verify(t);
    expect(await v.verify(t)).to.equal(first);
    expect(requests).to.have.length(1);
  });

  it('answers cached() from the cache only, never past exp, and never with a revocation hook', async () => {
    const v = verifier({ clockTolerance: 0 });
    const t = token(rsKey, { exp: Math.floor(now / 1000) + 10 });
    expect(v.cached(t)).to.equal(undefined);
    const auth = await v.verify(t);
    expect(v.cached(t)).to.equal(auth);
    now += 10_000;
    expect(v.cached(t)).to.equal(undefined);
    const hooked = verifier({ isRevoked: () => false });
    const h = token(rsKey);
    await hooked.verify(h);
    expect(hooked.cached(h)).to.equal(undefined);
    expect(requests).to.have.length(2);
  });

  it('refuses a token issued in the future beyond the clock tolerance, before any key lookup', async () => {
    const v = verifier({ clockTolerance: 5 });
    const inSeconds = (s: number) => Math.floor(now / 1000) + s;
    expect(await rejection(v.verify(token(rsKey, { iat: inSeconds(86_400), exp: inSeconds(86_400 + 300) })))).to.deep.equal({
      name: 'InvalidTokenError', status: 401, message: 'the token was issued in the future' });
    expect(requests).to.deep.equal([]);
    expect((await v.verify(token(rsKey, { iat: inSeconds(4) }))).payload.iat).to.equal(inSeconds(4));
  });

  describe('with "maxTokenAge" option', () => {
    it('refuses a token older than maxTokenAge through jsonwebtoken (maxAge), and one without iat', async () => {
      const v = verifier({ maxTokenAge: 60, clockTolerance: 0 });
      const old = token(rsKey, { iat: Math.floor(now / 1000) - 61 });
      const err = await rejectionOf(v.verify(old), InvalidTokenError);
      expect([err.message, (err.cause as Error).name, (err.cause as Error).message]).to.deep.equal([
        'the token is too old', 'TokenExpiredError', 'maxAge exceeded']);
      expect(await rejection(v.verify(token(rsKey, { iat: undefined })))).to.deep.equal({
        name: 'InvalidTokenError', status: 401, message: 'the token has no iat claim' });
      expect((await v.verify(token(rsKey, { iat: Math.floor(now / 1000) - 59 }))).token).to.be.a('string');
    });

    it('throws an InvalidOptionError for a maxTokenAge that is not a positive number of seconds', () => {
      for (const bad of [0, -1, '60', null]) {
        expect(() => verifier({ maxTokenAge: bad as number })).to.throw(TypeError, 'maxTokenAge');
      }
    });
  });

  it('rechecks expiry for a cached token', async () => {
    const v = verifier({ clockTolerance: 0 });
    const t = token(rsKey, { exp: Math.floor(now / 1000) + 10 });
    await v.verify(t);
    now += 10_000;
    expect(await rejection(v.verify(t))).to.deep.equal({ name: 'InvalidTokenError', status: 401, message: 'the token has expired' });
  });

  it('turns a key lookup failure into 503 temporarily_unavailable, and passes an InvalidTokenError through', async () => {
    const failing = verifier({ getKey: () => Promise.reject(new Error('ECONNREFUSED')) });
    expect(await rejection(failing.verify(token(rsKey)))).to.deep.equal({
      name: 'TemporarilyUnavailableError', status: 503, message: 'the signing keys are unavailable',
    });
    expect(await rejection(verifier().verify(token(rsKey, {}, { kid: 'unknown' })))).to.deep.equal({
      name: 'InvalidTokenError', status: 401, message: 'no key matches the token kid',
    });
  });

  it('refuses an empty or non-string token', async () => {
    const v = verifier();
    for (const bad of ['', undefined, 42]) {
      expect(await rejection(v.verify(bad as never))).to.deep.equal({ name: 'InvalidTokenError', status: 401, message: 'the token is empty' });
    }
  });

  it('answers 503 when the revocation hook throws, and 401 when it says revoked', async () => {
    const down = verifier({ isRevoked: () => { throw new Error('down'); } });
    const err = await down.verify(token(rsKey)).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(TemporarilyUnavailableError);
    expect((err as TemporarilyUnavailableError).headers).to.deep.equal({ 'Retry-After': '5' });
    const revoked = verifier({ isRevoked: () => true });
    expect(await rejection(revoked.verify(token(rsKey)))).to.deep.equal({ name: 'InvalidTokenError', status: 401, message: 'the token has been revoked' });
  });

  it('accepts a token from any of several issuers and for any of several audiences', async () => {
    const v = verifier({ issuer: ['https://a.example', ISSUER], audience: ['https://x.internal', AUDIENCE] });
    expect((await v.verify(token(rsKey))).payload.iss).to.equal(ISSUER);
  });

  describe('signatures', () => {
    const all = { algorithms: ASYMMETRIC_ALGORITHMS };
    const invalid = { name: 'InvalidTokenError', status: 401, message: 'the token signature or claims are invalid' };
    const mismatch = { name: 'InvalidTokenError', status: 401, message: 'the token algorithm does not match its key' };

    /** `token` with its signature replaced by `bytes`. */
    const resign = (t: string, bytes: Buffer): string => `${t.slice(0, t.lastIndexOf('.'))}.${bytes.toString('base64url')}`;
    const signatureOf = (t: string): Buffer => Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url');

    for (const alg of ASYMMETRIC_ALGORITHMS) {
      describe(`${alg}`, () => {
        let key: TestKey;
        beforeEach(() => {
          key = makeKey(alg);
          keys.push(key);
        });

        it('accepts a valid token', async () => {
          const t = token(key);
          expect((await verifier(all).verify(t)).token).to.equal(t);
        });

        it('rejects a signature one byte short, one byte long, or of 2 kB', async () => {
          const t = token(key);
          const signature = signatureOf(t);
          const v = verifier(all);
          for (const bytes of [signature.subarray(1), Buffer.concat([signature, Buffer.from([0])]), Buffer.alloc(2048, 1)]) {
            expect(await rejection(v.verify(resign(t, bytes)))).to.deep.equal(invalid);
          }
        });

        it('rejects a signature with one bit flipped', async () => {
          const t = token(key);
          const signature = signatureOf(t);
          signature[10] = (signature[10] ?? 0) ^ 0x10;
          expect(await rejection(verifier(all).verify(resign(t, signature)))).to.deep.equal(invalid);
        });

        it('rejects a token signed by another key under the published kid', async () => {
          const stranger = makeKey(alg, { kid: key.kid, fresh: true });
          expect(await rejection(verifier(all).verify(token(stranger)))).to.deep.equal(invalid);
        });
      });
    }

    it('refuses through jsonwebtoken.verify: its error is the cause, with its class', async () => {
      const key = makeKey('ES256');
      keys.push(key);
      const t = token(key);
      const signature = signatureOf(t);
      signature[5] = (signature[5] ?? 0) ^ 0x01;
      const err = await rejectionOf(verifier().verify(resign(t, signature)), InvalidTokenError);
      expect(err.cause).to.be.instanceOf(jwt.JsonWebTokenError);
      expect((err.cause as Error).message).to.equal('invalid signature');
    });

    it('rejects a PS256 signature whose salt is not 32 bytes long (RFC 7518 §3.5)', async () => {
      const key = makeKey('PS256');
      keys.push(key);
      const t = token(key);
      const input = Buffer.from(t.slice(0, t.lastIndexOf('.')));
      const v = verifier(all);
      for (const saltLength of [0, 20, 64, constants.RSA_PSS_SALTLEN_MAX_SIGN]) {
        const signature = sign('sha256', input, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
        expect(await rejection(v.verify(resign(t, signature))), String(saltLength)).to.deep.equal(invalid);
      }
    });

    it('rejects an RS256 signature over PS256 padding and the reverse', async () => {
      const rs = makeKey('RS256', { publishAlg: false });
      keys.push(rs);
      const v = verifier(all);
      const asPs = mint({ ...rs, alg: 'PS256' }, claims(ISSUER, {}, () => now), { alg: 'RS256' });
      const asRs = mint(rs, claims(ISSUER, {}, () => now), { alg: 'PS256' });
      expect(await rejection(v.verify(asPs))).to.deep.equal(invalid);
      expect(await rejection(v.verify(asRs))).to.deep.equal(invalid);
    });

    it('rejects a key that cannot make the algorithm\'s signatures, when its JWK declares no alg', async () => {
      const rs = makeKey('RS256', { publishAlg: false });
      const p256 = makeKey('ES256', { publishAlg: false });
      const p384 = makeKey('ES384', { publishAlg: false });
      keys.push(rs, p256, p384);
      const v = verifier(all);
      const cases = [
        mint({ ...rs, alg: 'ES256' }, claims(ISSUER, {}, () => now)),
        mint({ ...p256, alg: 'RS256' }, claims(ISSUER, {}, () => now)),
        mint({ ...p384, alg: 'ES256' }, claims(ISSUER, {}, () => now)),
        mint({ ...p256, alg: 'ES384' }, claims(ISSUER, {}, () => now)),
      ].map((t, i) => [i, t] as const);
      for (const [i, t] of cases) expect({ i, ...(await rejection(v.verify(t))) }).to.deep.equal({ i, ...mismatch });
    });

    it('rejects a private key handed over as the verification key', async () => {
      const rs = makeKey('RS256');
      keys.push({ ...rs, publicKey: rs.privateKey });
      expect(await rejection(verifier().verify(token(rs)))).to.deep.equal(mismatch);
    });

    it('verifies PS256 with an RSA-PSS key restricted to SHA-256, and refuses PS384 with it', async () => {
      const pair = generateKeyPairSync('rsa-pss', { modulusLength: 2048, hashAlgorithm: 'sha256', mgf1HashAlgorithm: 'sha256' });
      const ps256: TestKey = { kid: 'pss', alg: 'PS256', ...pair, jwk: { alg: 'PS256' } };
      keys.push(ps256);
      const v = verifier(all);
      const t = token(ps256);
      expect((await v.verify(t)).token).to.equal(t);
      // The key cannot sign PS384 at all: any RSA key makes the token, the kid points at the PSS key.
      keys.push({ ...ps256, kid: 'pss-no-alg', jwk: {} });
      expect(await rejection(v.verify(token(makeKey('PS384'), {}, { kid: 'pss-no-alg' })))).to.deep.equal(mismatch);
    });

    it('accepts a signature that has a zero leading byte (RSA) or a short R (ECDSA) at full length', async () => {
      // Fixed-length encodings: a signature is never trimmed, so the length check cannot refuse a valid one.
      const v = verifier({ ...all, tokenCacheSize: 0 });
      for (const key of [makeKey('ES256'), makeKey('RS256')]) {
        keys.push(key);
        let found = 0;
        for (let i = 0; i < 4000 && found === 0; i++) {
          const t = token(key, { jti: `j${i}` });
          if (signatureOf(t)[0] !== 0) continue;
          found++;
          expect((await v.verify(t)).token).to.equal(t);
        }
        expect(found, key.alg).to.equal(1);
      }
    });
  });
});
