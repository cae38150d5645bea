import { expect } from 'chai';
import { createResourceServer } from '../../lib/express/resource-server.js';
import { request, type Listening, type ReadResponse } from '../support/http.js';
import {
  AUDIENCE, bearer, claims, errorHeaders, makeKey, mint, segment, stableHeaders, startApp, startJwksServer, type JwksServer,
  type TestKey,
} from './resource-server-fixtures.js';

// However broken a token is, the answer is 401 invalid_token: never a 500, never a crash, and no
// JWKS request for a token that fails before its key is needed.

/** Every description a malformed token may get. */
const DESCRIPTIONS = new Set([
  'the token is not a signed JWT', 'the token signature is malformed', 'the token header is malformed', 'the token payload is malformed',
  'the token signing algorithm is not accepted', 'the token kid is malformed', 'the token type is malformed',
  'the token type is not accepted', 'the token header has critical extensions', 'the token issuer is not accepted',
  'the token audience is not accepted', 'the token has no expiry', 'the token has expired',
]);

function expectInvalid(res: ReadResponse, description: string): void {
  expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
    status: 401,
    headers: errorHeaders(`Bearer realm="${AUDIENCE}", error="invalid_token", error_description="${description}"`),
    body: { error: 'invalid_token', error_description: description },
  });
}

/** A small deterministic PRNG (mulberry32), so that a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('createResourceServer() with malformed tokens', () => {
  let jwks: JwksServer;
  let key: TestKey;
  let app: Listening;
  let issuer: string;

  before(async () => {
    key = makeKey('RS256');
    jwks = await startJwksServer([key]);
    issuer = jwks.issuer;
    const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri });
    app = await startApp((a, echo) => { a.get('/r', rs.requireScope('reports:read'), echo); });
  });
  after(async () => {
    await app.close();
    await jwks.close();
  });

  const p = () => segment(claims(issuer));
  const cases: [string, () => string, string][] = [
    ['10 kB of b64token characters', () => 'A'.repeat(10_240), 'the token is not a signed JWT'],
    ['10 kB in three segments', () => `${'a'.repeat(4000)}.${'b'.repeat(4000)}.${'c'.repeat(2000)}`, 'the token header is malformed'],
    ['three segments of invalid base64url (+ and /)', () => 'ab+/.cd+/.ef+/', 'the token header is malformed'],
    ['three segments that are not JSON', () => `${segment('{"alg":')}.${segment('not json')}.${segment('sig')}`, 'the token header is malformed'],
    ['a header that is a JSON array', () => `${segment([{ alg: 'RS256' }])}.${p()}.${segment('sig')}`, 'the token header is malformed'],
    ['a header that is null', () => `${segment('null')}.${p()}.${segment('sig')}`, 'the token header is malformed'],
    ['a header that is a string', () => `${segment('"RS256"')}.${p()}.${segment('sig')}`, 'the token header is malformed'],
    ['a header that is a number', () => `${segment('42')}.${p()}.${segment('sig')}`, 'the token header is malformed'],
    ['a payload that is an array', () => `${segment({ alg: 'RS256' })}.${segment([claims(issuer)])}.${segment('sig')}`, 'the token payload is malformed'],
    ['a payload nested 5000 deep', () => `${segment({ alg: 'RS256' })}.${segment(`${'['.repeat(5000)}${']'.repeat(5000)}`)}.${segment('sig')}`, 'the token payload is malformed'],
    ['a payload that is not JSON', () => `${segment({ alg: 'RS256' })}.${segment('{"iss":')}.${segment('sig')}`, 'the token payload is malformed'],
    ['an empty header segment', () => `.${p()}.${segment('sig')}`, 'the token header is malformed'],
    ['two dots only', () => '..', 'the token is not a signed JWT'],
    ['an empty signature', () => `${segment({ alg: 'RS256' })}.${p()}.`, 'the token is not a signed JWT'],
    ['two segments', () => `${segment({ alg: 'RS256' })}.${p()}`, 'the token is not a signed JWT'],
    ['five segments (a JWE)', () => `${segment({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.a.b.c.d`, 'the token is not a signed JWT'],
    ['a padded signature', () => `${segment({ alg: 'RS256' })}.${p()}.c2ln==`, 'the token signature is malformed'],
    ['an empty kid', () => `${segment({ alg: 'RS256', kid: '' })}.${p()}.${segment('sig')}`, 'the token kid is malformed'],
    ['a typ that is a number', () => `${segment({ alg: 'RS256', typ: 1 })}.${p()}.${segment('sig')}`, 'the token type is malformed'],
    ['a __proto__ member in the header', () => `${segment('{"alg":"RS256","__proto__":{"kid":"x"}}')}.${segment(claims('x'))}.${segment('sig')}`, 'the token issuer is not accepted'],
    ['an iss that is an array', () => `${segment({ alg: 'RS256' })}.${segment(claims(issuer, { iss: [issuer] }))}.${segment('sig')}`, 'the token issuer is not accepted'],
    ['an aud that is an object', () => `${segment({ alg: 'RS256' })}.${segment(claims(issuer, { aud: { 0: AUDIENCE } }))}.${segment('sig')}`, 'the token audience is not accepted'],
    ['an exp that is null', () => `${segment({ alg: 'RS256' })}.${segment(claims(issuer, { exp: null }))}.${segment('sig')}`, 'the token has no expiry'],
  ];
  for (const [what, make, description] of cases) {
    it(`rejects ${what} with 401 invalid_token, without a JWKS request`, async () => {
      expect(DESCRIPTIONS.has(description)).to.equal(true);
      expectInvalid(await request(`${app.url}/r`, { headers: bearer(make()) }), description);
      expect(jwks.jwksRequests).to.equal(0);
    });
  }

  it('answers 401 to 300 random tokens made of b64token characters, then still serves a valid one', async () => {
    const random = prng(20_240_601);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const pieces = [
      () => Array.from({ length: Math.floor(random() * 60) + 1 }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''),
      () => segment({ alg: ['RS256', 'none', 'HS256', 'ES256', 7][Math.floor(random() * 5)], kid: random() < 0.5 ? key.kid : 5 }),
      () => segment(claims(issuer, { exp: random() < 0.5 ? 'soon' : Math.floor(random() * 4e9), aud: random() < 0.5 ? AUDIENCE : 7 })),
      () => segment(['[]', '{}', 'null', '1e999', '"\\u0000"', '{"alg":"RS256"}', '[[[', '{"a":{"b":'][Math.floor(random() * 8)] as string),
    ];
    const tokens = Array.from({ length: 300 }, () => {
      const count = Math.floor(random() * 5) + 1;
      return Array.from({ length: count }, () => (pieces[Math.floor(random() * pieces.length)] as () => string)()).join('.');
    });
    const answers: ReadResponse[] = [];
    for (let i = 0; i < tokens.length; i += 30) {
      answers.push(...await Promise.all(tokens.slice(i, i + 30).map((t) => request(`${app.url}/r`, { headers: bearer(t) }))));
    }
    const seen = new Set<string>();
    answers.forEach((res, i) => {
      const body = res.json as { error?: string; error_description?: string } | undefined;
      expect({ i, status: res.status, error: body?.error }).to.deep.equal({ i, status: 401, error: 'invalid_token' });
      seen.add(String(body?.error_description));
      expect(DESCRIPTIONS.has(String(body?.error_description)) || body?.error_description === 'the token signature or claims are invalid'
        || body?.error_description === 'no key matches the token kid', String(body?.error_description)).to.equal(true);
    });
    expect(seen.size).to.be.greaterThan(4);
    const good = mint(key, claims(issuer));
    expect((await request(`${app.url}/r`, { headers: bearer(good) })).status).to.equal(200);
  });
});
