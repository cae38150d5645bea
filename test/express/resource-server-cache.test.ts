import { expect } from 'chai';
import { createResourceServer, type ResourceServerOptions } from '../../lib/express/resource-server.js';
import { request, type Listening, type ReadResponse } from '../support/http.js';
import {
  AUDIENCE, bearer, claims, errorHeaders, makeKey, mint, stableHeaders, startApp, startJwksServer, type JwksServer, type TestKey,
} from './resource-server-fixtures.js';

// The verified-token cache, observed through the public API: a `claims` predicate runs once per
// signature verification (never for a cache hit), and the clock is injected.

describe('createResourceServer() verified-token cache', () => {
  let jwks: JwksServer;
  let key: TestKey;
  let now: number;
  const clock = () => now;
  let app: Listening | undefined;
  /** The `name` claim of every token verified (signature checked), in order. */
  let verified: string[];

  before(async () => {
    key = makeKey('ES256');
    jwks = await startJwksServer([key]);
  });
  after(() => jwks.close());
  beforeEach(() => {
    now = Date.now();
    verified = [];
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function serve(options: Partial<ResourceServerOptions> = {}): Promise<string> {
    const rs = createResourceServer({
      issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, clock,
      claims: { name: (value) => { verified.push(String(value)); return true; } },
      ...options,
    });
    app = await startApp((a, echo) => {
      a.get('/read', rs.requireScope('reports:read'), echo);
      a.get('/write', rs.requireScope('reports:write'), echo);
    });
    return app.url;
  }

  const token = (name: string, extra: Record<string, unknown> = {}) => mint(key, claims(jwks.issuer, { name, ...extra }, clock));
  const get = (url: string, t: string): Promise<ReadResponse> => request(url, { headers: bearer(t) });

  it('verifies a repeated token once', async () => {
    const url = await serve();
    const t = token('A');
    for (let i = 0; i < 5; i++) expect((await get(`${url}/read`, t)).status).to.equal(200);
    expect(verified).to.deep.equal(['A']);
    expect(jwks.jwksRequests).to.equal(1);
  });

  it('stops trusting a cached token once its key is withdrawn from the JWKS, and keeps trusting it while the key stays', async () => {
    const url = await serve({ jwksCacheMaxAge: 60 });
    const other = makeKey('ES256', { fresh: true, kid: 'other' });
    const t = token('A');
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    // A refetch that still publishes the key (unchanged) keeps the cached token.
    jwks.keys = [key, other];
    now += 61_000;
    expect((await get(`${url}/read`, mint(other, claims(jwks.issuer, { name: 'B' }, clock)))).status).to.equal(200);
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    expect(verified).to.deep.equal(['A', 'B']);
    // The issuer withdraws the key: after the next refetch its tokens are refused, cache or not.
    jwks.keys = [other];
    now += 61_000;
    expect((await get(`${url}/read`, mint(other, claims(jwks.issuer, { name: 'C' }, clock)))).status).to.equal(200);
    const refused = await get(`${url}/read`, t);
    jwks.keys = [key];
    expect(refused.status).to.equal(401);
    expect(refused.json).to.deep.equal({ error: 'invalid_token', error_description: 'no key matches the token kid' });
    expect(verified).to.deep.equal(['A', 'B', 'C']);
  });

  it('verifies every request with tokenCacheSize 0', async () => {
    const url = await serve({ tokenCacheSize: 0 });
    const t = token('A');
    for (let i = 0; i < 3; i++) expect((await get(`${url}/read`, t)).status).to.equal(200);
    expect(verified).to.deep.equal(['A', 'A', 'A']);
  });

  it('never serves an entry at or past exp, and rejects the expired token', async () => {
    const url = await serve();
    const exp = Math.floor(now / 1000) + 60;
    const t = token('A', { exp });
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    now = exp * 1000 - 1;
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    expect(verified).to.deep.equal(['A']);
    // Past exp but within the 5 s clock tolerance: accepted, but only after a new verification.
    now = exp * 1000 + 1000;
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    expect(verified).to.deep.equal(['A', 'A']);
    now = exp * 1000 + 5000;
    const res = await get(`${url}/read`, t);
    expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
      status: 401,
      headers: errorHeaders(`Bearer realm="${AUDIENCE}", error="invalid_token", error_description="the token has expired"`),
      body: { error: 'invalid_token', error_description: 'the token has expired' },
    });
  });

  it('evicts the least recently used token first', async () => {
    const url = await serve({ tokenCacheSize: 2 });
    const [a, b, c] = [token('A'), token('B'), token('C')];
    for (const t of [a, b, a, c, b, a]) expect((await get(`${url}/read`, t)).status).to.equal(200);
    // A, B verified; A hit (now most recent); C evicts B; B evicts A; A verified again.
    expect(verified).to.deep.equal(['A', 'B', 'C', 'B', 'A']);
  });

  it('keys the cache by the whole token: a changed signature is verified, and refused', async () => {
    const url = await serve();
    const t = token('A');
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    const [h, p, s = ''] = t.split('.');
    const forged = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    const res = await get(`${url}/read`, forged);
    expect({ status: res.status, body: res.json }).to.deep.equal({
      status: 401, body: { error: 'invalid_token', error_description: 'the token signature or claims are invalid' },
    });
  });

  it('still checks the scopes of each route for a cached token', async () => {
    const url = await serve();
    const t = token('A');
    expect((await get(`${url}/read`, t)).status).to.equal(200);
    const res = await get(`${url}/write`, t);
    expect({ status: res.status, challenge: res.headers['www-authenticate'], body: res.json }).to.deep.equal({
      status: 403,
      challenge: `Bearer realm="${AUDIENCE}", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:write"`,
      body: { error: 'insufficient_scope', error_description: 'the token lacks a required scope' },
    });
    expect(verified).to.deep.equal(['A']);
  });

  it('does not cache a token that failed verification', async () => {
    const url = await serve({ claims: { name: (value) => { verified.push(String(value)); return false; } } });
    const t = token('A');
    for (let i = 0; i < 2; i++) expect((await get(`${url}/read`, t)).status).to.equal(401);
    expect(verified).to.deep.equal(['A', 'A']);
  });
});
