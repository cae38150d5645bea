import { Readable } from 'node:stream';
import axios, { AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { expect } from 'chai';
import express from 'express';
import { tokenClient, type TokenClient, type TokenClientOptions, type TokenRejectedEvent } from '../../lib/index.js';
import { listen, type Listening } from '../support/http.js';
import { startApi, startTokenServer, type TestApi, type TestTokenServer } from './fixtures.js';
import { rejectionOf } from '../support/rejection.js';

// The axios adapter (client.axios(instance)) against a real token endpoint and real APIs on
// loopback ports: the Authorization header, the replay after a 401 invalid_token and its limits.

const CLIENT_ID = 'svc-a';
const SECRET = 'secret-a';
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token", error_description="the token is not valid"';
const INSUFFICIENT_SCOPE_CHALLENGE = 'Bearer realm="api", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:write"';

/** One request the side API received. */
interface SeenSideRequest {
  method: string;
  path: string;
  authorization: string | undefined;
}

/** An API for what the fixture API does not answer: header echo, a Basic challenge, a 403. */
interface SideApi extends Listening {
  requests: SeenSideRequest[];
}

async function startSideApi(): Promise<SideApi> {
  const app = express();
  const requests: SeenSideRequest[] = [];
  app.use((req, _res, next) => {
    requests.push({ method: req.method, path: req.path, authorization: req.headers.authorization });
    next();
  });
  app.get('/echo', (req, res) => {
    res.json({ authorization: req.headers.authorization ?? null, trace: req.get('x-trace') ?? null, tenant: req.get('x-tenant') ?? null });
  });
  app.get('/basic', (_req, res) => {
    res.status(401).set('www-authenticate', 'Basic realm="legacy"').json({ error: 'unauthorized' });
  });
  app.get('/bearer-without-error', (_req, res) => {
    res.status(401).set('www-authenticate', 'Bearer realm="api"').json({ error: 'unauthorized' });
  });
  app.post('/reports', (_req, res) => {
    res.status(403).set('www-authenticate', INSUFFICIENT_SCOPE_CHALLENGE)
      .json({ error: 'insufficient_scope', error_description: 'the token lacks a required scope' });
  });
  const server = await listen(app);
  return Object.assign(server, { requests });
}

/** The parts of a response the tests assert: status, the headers that matter, body. */
function summary(res: AxiosResponse | undefined): { status: number | undefined; challenge: unknown; body: unknown } {
  return { status: res?.status, challenge: res?.headers['www-authenticate'], body: res?.data };
}

describe('TokenClient.axios()', () => {
  let tokens: TestTokenServer;
  let api: TestApi;
  let side: SideApi;

  beforeEach(async () => {
    tokens = await startTokenServer({ [CLIENT_ID]: SECRET });
    api = await startApi(tokens);
    side = await startSideApi();
  });
  afterEach(async () => {
    await Promise.all([tokens.close(), api.close(), side.close()]);
  });

  function create(options: Partial<TokenClientOptions> = {}): { client: TokenClient; rejected: TokenRejectedEvent[] } {
    const client = tokenClient({ tokenUrl: tokens.tokenUrl, clientId: CLIENT_ID, clientSecret: SECRET, retry: false, ...options });
    const rejected: TokenRejectedEvent[] = [];
    client.events.on('token.rejected', (event) => rejected.push(event));
    return { client, rejected };
  }

  function instance(client: TokenClient, baseURL = api.url): AxiosInstance {
    return client.axios(axios.create({ baseURL }));
  }

  /** Tokens the token server issued, in order. */
  const issued = (): string[] => [...tokens.issued.keys()];

  it('returns the instance it was given', () => {
    const { client } = create();
    const http = axios.create({ baseURL: api.url });
    expect(client.axios(http)).to.equal(http);
  });

  it('attaches Authorization: Bearer with the token from the token endpoint', async () => {
    const { client } = create();
    const res = await instance(client).get('/reports');
    expect({ status: res.status, body: res.data }).to.deep.equal({
      status: 200, body: { ok: true, method: 'GET', path: '/reports', body: '' },
    });
    expect(tokens.requests).to.have.length(1);
    expect(tokens.requests[0]?.authorization).to.equal(`Basic ${Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64')}`);
    expect(tokens.requests[0]?.form).to.deep.equal({ grant_type: ['client_credentials'] });
    expect(issued()).to.have.length(1);
    expect(api.requests).to.deep.equal([{ method: 'GET', token: issued()[0], body: '', valid: true }]);
  });

  it("stops waiting for a token when the request's signal aborts; the API sees nothing", async () => {
    tokens.delay = 300;
    const { client } = create();
    const err = await rejectionOf(instance(client).get('/reports', { signal: AbortSignal.timeout(30) }), Error);
    expect([err.name, api.requests.length]).to.deep.equal(['TimeoutError', 0]);
    const res = await instance(client).get('/reports');
    expect([res.status, api.requests.length, tokens.requests.length]).to.deep.equal([200, 1, 1]);
  });

  it('keeps the headers the host sets, on the instance and on the request', async () => {
    const { client } = create();
    const http = client.axios(axios.create({ baseURL: side.url, headers: { 'X-Trace': 'trace-1' } }));
    const res = await http.get('/echo', { headers: { 'X-Tenant': 'acme' } });
    expect({ status: res.status, body: res.data }).to.deep.equal({
      status: 200, body: { authorization: `Bearer ${issued()[0]}`, trace: 'trace-1', tenant: 'acme' },
    });
  });

  it('replaces an Authorization header the host set with the Bearer token', async () => {
    const { client } = create();
    const res = await instance(client, side.url).get('/echo', { headers: { Authorization: 'Basic c3ZjOnB3' } });
    expect(res.data).to.deep.equal({ authorization: `Bearer ${issued()[0]}`, trace: null, tenant: null });
  });

  it('reuses one token for calls after the first', async () => {
    const { client } = create();
    const http = instance(client);
    for (let i = 0; i < 3; i++) expect((await http.get('/reports')).status).to.equal(200);
    expect(tokens.requests).to.have.length(1);
    expect(api.requests.map((r) => r.token)).to.deep.equal([issued()[0], issued()[0], issued()[0]]);
  });

  describe('after a 401 invalid_token', () => {
    it('replays a GET once with a new token and resolves with the 200', async () => {
      const { client, rejected } = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await instance(client).get('/reports');
      expect({ status: res.status, body: res.data }).to.deep.equal({
        status: 200, body: { ok: true, method: 'GET', path: '/reports', body: '' },
      });
      expect(tokens.requests).to.have.length(2);
      const [, second] = issued();
      expect(second).to.be.a('string').and.not.equal(first);
      expect(api.requests).to.deep.equal([
        { method: 'GET', token: first, body: '', valid: false },
        { method: 'GET', token: second, body: '', valid: true },
      ]);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: true }]);
    });

    it('rejects with the AxiosError of the second 401 after exactly two requests', async () => {
      const { client, rejected } = create();
      api.refuseAll = true;
      const err = await rejectionOf(instance(client).get('/reports'), AxiosError);
      expect(summary(err.response)).to.deep.equal({ status: 401, challenge: INVALID_TOKEN_CHALLENGE, body: { error: 'invalid_token' } });
      expect(api.requests.map((r) => r.token)).to.deep.equal(issued());
      expect(api.requests).to.have.length(2);
      expect(tokens.requests).to.have.length(2);
      expect(rejected).to.deep.equal([
        { clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: true },
        { clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: false },
      ]);
    });

    it('does not replay a POST by default but drops the token, so the next call gets a new one', async () => {
      const { client, rejected } = create();
      const http = instance(client);
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const err = await rejectionOf(http.post('/reports', { title: 'q3' }), AxiosError);
      expect(summary(err.response)).to.deep.equal({ status: 401, challenge: INVALID_TOKEN_CHALLENGE, body: { error: 'invalid_token' } });
      expect(api.requests).to.deep.equal([{ method: 'POST', token: first, body: '{"title":"q3"}', valid: false }]);
      expect(tokens.requests).to.have.length(1);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'POST', replayed: false }]);

      const res = await http.get('/reports');
      expect(res.status).to.equal(200);
      expect(tokens.requests).to.have.length(2);
      const second = issued()[1];
      expect(second).to.be.a('string').and.not.equal(first);
      expect(api.requests[1]).to.deep.equal({ method: 'GET', token: second, body: '', valid: true });
    });

    it('replays a POST with its JSON body with replay: "always"', async () => {
      const { client, rejected } = create({ replay: 'always' });
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await instance(client).post('/reports', { title: 'q3', pages: [1, 2] });
      expect({ status: res.status, body: res.data }).to.deep.equal({
        status: 200, body: { ok: true, method: 'POST', path: '/reports', body: '{"title":"q3","pages":[1,2]}' },
      });
      expect(api.requests).to.deep.equal([
        { method: 'POST', token: first, body: '{"title":"q3","pages":[1,2]}', valid: false },
        { method: 'POST', token: issued()[1], body: '{"title":"q3","pages":[1,2]}', valid: true },
      ]);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'POST', replayed: true }]);
    });

    it('replays a POST with a URLSearchParams body with replay: "always"', async () => {
      const { client } = create({ replay: 'always' });
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await instance(client).post('/reports', new URLSearchParams({ title: 'q3 & q4' }));
      expect(res.data).to.deep.equal({ ok: true, method: 'POST', path: '/reports', body: 'title=q3+%26+q4' });
      expect(api.requests.map((r) => [r.token, r.body])).to.deep.equal([[first, 'title=q3+%26+q4'], [issued()[1], 'title=q3+%26+q4']]);
    });

    it('replays a 401 invalid_token on an instance whose validateStatus accepts it', async () => {
      const { client, rejected } = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const http = client.axios(axios.create({ baseURL: api.url, validateStatus: () => true }));
      const res = await http.get('/reports');
      expect({ status: res.status, body: res.data }).to.deep.equal({
        status: 200, body: { ok: true, method: 'GET', path: '/reports', body: '' },
      });
      expect(api.requests.map((r) => [r.token, r.valid])).to.deep.equal([[first, false], [issued()[1], true]]);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: true }]);
    });

    it('replays a PUT (idempotent) with its body by default', async () => {
      const { client } = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await instance(client).put('/reports/7', 'plain text', { headers: { 'content-type': 'text/plain' } });
      expect({ status: res.status, body: res.data }).to.deep.equal({
        status: 200, body: { ok: true, method: 'PUT', path: '/reports/7', body: 'plain text' },
      });
      expect(api.requests.map((r) => [r.method, r.body, r.valid])).to.deep.equal([['PUT', 'plain text', false], ['PUT', 'plain text', true]]);
    });

    it('never replays a stream body, even with replay: "always"', async () => {
      const { client, rejected } = create({ replay: 'always' });
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const err = await rejectionOf(instance(client).post('/reports', Readable.from(['line 1\n', 'line 2\n']), {
        headers: { 'content-type': 'text/plain' },
      }), AxiosError);
      expect(summary(err.response)).to.deep.equal({ status: 401, challenge: INVALID_TOKEN_CHALLENGE, body: { error: 'invalid_token' } });
      expect(api.requests).to.deep.equal([{ method: 'POST', token: first, body: 'line 1\nline 2\n', valid: false }]);
      expect(tokens.requests).to.have.length(1);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'POST', replayed: false }]);
    });

    it('does not replay with replay: "never"', async () => {
      const { client, rejected } = create({ replay: 'never' });
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const err = await rejectionOf(instance(client).get('/reports'), AxiosError);
      expect(err.response?.status).to.equal(401);
      expect(api.requests).to.have.length(1);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: false }]);
    });

    it('reports the URL without its query string, and no token, in token.rejected', async () => {
      const { client, rejected } = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await instance(client).get('/reports?customer=4711&sig=abc', { params: { page: 2 } });
      expect(res.status).to.equal(200);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: true }]);
      const text = JSON.stringify(rejected);
      for (const token of issued()) expect(text).not.to.include(token);
      expect(text).not.to.include('4711');
    });

    it('names the URL as axios sent it when the baseURL has a path', async () => {
      const { client, rejected } = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const http = instance(client, `${api.url}/v1`);
      const res = await http.get('/reports?customer=4711');
      expect(res.data).to.deep.equal({ ok: true, method: 'GET', path: '/v1/reports', body: '' });
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/v1/reports`, method: 'GET', replayed: true }]);
    });

    it('replays a request made with an absolute URL on an instance without baseURL', async () => {
      const { client, rejected } = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const http = client.axios(axios.create());
      const res = await http.request({ url: `${api.url}/reports?x=1`, method: 'get' });
      expect(res.status).to.equal(200);
      expect(api.requests.map((r) => r.valid)).to.deep.equal([false, true]);
      expect(rejected).to.deep.equal([{ clientId: CLIENT_ID, url: `${api.url}/reports`, method: 'GET', replayed: true }]);
    });
  });

  describe('other refusals', () => {
    it('does not replay a 401 with a Basic challenge and keeps the token', async () => {
      const { client, rejected } = create();
      const http = instance(client, side.url);
      const err = await rejectionOf(http.get('/basic'), AxiosError);
      expect(summary(err.response)).to.deep.equal({ status: 401, challenge: 'Basic realm="legacy"', body: { error: 'unauthorized' } });
      expect((await http.get('/echo')).data).to.deep.equal({ authorization: `Bearer ${issued()[0]}`, trace: null, tenant: null });
      expect(side.requests).to.deep.equal([
        { method: 'GET', path: '/basic', authorization: `Bearer ${issued()[0]}` },
        { method: 'GET', path: '/echo', authorization: `Bearer ${issued()[0]}` },
      ]);
      expect(tokens.requests).to.have.length(1);
      expect(rejected).to.deep.equal([]);
    });

    it('does not replay a 401 Bearer challenge without error="invalid_token" and keeps the token', async () => {
      const { client, rejected } = create();
      const http = instance(client, side.url);
      const err = await rejectionOf(http.get('/bearer-without-error'), AxiosError);
      expect(summary(err.response)).to.deep.equal({ status: 401, challenge: 'Bearer realm="api"', body: { error: 'unauthorized' } });
      await http.get('/echo');
      expect(side.requests.map((r) => r.authorization)).to.deep.equal([`Bearer ${issued()[0]}`, `Bearer ${issued()[0]}`]);
      expect(tokens.requests).to.have.length(1);
      expect(rejected).to.deep.equal([]);
    });

    it('passes a 403 insufficient_scope through untouched', async () => {
      const { client, rejected } = create({ replay: 'always' });
      const http = instance(client, side.url);
      const err = await rejectionOf(http.post('/reports', { title: 'q3' }), AxiosError);
      expect(summary(err.response)).to.deep.equal({
        status: 403, challenge: INSUFFICIENT_SCOPE_CHALLENGE,
        body: { error: 'insufficient_scope', error_description: 'the token lacks a required scope' },
      });
      expect(err.response?.headers['content-type']).to.match(/^application\/json/);
      expect(side.requests).to.deep.equal([{ method: 'POST', path: '/reports', authorization: `Bearer ${issued()[0]}` }]);
      await http.get('/echo');
      expect(tokens.requests).to.have.length(1);
      expect(rejected).to.deep.equal([]);
    });

    it('passes a network error through without a token request of its own', async () => {
      const { client, rejected } = create();
      const closed = await startSideApi();
      await closed.close();
      const err = await rejectionOf(instance(client, closed.url).get('/echo'), AxiosError);
      expect(err.code).to.equal('ECONNREFUSED');
      expect(err.response).to.equal(undefined);
      expect(tokens.requests).to.have.length(1);
      expect(rejected).to.deep.equal([]);
    });
  });

  it('makes one token request for 50 parallel GETs on a cold client', async () => {
    const { client } = create();
    const http = instance(client);
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => http.get(`/reports/${i}`)));
    expect(responses.map((r) => r.status)).to.deep.equal(Array.from({ length: 50 }, () => 200));
    expect(tokens.requests).to.have.length(1);
    expect(api.requests).to.have.length(50);
    expect(new Set(api.requests.map((r) => r.token))).to.deep.equal(new Set(issued()));
    expect(api.requests.every((r) => r.valid)).to.equal(true);
  });

  it('shares one replacement token between parallel GETs refused together', async () => {
    const { client } = create();
    const http = instance(client);
    const first = (await client.getToken()).accessToken;
    api.refused.add(first);
    const responses = await Promise.all(Array.from({ length: 10 }, () => http.get('/reports')));
    expect(responses.map((r) => r.status)).to.deep.equal(Array.from({ length: 10 }, () => 200));
    expect(tokens.requests).to.have.length(2);
    expect(api.requests.filter((r) => r.valid).map((r) => r.token)).to.deep.equal(Array.from({ length: 10 }, () => issued()[1]));
  });

  it('surfaces a token endpoint failure as the rejection, without calling the API', async () => {
    const { client } = create({ clientSecret: 'wrong' });
    let caught: unknown;
    try {
      await instance(client).get('/reports');
    } catch (err) {
      caught = err;
    }
    expect(caught).to.include({ name: 'TokenRequestError', reason: 'oauth_error', error: 'invalid_client', status: 401 });
    expect(api.requests).to.deep.equal([]);
  });
});
