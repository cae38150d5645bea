import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { createResourceServer, REVOCATIONS_SCOPE, tokenClient, type ResourceServer } from '../../lib/index.js';
import { basic, postForm, request, type Listening, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { bearer, stableHeaders as stable, startApp } from './resource-server-fixtures.js';

// GET /revocations on a real issuer (SQLite), read by hand and by a real guard through a real
// tokenClient, as users wire them.

const REPORTS = 'https://reports.internal';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms); });

interface Parts {
  issuer: TestIssuer;
  secrets: Record<'lister' | 'worker' | 'other', string>;
  close(): Promise<void>;
}

async function start(): Promise<Parts> {
  const issuer = await startIssuer({ rateLimit: false });
  const { clients } = issuer.store;
  const created = {
    lister: await clients.create({ clientId: 'lister', name: 'lister', scopes: [REVOCATIONS_SCOPE], audiences: [REPORTS] }),
    worker: await clients.create({ clientId: 'worker', name: 'worker', scopes: ['reports:read'], audiences: [REPORTS] }),
    other: await clients.create({ clientId: 'other', name: 'other', scopes: ['reports:read'], audiences: [REPORTS] }),
  };
  const secrets = Object.fromEntries(Object.entries(created).map(([id, c]) => [id, c.clientSecret])) as Parts['secrets'];
  return { issuer, secrets, close: () => issuer.close() };
}

async function tokenOf(parts: Parts, clientId: keyof Parts['secrets']): Promise<string> {
  const res = await postForm(parts.issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(clientId, parts.secrets[clientId]) });
  expect(res.status, res.text).to.equal(200);
  return (res.json as { access_token: string }).access_token;
}

const claimsOf = (token: string) => jwt.decode(token) as { jti: string; exp: number; iat: number };

const JSON_NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache', 'content-type': 'application/json; charset=utf-8', 'x-powered-by': 'Express' };

describe('GET /revocations', () => {
  let parts: Parts;
  let url: string;
  let realm: string;
  beforeEach(async () => {
    parts = await start();
    url = `${parts.issuer.issuer}/revocations`;
    realm = new URL(parts.issuer.issuer).host;
  });
  afterEach(() => parts.close());

  const list = async (query = '', token?: string): Promise<ReadResponse> =>
    request(`${url}${query}`, { headers: bearer(token ?? await tokenOf(parts, 'lister')) });

  it('answers the record to a token with the m2m:revocations scope, oldest change first, then only what changed', async () => {
    expect([await list()].map((r) => [r.status, stable(r), r.json])).to.deep.equal([[200, JSON_NO_STORE, { cursor: '0', more: false, revocations: [] }]]);
    const held = await tokenOf(parts, 'worker');
    const revoke = await postForm(`${parts.issuer.issuer}/revoke`, { token: held }, { authorization: basic('worker', parts.secrets.worker) });
    expect(revoke.status).to.equal(200);
    await parts.issuer.store.clients.update('other', { enabled: false });
    const res = await list();
    const body = res.json as { cursor: string; more: boolean; revocations: Record<string, unknown>[] };
    const cutoff = body.revocations[1]?.revoked_before as number;
    expect(body).to.deep.equal({
      cursor: body.cursor, more: false, revocations: [
        { type: 'token', client_id: 'worker', jti: claimsOf(held).jti, exp: claimsOf(held).exp },
        { type: 'client', client_id: 'other', revoked_before: cutoff, exp: cutoff + 86_460 },
      ],
    });
    expect(cutoff).to.be.within(Math.floor(Date.now() / 1000), Math.floor(Date.now() / 1000) + 1);
    expect((await list(`?since=${body.cursor}`)).json).to.deep.equal({ cursor: body.cursor, more: false, revocations: [] });
    await parts.issuer.store.clients.revokeTokens('worker');
    const next = (await list(`?since=${body.cursor}`)).json as typeof body;
    expect(next.revocations.map((e) => [e.type, e.client_id])).to.deep.equal([['client', 'worker']]);
  });

  it('answers 401 with a bare Bearer challenge to a request without a token', async () => {
    const res = await request(url);
    expect([res.status, res.headers['www-authenticate'], res.text]).to.deep.equal([401, `Bearer realm="${realm}"`, '']);
  });

  for (const [what, token] of [['a malformed token', 'not-a-jwt'], ['another issuer\'s token', jwt.sign({ iss: 'https://evil.example' }, 'x'.repeat(32))]] as const) {
    it(`answers 401 invalid_token to ${what}`, async () => {
      const res = await list('', token);
      expect([res.status, res.headers['www-authenticate'], res.json]).to.deep.equal([401,
        `Bearer realm="${realm}", error="invalid_token", error_description="the token is not active"`,
        { error: 'invalid_token', error_description: 'the token is not active' }]);
    });
  }

  it('answers 401 invalid_token to the token of a disabled client, and to a revoked one', async () => {
    const token = await tokenOf(parts, 'lister');
    await parts.issuer.store.revocations.revokeToken({ jti: claimsOf(token).jti, clientId: 'lister', expiresAt: new Date(claimsOf(token).exp * 1000) });
    expect((await list('', token)).status).to.equal(401);
    const fresh = await tokenOf(parts, 'lister');
    await parts.issuer.store.clients.update('lister', { enabled: false });
    expect((await list('', fresh)).status).to.equal(401);
  });

  it('answers 403 insufficient_scope naming m2m:revocations to a token without it', async () => {
    const res = await list('', await tokenOf(parts, 'worker'));
    expect([res.status, res.headers['www-authenticate'], res.json]).to.deep.equal([403,
      `Bearer realm="${realm}", error="insufficient_scope", error_description="the token lacks the scope to read revocations", scope="m2m:revocations"`,
      { error: 'insufficient_scope', error_description: 'the token lacks the scope to read revocations' }]);
  });

  for (const query of ['?since=abc', '?since=-1', '?since=1&since=2', `?since=${'9'.repeat(16)}`, '?since=']) {
    it(`answers 400 invalid_request to ${query.slice(0, 30)}`, async () => {
      const res = await list(query);
      expect([res.status, res.json]).to.deep.equal([400, { error: 'invalid_request', error_description: 'since must be the cursor of an earlier answer, once' }]);
    });
  }

  it('answers 405 with Allow: GET to other methods', async () => {
    const res = await postForm(url, { since: '0' });
    expect([res.status, res.headers.allow, res.json]).to.deep.equal([405, 'GET', { error: 'invalid_request', error_description: 'this endpoint accepts GET only' }]);
  });

  it('answers 503 with Retry-After, without internals, when the record cannot be read', async () => {
    const token = await tokenOf(parts, 'lister');
    await parts.issuer.db.knex.schema.dropTable(`${parts.issuer.db.prefix}revocations`);
    const res = await list('', token);
    expect([res.status, res.headers['retry-after'], res.json]).to.deep.equal([503, '5', {
      error: 'temporarily_unavailable', error_description: 'the revocation list is temporarily unavailable' }]);
    expect(res.text).not.to.match(/select|sqlite|m2m_/i);
  });
});

describe('a guard with revocations, reading the issuer\'s list with a tokenClient', () => {
  let parts: Parts;
  let api: Listening;
  let rs: ResourceServer;
  // The guard goes on reading the list in the background after its test (it stops by itself after
  // five idle minutes); once the test is over its reads fail at once instead of running the
  // tokenClient's retries against a closed issuer, whose metrics other test files would see.
  let over = false;
  beforeEach(async () => {
    over = false;
    parts = await start();
  });
  afterEach(async () => {
    over = true;
    await api.close();
    await parts.close();
  });

  async function serve(refreshInterval: number): Promise<string> {
    const lister = tokenClient({ tokenUrl: parts.issuer.tokenUrl, clientId: 'lister', clientSecret: parts.secrets.lister, scope: REVOCATIONS_SCOPE });
    rs = createResourceServer({
      issuer: parts.issuer.issuer, audience: REPORTS,
      revocations: { refreshInterval, maxStale: 60, fetch: (url, init) => (over ? Promise.reject(new Error('the test is over')) : lister.fetch(url, init)) },
    });
    api = await startApp((app, echo) => { app.get('/r', rs.requireScope('reports:read'), echo); });
    return `${api.url}/r`;
  }

  it('refuses a token revoked with tokenClient().revoke() once it reads the list again, cached or not', async () => {
    const url = await serve(10);
    const worker = tokenClient({ issuer: parts.issuer.issuer, clientId: 'worker', clientSecret: parts.secrets.worker, scope: 'reports:read' });
    const first = await worker.fetch(url);
    expect(first.status).to.equal(200);
    const held = (await worker.getToken()).accessToken;
    await worker.revoke();
    expect((await request(url, { headers: bearer(held) })).status).to.equal(200);
    await rs.refreshRevocations();
    const res = await request(url, { headers: bearer(held) });
    expect([res.status, res.json]).to.deep.equal([401, { error: 'invalid_token', error_description: 'the token has been revoked' }]);
    expect((await worker.fetch(url)).status).to.equal(200);
  });

  it('refuses the tokens of a client disabled at the issuer within refreshInterval, in the background', async () => {
    const url = await serve(0.2);
    const held = await tokenOf(parts, 'other');
    expect((await request(url, { headers: bearer(held) })).status).to.equal(200);
    await parts.issuer.store.clients.update('other', { enabled: false });
    let res = await request(url, { headers: bearer(held) });
    for (let i = 0; i < 100 && res.status === 200; i++) {
      await sleep(50);
      res = await request(url, { headers: bearer(held) });
    }
    expect([res.status, res.json]).to.deep.equal([401, { error: 'invalid_token', error_description: 'the token has been revoked' }]);
    expect((await request(url, { headers: bearer(await tokenOf(parts, 'worker')) })).status).to.equal(200);
  });

  it('fails closed with 503 when its own client cannot read the list (the lister disabled)', async () => {
    const url = await serve(10);
    await parts.issuer.store.clients.update('lister', { enabled: false });
    const res = await request(url, { headers: bearer(await tokenOf(parts, 'worker')) });
    expect([res.status, res.headers['retry-after'], res.json]).to.deep.equal([503, '5', {
      error: 'temporarily_unavailable', error_description: 'the revocation list is unavailable' }]);
  });
});
