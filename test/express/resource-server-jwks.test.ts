import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { TemporarilyUnavailableError } from '../../lib/errors.js';
import { createResourceServer, type ResourceServerOptions } from '../../lib/express/resource-server.js';
import { rejectionOf } from '../support/rejection.js';
import { request, type Listening, type ReadResponse } from '../support/http.js';
import {
  AUDIENCE, bearer, claims, errorHeaders, makeKey, mint, stableHeaders, startApp, startJwksServer, type JwksServer, type TestKey,
} from './resource-server-fixtures.js';

// JWKS behaviour through the public API: a real JWKS server on loopback that counts its requests
// and fails on demand, and a clock injected into the resource server (never a timing assertion).

const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'the signing keys are unavailable' };

function expectUnavailable(res: ReadResponse, description = UNAVAILABLE.error_description): void {
  expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
    status: 503, headers: errorHeaders(undefined, { 'retry-after': '5' }), body: { error: 'temporarily_unavailable', error_description: description },
  });
}

function expectInvalid(res: ReadResponse, description: string): void {
  expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
    status: 401,
    headers: errorHeaders(`Bearer realm="${AUDIENCE}", error="invalid_token", error_description="${description}"`),
    body: { error: 'invalid_token', error_description: description },
  });
}

function expectOk(res: ReadResponse, token: string): void {
  expect(res.status, res.text).to.equal(200);
  expect((res.json as { auth: { token: string } }).auth.token).to.equal(token);
}

describe('createResourceServer() JWKS handling', () => {
  let jwks: JwksServer;
  let keyA: TestKey;
  let keyB: TestKey;
  let now: number;
  const clock = () => now;
  const apps: Listening[] = [];

  beforeEach(async () => {
    now = Date.now();
    keyA = makeKey('RS256');
    keyB = makeKey('ES256');
    jwks = await startJwksServer([keyA]);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await jwks.close();
  });

  async function serve(options: Partial<ResourceServerOptions> = {}): Promise<string> {
    const rs = createResourceServer({ issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, clock, ...options });
    const app = await startApp((a, echo) => { a.get('/r', rs.requireScope('reports:read'), echo); });
    apps.push(app);
    return `${app.url}/r`;
  }

  const token = (key: TestKey, header: Record<string, unknown> = {}) => mint(key, claims(jwks.issuer, {}, clock), header);

  describe('when the JWKS is unreachable', () => {
    for (const [what, mode] of [['answers 500', 'fail'], ['answers something that is not JSON', 'garbage'], ['holds no key', 'empty'],
      ['answers more than 1 MiB', 'huge'], ['streams more than 1 MiB without a length', 'huge-chunked']] as const) {
      it(`answers 503 with Retry-After when the JWKS ${what}, and asks again only after the cooldown`, async () => {
        const url = await serve({ jwksCooldown: 30 });
        jwks.mode = mode;
        const t = token(keyA);
        for (let i = 0; i < 20; i++) expectUnavailable(await request(url, { headers: bearer(t) }));
        expect(jwks.jwksRequests).to.equal(1);
        jwks.mode = 'ok';
        now += 29_000;
        expectUnavailable(await request(url, { headers: bearer(t) }));
        expect(jwks.jwksRequests).to.equal(1);
        now += 1_000;
        expectOk(await request(url, { headers: bearer(t) }), t);
        expect(jwks.jwksRequests).to.equal(2);
      });
    }

    it('sends at most one request per cooldown to a failing JWKS under 200 concurrent requests', async () => {
      const url = await serve({ jwksCooldown: 30 });
      jwks.mode = 'fail';
      const tokens = Array.from({ length: 200 }, () => token(keyA));
      const answers = await Promise.all(tokens.map((t) => request(url, { headers: bearer(t) })));
      for (const res of answers) expectUnavailable(res);
      for (let i = 0; i < 3; i++) {
        now += 10_000;
        const again = await Promise.all(tokens.slice(0, 50).map((t) => request(url, { headers: bearer(t) })));
        for (const res of again) expectUnavailable(res);
      }
      expect(jwks.jwksRequests).to.equal(2);
    });

    it('fails closed with 503 when the JWKS does not answer within jwksTimeout', async () => {
      const url = await serve({ jwksTimeout: 0.2, jwksCooldown: 0 });
      jwks.mode = 'hang';
      const t = token(keyA);
      expectUnavailable(await request(url, { headers: bearer(t) }));
      jwks.mode = 'ok';
      expectOk(await request(url, { headers: bearer(t) }), t);
      expect(jwks.jwksRequests).to.equal(2);
    });

    it('answers 503 when nothing listens at the JWKS address', async () => {
      const closed = await startJwksServer([]);
      const jwksUri = closed.jwksUri;
      await closed.close();
      const url = await serve({ jwksUri });
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }));
    });

    it('shares one JWKS request between concurrent requests', async () => {
      const url = await serve();
      const tokens = Array.from({ length: 20 }, () => token(keyA));
      const answers = await Promise.all(tokens.map((t) => request(url, { headers: bearer(t) })));
      answers.forEach((res, i) => expectOk(res, tokens[i] as string));
      expect(jwks.jwksRequests).to.equal(1);
    });
  });

  describe('with an unknown kid', () => {
    it('picks up a key published after the first fetch without a restart', async () => {
      const url = await serve();
      const a = token(keyA);
      expectOk(await request(url, { headers: bearer(a) }), a);
      jwks.keys = [keyA, keyB];
      const b = token(keyB);
      expectOk(await request(url, { headers: bearer(b) }), b);
      expect(jwks.jwksRequests).to.equal(2);
    });

    it('refetches at most once per cooldown for a flood of random kids, while cached kids keep working', async () => {
      const url = await serve({ jwksCooldown: 30 });
      const good = token(keyA);
      expectOk(await request(url, { headers: bearer(good) }), good);
      expect(jwks.jwksRequests).to.equal(1);

      const flood = Array.from({ length: 60 }, () => token(keyA, { kid: randomUUID() }));
      const [floodAnswers, goodAnswers] = await Promise.all([
        Promise.all(flood.map((t) => request(url, { headers: bearer(t) }))),
        Promise.all(Array.from({ length: 10 }, () => token(keyA)).map(async (t) => [t, await request(url, { headers: bearer(t) })] as const)),
      ]);
      for (const res of floodAnswers) expectInvalid(res, 'no key matches the token kid');
      for (const [t, res] of goodAnswers) expectOk(res, t);
      expect(jwks.jwksRequests).to.equal(2);

      now += 29_000;
      expectInvalid(await request(url, { headers: bearer(token(keyA, { kid: randomUUID() })) }), 'no key matches the token kid');
      expect(jwks.jwksRequests).to.equal(2);
      now += 1_000;
      expectInvalid(await request(url, { headers: bearer(token(keyA, { kid: randomUUID() })) }), 'no key matches the token kid');
      expect(jwks.jwksRequests).to.equal(3);
    });

    it('answers 503, not 401, when the refetch for an unknown kid fails, and keeps serving cached kids', async () => {
      const url = await serve();
      const a = token(keyA);
      expectOk(await request(url, { headers: bearer(a) }), a);
      jwks.mode = 'fail';
      expectUnavailable(await request(url, { headers: bearer(token(keyB)) }));
      // Within the cooldown no new request is made, and the answer is still 503.
      expectUnavailable(await request(url, { headers: bearer(token(keyB)) }));
      expect(jwks.jwksRequests).to.equal(2);
      const again = token(keyA);
      expectOk(await request(url, { headers: bearer(again) }), again);
    });

    it('does not refetch for a token without kid', async () => {
      jwks.keys = [keyA, keyB];
      const url = await serve();
      const a = token(keyA);
      expectOk(await request(url, { headers: bearer(a) }), a);
      expectInvalid(await request(url, { headers: bearer(token(keyA, { kid: undefined })) }), 'the token names no key and the key set holds several');
      expect(jwks.jwksRequests).to.equal(1);
    });

    it('accepts a token without kid when the key set holds one key', async () => {
      const url = await serve();
      const t = token(keyA, { kid: undefined });
      expectOk(await request(url, { headers: bearer(t) }), t);
    });
  });

  describe('with "jwksCacheMaxAge" option', () => {
    it('fetches the key set again once it is older than the maximum age, dropping withdrawn keys', async () => {
      jwks.keys = [keyA, keyB];
      const url = await serve({ jwksCacheMaxAge: 600 });
      const a = token(keyA);
      expectOk(await request(url, { headers: bearer(a) }), a);
      jwks.keys = [keyB];
      now += 599_000;
      const a2 = token(keyA);
      expectOk(await request(url, { headers: bearer(a2) }), a2);
      expect(jwks.jwksRequests).to.equal(1);
      now += 1_000;
      expectInvalid(await request(url, { headers: bearer(token(keyA)) }), 'no key matches the token kid');
      expect(jwks.jwksRequests).to.equal(2);
    });
  });

  describe('when a key is withdrawn from the JWKS', () => {
    /** A fresh keyA token gets through. */
    async function passes(url: string): Promise<void> {
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
    }

    async function serveRs(options: Partial<ResourceServerOptions> = {}) {
      const rs = createResourceServer({ issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, clock, ...options });
      const app = await startApp((a, echo) => { a.get('/r', rs.requireScope('reports:read'), echo); });
      apps.push(app);
      return { rs, url: `${app.url}/r` };
    }

    it('keeps the key set no longer than the JWKS Cache-Control max-age when it is below jwksCacheMaxAge', async () => {
      jwks.cacheControl = 'public, max-age=60';
      const { url } = await serveRs({ jwksCacheMaxAge: 600 });
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
      now += 59_000;
      await passes(url);
      expect(jwks.jwksRequests).to.equal(1);
      now += 2_000;
      await passes(url);
      expect(jwks.jwksRequests).to.equal(2);
    });

    it('keeps jwksCacheMaxAge when the JWKS max-age is longer, or its Cache-Control is malformed', async () => {
      for (const header of ['max-age=3600', 'max-age=abc', 'no-cache, max-age=-5']) {
        jwks.cacheControl = header;
        jwks.jwksRequests = 0;
        const { url } = await serveRs({ jwksCacheMaxAge: 120 });
        await passes(url);
        now += 119_000;
        await passes(url);
        expect(jwks.jwksRequests, header).to.equal(1);
        now += 2_000;
        await passes(url);
        expect(jwks.jwksRequests, header).to.equal(2);
      }
    });

    it('refuses a repeated, cached token once its key set is older than the max-age and the key is gone', async () => {
      jwks.cacheControl = 'max-age=300';
      const { url } = await serveRs();
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
      jwks.keys = [keyB];
      now += 299_000;
      expectOk(await request(url, { headers: bearer(t) }), t);
      now += 2_000;
      expectInvalid(await request(url, { headers: bearer(t) }), 'no key matches the token kid');
      expect(jwks.jwksRequests).to.equal(2);
    });

    it('refetches at once on rs.refreshKeys(), after which a cached token of a withdrawn key is refused', async () => {
      const { rs, url } = await serveRs();
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
      jwks.keys = [keyB];
      await rs.refreshKeys();
      expect(jwks.jwksRequests).to.equal(2);
      expectInvalid(await request(url, { headers: bearer(t) }), 'no key matches the token kid');
      // Its kid is now unknown: one refetch for it, then the cooldown holds.
      expectInvalid(await request(url, { headers: bearer(t) }), 'no key matches the token kid');
      const b = token(keyB);
      expectOk(await request(url, { headers: bearer(b) }), b);
      expect(jwks.jwksRequests).to.equal(3);
    });

    it('refetches on rs.refreshKeys() even within the cooldown of a failure, and rejects when the JWKS still fails', async () => {
      const { rs, url } = await serveRs();
      jwks.mode = 'fail';
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }));
      await rejectionOf(rs.refreshKeys(), TemporarilyUnavailableError);
      jwks.mode = 'ok';
      await rs.refreshKeys();
      expect(jwks.jwksRequests).to.equal(3);
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
    });
  });

  describe('with "jwksServeStale" option', () => {
    it('serves the last keys during an outage within the window, and 503 after it', async () => {
      const url = await serve({ jwksCacheMaxAge: 600, jwksServeStale: 300 });
      const a = token(keyA);
      expectOk(await request(url, { headers: bearer(a) }), a);
      jwks.mode = 'fail';
      now += 800_000;
      const stale = token(keyA);
      expectOk(await request(url, { headers: bearer(stale) }), stale);
      now += 100_000;
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }));
      expect(jwks.jwksRequests).to.equal(3);
    });

    it('answers 503 during an outage once the cache is too old, by default', async () => {
      const url = await serve({ jwksCacheMaxAge: 600 });
      const a = token(keyA);
      expectOk(await request(url, { headers: bearer(a) }), a);
      jwks.mode = 'fail';
      now += 600_000;
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }));
    });
  });

  describe('without "jwksUri" (discovery)', () => {
    async function discover(options: Partial<ResourceServerOptions> = {}): Promise<string> {
      const rs = createResourceServer({ issuer: jwks.issuer, audience: AUDIENCE, clock, ...options });
      const app = await startApp((a, echo) => { a.get('/r', rs.requireScope('reports:read'), echo); });
      apps.push(app);
      return `${app.url}/r`;
    }

    it('finds the JWKS through OpenID Connect discovery, once', async () => {
      const url = await discover();
      for (let i = 0; i < 3; i++) {
        const t = token(keyA);
        expectOk(await request(url, { headers: bearer(t) }), t);
      }
      expect({ metadata: jwks.metadataRequests, jwks: jwks.jwksRequests }).to.deep.equal({
        metadata: { '/issuer/.well-known/openid-configuration': 1 }, jwks: 1,
      });
    });

    it('falls back to the RFC 8414 location', async () => {
      jwks.metadata.openid = false;
      jwks.metadata.rfc8414 = true;
      const url = await discover();
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
      expect(jwks.metadataRequests).to.deep.equal({
        '/issuer/.well-known/openid-configuration': 1, '/.well-known/oauth-authorization-server/issuer': 1,
      });
    });

    it('answers 503 when the metadata names another issuer', async () => {
      jwks.metadata.issuer = 'https://evil.example';
      const url = await discover();
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }), 'the issuer metadata is unavailable');
      expect(jwks.jwksRequests).to.equal(0);
    });

    it('answers 503 when the metadata points at an http JWKS off loopback', async () => {
      jwks.metadata.jwksUri = 'http://jwks.example/keys';
      const url = await discover();
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }), 'the issuer metadata is unavailable');
    });

    it('answers 503 when no metadata is found', async () => {
      jwks.metadata.openid = false;
      const url = await discover();
      expectUnavailable(await request(url, { headers: bearer(token(keyA)) }), 'the issuer metadata is unavailable');
      expect(Object.values(jwks.metadataRequests).reduce((n, c) => n + c, 0)).to.equal(3);
    });

    it('answers 503 when the metadata fails, and asks again only after the cooldown', async () => {
      jwks.metadata.status = 500;
      const url = await discover();
      for (let i = 0; i < 10; i++) expectUnavailable(await request(url, { headers: bearer(token(keyA)) }), 'the issuer metadata is unavailable');
      const failedOnce = { ...jwks.metadataRequests };
      jwks.metadata.status = 200;
      const t = token(keyA);
      expectUnavailable(await request(url, { headers: bearer(t) }), 'the issuer metadata is unavailable');
      expect(jwks.metadataRequests).to.deep.equal(failedOnce);
      now += 30_000;
      expectOk(await request(url, { headers: bearer(t) }), t);
      expect(jwks.metadataRequests['/issuer/.well-known/openid-configuration']).to.equal((failedOnce['/issuer/.well-known/openid-configuration'] ?? 0) + 1);
    });

    it('discovers each issuer of a list, one JWKS client per JWKS URI', async () => {
      const other = await startJwksServer([keyB]);
      try {
        const rs = createResourceServer({ issuer: [jwks.issuer, other.issuer], audience: AUDIENCE, clock });
        const app = await startApp((a, echo) => { a.get('/r', rs.requireScope('reports:read'), echo); });
        apps.push(app);
        for (let i = 0; i < 2; i++) {
          const a = token(keyA);
          const b = mint(keyB, claims(other.issuer, {}, clock));
          expectOk(await request(`${app.url}/r`, { headers: bearer(a) }), a);
          expectOk(await request(`${app.url}/r`, { headers: bearer(b) }), b);
        }
        // A token from one issuer naming the other's key is not looked up in the other's JWKS.
        expectInvalid(await request(`${app.url}/r`, { headers: bearer(mint(keyB, claims(jwks.issuer, {}, clock))) }), 'no key matches the token kid');
        expect([jwks.jwksRequests, other.jwksRequests]).to.deep.equal([2, 1]);
      } finally {
        await other.close();
      }
    });

    it('uses the host fetch for metadata and JWKS when given', async () => {
      const fetched: string[] = [];
      const url = await discover({
        fetch: (input, init) => {
          fetched.push(new URL(input).pathname);
          return fetch(input, init);
        },
      });
      const t = token(keyA);
      expectOk(await request(url, { headers: bearer(t) }), t);
      expect(fetched).to.deep.equal(['/issuer/.well-known/openid-configuration', '/jwks.json']);
    });
  });
});
