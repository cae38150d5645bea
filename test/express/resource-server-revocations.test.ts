import { expect } from 'chai';
import express from 'express';
import { createResourceServer, type ResourceServer, type ResourceServerOptions } from '../../lib/express/resource-server.js';
import { listen, request, type Listening, type ReadResponse } from '../support/http.js';
import {
  AUDIENCE, bearer, claims, errorHeaders, makeKey, mint, nowSeconds, stableHeaders, startApp, startJwksServer, type JwksServer, type TestKey,
} from './resource-server-fixtures.js';

// The guard's revocation view through the public API: a real JWKS server and a real revocation
// list server on loopback (the list in the wire format this package's issuer serves), which count
// their requests and fail on demand.

type Entry =
  | { type: 'token'; client_id: string; jti: string; exp: number }
  | { type: 'client'; client_id: string; revoked_before: number; exp: number };

interface ListServer {
  uri: string;
  /** Every request's `since`, in order ('' for none). */
  reads: string[];
  mode: 'ok' | 'fail' | 'garbage' | 'huge' | 'malformed';
  pageSize: number;
  add(entry: Entry): void;
  close(): Promise<void>;
}

async function startListServer(): Promise<ListServer> {
  const log: { seq: number; entry: Entry }[] = [];
  const app = express();
  const state = { reads: [] as string[], mode: 'ok', pageSize: 1000 } as ListServer;
  app.get('/revocations', (req, res) => {
    const since = typeof req.query.since === 'string' ? req.query.since : '';
    state.reads.push(since);
    if (state.mode === 'fail') { res.status(500).json({ error: 'server_error' }); return; }
    if (state.mode === 'garbage') { res.type('application/json').send('{"cursor": '); return; }
    if (state.mode === 'malformed') { res.json({ cursor: '1', more: false, revocations: [{ type: 'token', client_id: 'c' }] }); return; }
    if (state.mode === 'huge') { res.type('application/json').send(`{"cursor":"1","more":false,"revocations":[],"pad":"${'x'.repeat(9 * 1024 * 1024)}"}`); return; }
    const after = since === '' ? 0 : Number(since);
    const rows = log.filter((r) => r.seq > after);
    const page = rows.slice(0, state.pageSize);
    res.set('Cache-Control', 'no-store').json({
      cursor: String(page.at(-1)?.seq ?? after), more: rows.length > page.length, revocations: page.map((r) => r.entry),
    });
  });
  const server: Listening = await listen(app);
  return Object.assign(state, {
    uri: `${server.url}/revocations`,
    add(entry: Entry) { log.push({ seq: log.length + 1, entry }); },
    close: () => server.close(),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms); });

function expectRevoked(res: ReadResponse): void {
  const description = 'the token has been revoked';
  expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
    status: 401,
    headers: errorHeaders(`Bearer realm="${AUDIENCE}", error="invalid_token", error_description="${description}"`),
    body: { error: 'invalid_token', error_description: description },
  });
}

function expectUnavailable(res: ReadResponse): void {
  expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
    status: 503,
    headers: errorHeaders(undefined, { 'retry-after': '5' }),
    body: { error: 'temporarily_unavailable', error_description: 'the revocation list is unavailable' },
  });
}

describe('createResourceServer() with revocations', () => {
  let jwks: JwksServer;
  let list: ListServer;
  let key: TestKey;
  const apps: Listening[] = [];

  beforeEach(async () => {
    key = makeKey('ES256');
    jwks = await startJwksServer([key]);
    list = await startListServer();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await jwks.close();
    await list.close();
  });

  async function serve(revocations: NonNullable<ResourceServerOptions['revocations']> = { uri: list.uri }): Promise<{ url: string; rs: ResourceServer }> {
    const rs = createResourceServer({ issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, revocations });
    const app = await startApp((a, echo) => { a.get('/r', rs.requireScope('reports:read'), echo); });
    apps.push(app);
    return { url: `${app.url}/r`, rs };
  }

  const token = (extra: Record<string, unknown> = {}): { token: string; jti: string; exp: number } => {
    const payload = claims(jwks.issuer, extra);
    return { token: mint(key, payload), jti: payload.jti as string, exp: payload.exp as number };
  };

  it('refuses a token the list names by jti with 401 invalid_token, and lets others through', async () => {
    const revoked = token();
    list.add({ type: 'token', client_id: 'svc-reports', jti: revoked.jti, exp: revoked.exp });
    const { url } = await serve();
    expectRevoked(await request(url, { headers: bearer(revoked.token) }));
    expect((await request(url, { headers: bearer(token().token) })).status).to.equal(200);
    // The same jti for another client is another token.
    expect((await request(url, { headers: bearer(token({ jti: revoked.jti, client_id: 'other', sub: 'other' }).token) })).status).to.equal(200);
    expect(list.reads).to.deep.equal(['']);
  });

  it('refuses a client\'s tokens issued before its cutoff, and accepts those issued from it on', async () => {
    const now = nowSeconds();
    list.add({ type: 'client', client_id: 'svc-reports', revoked_before: now, exp: now + 86_400 });
    const { url } = await serve();
    expectRevoked(await request(url, { headers: bearer(token({ iat: now - 1 }).token) }));
    expectRevoked(await request(url, { headers: bearer(token({ iat: undefined }).token) }));
    expect((await request(url, { headers: bearer(token({ iat: now }).token) })).status).to.equal(200);
    expect((await request(url, { headers: bearer(token({ client_id: 'other', sub: 'other', iat: now - 1 }).token) })).status).to.equal(200);
  });

  it('checks a cached token against the list too, once refreshRevocations() read the revocation', async () => {
    const { url, rs } = await serve();
    const held = token();
    expect((await request(url, { headers: bearer(held.token) })).status).to.equal(200);
    expect((await request(url, { headers: bearer(held.token) })).status).to.equal(200);
    list.add({ type: 'token', client_id: 'svc-reports', jti: held.jti, exp: held.exp });
    await rs.refreshRevocations();
    expectRevoked(await request(url, { headers: bearer(held.token) }));
    expect(list.reads).to.deep.equal(['', '0']);
  });

  it('learns of a revocation in the background, every refreshInterval, reading only what changed', async () => {
    const { url } = await serve({ uri: list.uri, refreshInterval: 0.1, maxStale: 5 });
    const held = token();
    expect((await request(url, { headers: bearer(held.token) })).status).to.equal(200);
    list.add({ type: 'token', client_id: 'svc-reports', jti: 'another', exp: held.exp });
    list.add({ type: 'token', client_id: 'svc-reports', jti: held.jti, exp: held.exp });
    let res = await request(url, { headers: bearer(held.token) });
    for (let i = 0; i < 100 && res.status === 200; i++) {
      await sleep(50);
      res = await request(url, { headers: bearer(held.token) });
    }
    expectRevoked(res);
    expect(list.reads.slice(0, 2)).to.deep.equal(['', '0']);
    expect(list.reads.slice(2).every((since) => since === '2')).to.equal(true);
  });

  it('reads every page of a long list before it answers', async () => {
    list.pageSize = 2;
    const held = token();
    for (let i = 0; i < 5; i++) list.add({ type: 'token', client_id: 'svc-reports', jti: `j${i}`, exp: held.exp });
    list.add({ type: 'token', client_id: 'svc-reports', jti: held.jti, exp: held.exp });
    const { url } = await serve();
    expectRevoked(await request(url, { headers: bearer(held.token) }));
    expect(list.reads).to.deep.equal(['', '2', '4']);
  });

  for (const mode of ['fail', 'garbage', 'malformed', 'huge'] as const) {
    it(`fails closed with 503 and Retry-After when the list answers ${mode} before its first read, one read per refreshInterval`, async () => {
      list.mode = mode;
      const { url } = await serve({ uri: list.uri, refreshInterval: 30 });
      const answers = await Promise.all(Array.from({ length: 5 }, () => request(url, { headers: bearer(token().token) })));
      for (const res of answers) expectUnavailable(res);
      expectUnavailable(await request(url, { headers: bearer(token().token) }));
      expect(list.reads).to.deep.equal(['']);
    });
  }

  it('answers from its copy while the list fails, and fails closed once the copy is older than maxStale', async () => {
    const { url } = await serve({ uri: list.uri, refreshInterval: 0.1, maxStale: 1 });
    const held = token();
    expect((await request(url, { headers: bearer(held.token) })).status).to.equal(200);
    list.mode = 'fail';
    await sleep(300);
    expect((await request(url, { headers: bearer(held.token) })).status).to.equal(200);
    await sleep(1200);
    expectUnavailable(await request(url, { headers: bearer(held.token) }));
    expectUnavailable(await request(url, { headers: bearer(token().token) }));
    list.mode = 'ok';
    let res = await request(url, { headers: bearer(held.token) });
    for (let i = 0; i < 100 && res.status !== 200; i++) {
      await sleep(50);
      res = await request(url, { headers: bearer(held.token) });
    }
    expect(res.status).to.equal(200);
  });

  it('reports each read through revocations.fetched and revocations.unavailable', async () => {
    const { rs } = await serve();
    const seen: unknown[] = [];
    rs.events.on('revocations.fetched', (e) => seen.push({ event: 'fetched', uri: e.uri, entries: e.entries, timed: e.durationMs >= 0 }));
    rs.events.on('revocations.unavailable', (e) => seen.push({ event: 'unavailable', uri: e.uri, error: (e.error as Error).message, timed: e.durationMs >= 0 }));
    list.add({ type: 'token', client_id: 'svc-reports', jti: 'j1', exp: nowSeconds() + 60 });
    await rs.refreshRevocations();
    list.mode = 'fail';
    const failure = await rs.refreshRevocations().then(() => undefined, (err: unknown) => err);
    expect(failure).to.have.property('code', 'temporarily_unavailable');
    expect(seen).to.deep.equal([
      { event: 'fetched', uri: list.uri, entries: 1, timed: true },
      { event: 'unavailable', uri: list.uri, error: `HTTP 500 from ${list.uri}?since=1`, timed: true },
    ]);
  });

  it('reads <issuer>/revocations with revocations: true', async () => {
    const rs = createResourceServer({ issuer: `${new URL(list.uri).origin}`, audience: AUDIENCE, jwksUri: jwks.jwksUri, revocations: true });
    await rs.refreshRevocations();
    expect(list.reads).to.deep.equal(['']);
  });

  describe('options', () => {
    const base = (): ResourceServerOptions => ({ issuer: 'https://issuer.example', audience: AUDIENCE, jwksUri: 'https://issuer.example/jwks.json' });
    const cases: [string, unknown, string, string][] = [
      ['an unknown setting', { uri: 'https://issuer.example/r', refresh: 5 }, 'ERR_M2M_UNKNOWN_OPTION', 'revocations.refresh'],
      ['a string', 'https://issuer.example/r', 'ERR_M2M_INVALID_OPTION', 'revocations'],
      ['a zero interval', { refreshInterval: 0 }, 'ERR_M2M_INVALID_OPTION', 'revocations.refreshInterval'],
      ['maxStale below the interval', { refreshInterval: 30, maxStale: 10 }, 'ERR_M2M_INVALID_OPTION', 'revocations.maxStale'],
      ['an http uri off loopback', { uri: 'http://issuer.example/revocations' }, 'ERR_M2M_INVALID_OPTION', 'revocations.uri'],
      ['a relative uri', { uri: '/revocations' }, 'ERR_M2M_INVALID_OPTION', 'revocations.uri'],
    ];
    for (const [what, value, code, option] of cases) {
      it(`refuses ${what} at creation`, () => {
        let thrown: unknown;
        try {
          createResourceServer({ ...base(), revocations: value as boolean });
        } catch (err) {
          thrown = err;
        }
        expect(thrown).to.be.instanceOf(TypeError);
        expect({ code: (thrown as { code: string }).code, option: (thrown as { option: string }).option }).to.deep.equal({ code, option });
      });
    }

    it('refuses a uri with several issuers', () => {
      expect(() => createResourceServer({ ...base(), issuer: ['https://a.example', 'https://b.example'], revocations: { uri: 'https://a.example/r' } }))
        .to.throw(TypeError, /single issuer/);
    });

    it('makes no request at creation', async () => {
      createResourceServer({ ...base(), issuer: jwks.issuer, revocations: { uri: list.uri } });
      await sleep(50);
      expect(list.reads).to.deep.equal([]);
    });
  });
});
