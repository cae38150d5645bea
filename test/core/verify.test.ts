import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { InvalidTokenError, TemporarilyUnavailableError } from '../../lib/errors.js';
import {
  checkAlgorithms, checkRequiredScopes, createTokenVerifier, hasScopes, readScopes, type KeyRequest, type TokenVerifierOptions,
  type VerificationKey,
} from '../../lib/core/verify.js';
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
  let now: number;
  let requests: KeyRequest[];

  before(() => {
    rsKey = makeKey('RS256');
    esKey = makeKey('ES256');
  });
  beforeEach(() => {
    now = Date.now();
    requests = [];
  });

  function verifier(options: Partial<TokenVerifierOptions> = {}) {
    return createTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      clock: () => now,
      getKey: async (request): Promise<VerificationKey> => {
        requests.push(request);
        const key = [rsKey, esKey].find((k) => k.kid === request.kid);
        if (!key) throw new InvalidTokenError('no key matches the token kid');
        return { key: key.publicKey, alg: key.alg };
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
});
