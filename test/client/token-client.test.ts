import { inspect } from 'node:util';
import { expect } from 'chai';
import { AccessToken, RegistrationNotFoundError, TokenRequestError, tokenClient, tokenClients, type TokenClient, type TokenClientEventMap, type TokenClientOptions } from '../../lib/index.js';
import { startApi, startTokenServer, type TestApi, type TestTokenServer } from './fixtures.js';
import { rejectionOf } from '../support/rejection.js';
import { InvalidOptionError } from '../../lib/core/options.js';

const SECRET = 'secret-a';

function fakeClock(start = Date.UTC(2026, 10, 22, 12)) {
  let now = start;
  const clock = () => now;
  return { clock, set: (ms: number) => { now = ms; }, advance: (ms: number) => { now += ms; }, start };
}

function nextEvent<K extends keyof TokenClientEventMap>(client: TokenClient, event: K): Promise<TokenClientEventMap[K]> {
  return new Promise((resolve) => { client.events.once(event, resolve); });
}

/** Everything the client let out, as text: what must never hold the secret or a token. */
function recordEvents(client: TokenClient): unknown[] {
  const seen: unknown[] = [];
  for (const name of ['token.fetched', 'token.refresh_failed', 'token.retry_scheduled', 'token.rejected', 'cache.error'] as const) {
    client.events.on(name, (payload) => seen.push({ name, payload }));
  }
  return seen;
}

describe('tokenClient()', () => {
  let ts: TestTokenServer;
  let api: TestApi;

  beforeEach(async () => {
    ts = await startTokenServer({ 'svc-a': SECRET, 'svc a/b:c%': 'pa ss:wörd+&=' });
    api = await startApi(ts);
  });
  afterEach(async () => {
    await ts.close();
    await api.close();
  });

  function create(options: Partial<TokenClientOptions> = {}): TokenClient {
    return tokenClient({ tokenUrl: ts.tokenUrl, clientId: 'svc-a', clientSecret: SECRET, retry: { minDelay: 0.01, maxDelay: 2 }, ...options });
  }

  describe('options', () => {
    const base = { tokenUrl: 'https://auth.example/token', clientId: 'svc-a', clientSecret: SECRET };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['neither tokenUrl nor issuer', { tokenUrl: undefined }, /exactly one of tokenUrl and issuer/],
      ['both tokenUrl and issuer', { issuer: 'https://auth.example' }, /exactly one of tokenUrl and issuer/],
      ['a relative tokenUrl', { tokenUrl: '/token' }, /tokenUrl must be an absolute URL/],
      ['http off loopback', { tokenUrl: 'http://auth.example/token' }, /tokenUrl must use https/],
      ['credentials in the tokenUrl', { tokenUrl: 'https://u:p@auth.example/token' }, /must not hold a user name or password/],
      ['a revocationUrl over http off loopback', { revocationUrl: 'http://auth.example/revoke' }, /revocationUrl must use https/],
      ['a relative revocationUrl', { revocationUrl: '/revoke' }, /revocationUrl must be an absolute URL/],
      ['a missing clientId', { clientId: undefined }, /clientId must be a non-empty string/],
      ['a clientId with a line break', { clientId: 'a\r\nb' }, /clientId must be a non-empty string of printable characters/],
      ['neither secret nor key', { clientSecret: undefined }, /exactly one of clientSecret and privateKey/],
      ['an empty secret', { clientSecret: '' }, /clientSecret must be a non-empty string/],
      ['private_key_jwt with a secret', { authMethod: 'private_key_jwt' }, /private_key_jwt needs privateKey/],
      ['an unknown authMethod', { authMethod: 'tls_client_auth' }, /authMethod must be "client_secret_basic", "client_secret_post" or "private_key_jwt"/],
      ['a malformed scope', { scope: ['ok', 'not"ok'] }, /scope holds a malformed scope token/],
      ['audience and resource', { audience: 'a', resource: 'b' }, /at most one of audience and resource/],
      ['an empty audience list', { audience: [] }, /audience must be a string or a non-empty list/],
      ['a reserved param', { params: { client_secret: 'x' } }, /params cannot set client_secret/],
      ['a zero timeout', { timeout: 0 }, /timeout must be a number of seconds/],
      ['a negative defaultLifetime', { defaultLifetime: -1 }, /defaultLifetime must be a number of seconds/],
      ['too many retries', { retry: { retries: 11 } }, /retry.retries must be an integer from 0 to 10/],
      ['an unknown replay policy', { replay: 'sometimes' }, /replay must be "idempotent", "always" or "never"/],
      ['a cache without get', { cache: { set() {}, delete() {} } }, /cache must be a TokenCache/],
      ['an unknown option', { secret: 'x' }, /tokenClient\(\) has no option "secret"/],
      ['assertion options with a secret', { keyId: 'k1' }, /apply to private_key_jwt only/],
    ];
    for (const [what, change, message] of cases) {
      it(`throws an InvalidOptionError for ${what}`, () => {
        expect(() => tokenClient({ ...base, ...change } as TokenClientOptions)).to.throw(InvalidOptionError, message);
      });
    }

    it('never quotes a malformed private key in its error', () => {
      const pem = '-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----';
      expect(() => tokenClient({ tokenUrl: base.tokenUrl, clientId: 'a', privateKey: pem }))
        .to.throw(InvalidOptionError, /^privateKey must be a private KeyObject, a PEM private key or a private JWK$/);
    });
  });

  describe('getToken()', () => {
    it('sends a client credentials request with Basic auth encoded as RFC 6749 §2.3.1 says', async () => {
      const client = create({ clientId: 'svc a/b:c%', clientSecret: 'pa ss:wörd+&=', scope: 'reports:read reports:list' });
      const token = await client.getToken();
      expect(ts.requests).to.have.length(1);
      const [seen] = ts.requests;
      expect(seen?.form).to.deep.equal({ grant_type: ['client_credentials'], scope: ['reports:read reports:list'] });
      expect(seen?.authorization).to.equal(`Basic ${Buffer.from('svc+a%2Fb%3Ac%25:pa+ss%3Aw%C3%B6rd%2B%26%3D').toString('base64')}`);
      expect(seen?.contentType).to.equal('application/x-www-form-urlencoded');
      expect(seen?.accept).to.equal('application/json');
      expect(token).to.be.instanceOf(AccessToken);
      expect(token.tokenType).to.equal('Bearer');
      expect(token.scope).to.equal('reports:read reports:list');
      expect(ts.issued.has(token.accessToken)).to.equal(true);
    });

    it('sends the credentials in the body with client_secret_post', async () => {
      const client = create({ authMethod: 'client_secret_post' });
      await client.getToken();
      expect(ts.requests[0]?.authorization).to.equal(undefined);
      expect(ts.requests[0]?.form).to.deep.equal({ grant_type: ['client_credentials'], client_id: ['svc-a'], client_secret: [SECRET] });
    });

    it('sends every audience, every resource and extra params', async () => {
      await create({ audience: ['https://a.example', 'https://b.example'], params: { tenant: 't1' } }).getToken();
      await create({ resource: 'https://r.example' }).getToken();
      expect(ts.requests[0]?.form).to.deep.equal({
        grant_type: ['client_credentials'], audience: ['https://a.example', 'https://b.example'], tenant: ['t1'],
      });
      expect(ts.requests[1]?.form).to.deep.equal({ grant_type: ['client_credentials'], resource: ['https://r.example'] });
    });

    it('makes one token request for 200 concurrent cold callers', async () => {
      const client = create();
      const tokens = await Promise.all(Array.from({ length: 200 }, () => client.getToken()));
      expect(ts.requests).to.have.length(1);
      expect(new Set(tokens.map((t) => t.accessToken)).size).to.equal(1);
    });

    it('makes one token request for 100 sequential calls', async () => {
      const client = create();
      for (let i = 0; i < 100; i++) await client.getToken();
      expect(ts.requests).to.have.length(1);
    });

    it('counts expires_in from when the request was sent', async () => {
      const time = fakeClock();
      ts.expiresIn = 120;
      const token = await create({ clock: time.clock }).getToken();
      expect(token.expiresAt.getTime()).to.equal(time.start + 120_000);
    });

    it('accepts expires_in as a numeric string', async () => {
      const time = fakeClock();
      ts.expiresIn = '3600';
      const token = await create({ clock: time.clock }).getToken();
      expect(token.expiresAt.getTime()).to.equal(time.start + 3_600_000);
    });

    it('gives a token without expires_in the defaultLifetime, not zero', async () => {
      const time = fakeClock();
      ts.expiresIn = undefined;
      const client = create({ clock: time.clock, defaultLifetime: 90 });
      const token = await client.getToken();
      expect(token.expiresAt.getTime()).to.equal(time.start + 90_000);
      time.advance(30_000);
      await client.getToken();
      expect(ts.requests).to.have.length(1);
    });

    it('takes the requested scope when the answer names none', async () => {
      ts.queue.push({ status: 200, body: { access_token: 'opaque', token_type: 'bearer', expires_in: 60 } });
      const token = await create({ scope: 'a b' }).getToken();
      expect(token.scope).to.equal('a b');
      expect(token.accessToken).to.equal('opaque');
    });

    it('keeps the token out of JSON and util.inspect', async () => {
      const token = await create({ scope: 'a' }).getToken();
      expect(JSON.parse(JSON.stringify(token))).to.deep.equal({ tokenType: 'Bearer', scope: 'a', expiresAt: token.expiresAt.toISOString() });
      expect(inspect(token)).to.not.include(token.accessToken);
      expect(inspect(token)).to.include('[redacted]');
      expect(Object.keys(token)).to.not.include('accessToken');
    });
  });

  describe('refresh ahead of expiry', () => {
    it('starts no refresh before 65% of the lifetime', async () => {
      const time = fakeClock();
      const client = create({ clock: time.clock });
      const first = await client.getToken();
      time.advance(194_000);
      expect((await client.getToken()).accessToken).to.equal(first.accessToken);
      await new Promise((r) => setTimeout(r, 50));
      expect(ts.requests).to.have.length(1);
    });

    it('serves the current token while a background refresh fetches the next', async () => {
      const time = fakeClock();
      const client = create({ clock: time.clock });
      const first = await client.getToken();
      time.advance(256_000);
      ts.delay = 100;
      const refreshed = nextEvent(client, 'token.fetched');
      expect((await client.getToken()).accessToken).to.equal(first.accessToken);
      const event = await refreshed;
      expect(event).to.deep.include({ clientId: 'svc-a', source: 'endpoint', refresh: true, attempts: 1 });
      const second = await client.getToken();
      expect(second.accessToken).to.not.equal(first.accessToken);
      expect(second.expiresAt.getTime()).to.equal(time.start + 256_000 + 300_000);
      expect(ts.requests).to.have.length(2);
    });

    it('refreshes no later than refreshMargin before expiry', async () => {
      const time = fakeClock();
      // lifetime 300 s, refreshMargin 200 s capped at a quarter of the lifetime: at the latest at 225 s.
      const client = create({ clock: time.clock, refreshMargin: 200 });
      await client.getToken();
      time.advance(225_000);
      const refreshed = nextEvent(client, 'token.fetched');
      await client.getToken();
      expect((await refreshed).refresh).to.equal(true);
    });

    it('makes callers wait for a new token once the current one is within expiryMargin of expiry', async () => {
      const time = fakeClock();
      const client = create({ clock: time.clock, expiryMargin: 10 });
      const first = await client.getToken();
      time.advance(290_000);
      const second = await client.getToken();
      expect(second.accessToken).to.not.equal(first.accessToken);
      expect(ts.requests).to.have.length(2);
    });

    it('never sends an expired token over a steady stream of calls to short-lived tokens', async () => {
      ts.expiresIn = 2;
      const client = create();
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        const res = await client.fetch(`${api.url}/data`);
        expect(res.status).to.equal(200);
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(api.requests.every((r) => r.valid)).to.equal(true);
      expect(ts.requests.length).to.be.greaterThanOrEqual(3);
    });

    it('goes on serving the valid token through an endpoint outage and reports the failed refresh', async () => {
      const time = fakeClock();
      const client = create({ clock: time.clock, retry: { retries: 1, minDelay: 0.01 } });
      const first = await client.getToken();
      ts.always = { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '0' } };
      time.advance(260_000);
      const failed = nextEvent(client, 'token.refresh_failed');
      expect((await client.getToken()).accessToken).to.equal(first.accessToken);
      const event = await failed;
      expect(event.error).to.be.instanceOf(TokenRequestError);
      expect(event.error).to.include({ reason: 'oauth_error', error: 'temporarily_unavailable', status: 503, retryable: true });
      expect(event.expiresAt.getTime()).to.equal(first.expiresAt.getTime());
      expect(event.nextAttemptAt.getTime()).to.equal(time.start + 260_000 + 1000);
      expect(ts.requests).to.have.length(3);
      // Within the backoff no new request; the valid token keeps working.
      expect((await client.getToken()).accessToken).to.equal(first.accessToken);
      const res = await client.fetch(`${api.url}/data`);
      expect(res.status).to.equal(200);
      expect(ts.requests).to.have.length(3);
    });
  });

  describe('token endpoint failures', () => {
    it('fails fast on invalid_client with a typed error that holds no secret', async () => {
      const client = create({ clientSecret: 'wrong-secret-value' });
      const seen = recordEvents(client);
      const err = await rejectionOf(client.getToken(), TokenRequestError);
      expect(ts.requests).to.have.length(1);
      expect(err).to.include({
        reason: 'oauth_error', error: 'invalid_client', description: 'client authentication failed', status: 401,
        retryable: false, clientId: 'svc-a', tokenUrl: ts.tokenUrl, retryAfter: undefined,
      });
      expect(err.message).to.equal(`token request to ${ts.tokenUrl} failed (HTTP 401): invalid_client: client authentication failed`);
      for (const text of [String(err), inspect(err), JSON.stringify(err), err.stack ?? '', inspect(seen, { depth: 8 })]) {
        expect(text).to.not.include('wrong-secret-value');
      }
    });

    it('fails fast on invalid_scope', async () => {
      ts.queue.push({ status: 400, body: { error: 'invalid_scope', error_description: 'scope not allowed' } });
      const err = await rejectionOf(create({ scope: 'admin' }).getToken(), TokenRequestError);
      expect(err).to.include({ code: 'ERR_M2M_TOKEN_REQUEST', reason: 'oauth_error', error: 'invalid_scope', status: 400, retryable: false });
      expect(ts.requests).to.have.length(1);
    });

    it('retries 5xx with backoff and reports each retry', async () => {
      ts.queue.push({ status: 503, raw: 'down' }, { status: 500, body: { error: 'server_error' } });
      const client = create();
      const retries: TokenClientEventMap['token.retry_scheduled'][] = [];
      client.events.on('token.retry_scheduled', (e) => retries.push(e));
      const token = await client.getToken();
      expect(ts.issued.has(token.accessToken)).to.equal(true);
      expect(ts.requests).to.have.length(3);
      expect(retries.map((r) => [r.attempt, r.error.reason, r.error.status])).to.deep.equal([[1, 'http_error', 503], [2, 'oauth_error', 500]]);
      for (const r of retries) expect(r.delayMs).to.be.within(0, 2000);
    });

    it('waits as long as Retry-After asks on 429', async () => {
      ts.queue.push({ status: 429, body: { error: 'slow_down' }, headers: { 'retry-after': '1' } });
      const client = create();
      const retry = nextEvent(client, 'token.retry_scheduled');
      const started = Date.now();
      await client.getToken();
      expect(Date.now() - started).to.be.greaterThanOrEqual(990);
      expect((await retry).delayMs).to.be.greaterThanOrEqual(1000);
      expect(ts.requests).to.have.length(2);
    });

    it('gives up at once when Retry-After is longer than maxDelay', async () => {
      ts.queue.push({ status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '120' } });
      const err = await rejectionOf(create().getToken(), TokenRequestError);
      expect(err).to.include({ status: 503, retryAfter: 120, retryable: true });
      expect(ts.requests).to.have.length(1);
    });

    it('stops after the configured retries with the last error', async () => {
      ts.always = { status: 502, raw: '<html>bad gateway</html>' };
      const err = await rejectionOf(create({ retry: { retries: 2, minDelay: 0.001 } }).getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'http_error', status: 502, retryable: true, error: undefined });
      expect(ts.requests).to.have.length(3);
    });

    it('makes one request with retry: false', async () => {
      ts.always = { status: 503 };
      await rejectionOf(create({ retry: false }).getToken(), TokenRequestError);
      expect(ts.requests).to.have.length(1);
    });

    it('abandons a request after the timeout', async () => {
      ts.always = 'hang';
      const err = await rejectionOf(create({ timeout: 0.2, retry: false }).getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'timeout', retryable: true, status: undefined });
      expect(err.message).to.equal(`token request to ${ts.tokenUrl} failed: no answer within 200 ms`);
    });

    it('reports an unreachable endpoint as a network error', async () => {
      const url = ts.tokenUrl;
      await ts.close();
      const err = await rejectionOf(create({ tokenUrl: url, retry: false }).getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'network_error', retryable: true });
    });

    it('does not follow a redirect with the credentials', async () => {
      ts.always = { status: 302, headers: { location: `${api.url}/steal` } };
      const err = await rejectionOf(create().getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'http_error', retryable: false });
      expect(ts.requests).to.have.length(1);
      expect(api.requests).to.have.length(0);
    });

    const invalid: [string, { status: number; body?: unknown; raw?: string }, string][] = [
      ['a body that is not JSON', { status: 200, raw: 'access_token=x' }, 'the answer is not a JSON object'],
      ['a JSON array', { status: 200, body: [{ access_token: 'x' }] }, 'the answer is not a JSON object'],
      ['no access_token', { status: 200, body: { token_type: 'Bearer' } }, 'the answer holds no access_token'],
      ['an empty access_token', { status: 200, body: { access_token: '', token_type: 'Bearer' } }, 'the answer holds no access_token'],
      ['a numeric access_token', { status: 200, body: { access_token: 42, token_type: 'Bearer' } }, 'the answer holds no access_token'],
      ['no token_type', { status: 200, body: { access_token: 'x' } }, 'the token_type is not Bearer'],
      ['a DPoP token_type', { status: 200, body: { access_token: 'x', token_type: 'DPoP' } }, 'the token_type is not Bearer'],
      ['a negative expires_in', { status: 200, body: { access_token: 'x', token_type: 'Bearer', expires_in: -5 } }, 'expires_in is not a positive number'],
      ['a zero expires_in', { status: 200, body: { access_token: 'x', token_type: 'Bearer', expires_in: 0 } }, 'expires_in is not a positive number'],
      ['a word for expires_in', { status: 200, body: { access_token: 'x', token_type: 'Bearer', expires_in: 'soon' } }, 'expires_in is not a positive number'],
      ['a 300 kB answer', { status: 200, raw: `{"access_token":"${'x'.repeat(300_000)}","token_type":"Bearer"}` }, 'the answer is too large'],
    ];
    for (const [what, answer, message] of invalid) {
      it(`refuses ${what} without retrying`, async () => {
        ts.queue.push(answer);
        const err = await rejectionOf(create().getToken(), TokenRequestError);
        expect(err).to.include({ reason: 'invalid_response', status: 200, retryable: false });
        expect(err.message).to.equal(`token request to ${ts.tokenUrl} failed (HTTP 200): ${message}`);
        expect(ts.requests).to.have.length(1);
      });
    }

    it('cleans a hostile error description and removes an echoed secret', async () => {
      ts.queue.push({ status: 400, body: { error: 'invalid_request', error_description: `bad "secret" ${SECRET}\r\nX-Injected: 1` } });
      const err = await rejectionOf(create().getToken(), TokenRequestError);
      expect(err.description).to.equal('bad secret [redacted]X-Injected: 1');
      expect(err.message).to.not.include(SECRET);
    });

    it('removes every encoding of the secret a server echoes: the Basic credential, base64url, percent- and form-encoded', async () => {
      const id = 'svc a/b:c%';
      const secret = 'pa ss:wörd+&=';
      const form = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
      const basic = Buffer.from(`${form(id)}:${form(secret)}`).toString('base64');
      const echoes = [`Basic ${basic}`, basic, Buffer.from(`${form(id)}:${form(secret)}`).toString('base64url'), form(secret), encodeURIComponent(secret), secret];
      for (const echo of echoes) {
        ts.queue.push({ status: 400, body: { error: 'invalid_request', error_description: `got ${echo} here` } });
        const err = await rejectionOf(create({ clientId: id, clientSecret: secret }).getToken(), TokenRequestError);
        const texts = [err.message, err.description ?? '', inspect(err, { depth: 4 }), JSON.stringify(err)];
        for (const text of texts) for (const leaked of [basic, form(secret), encodeURIComponent(secret), secret]) expect(text, echo).to.not.include(leaked);
        expect(err.description, echo).to.match(/^got (Basic )?\[redacted\] here$/);
      }
    });

    it('treats an error code with forbidden characters as no OAuth error', async () => {
      ts.queue.push({ status: 400, body: { error: 'bad"code\n' } });
      const err = await rejectionOf(create().getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'http_error', error: undefined, status: 400, retryable: false });
    });

    it('lets the next call try again after a failure', async () => {
      ts.queue.push({ status: 400, body: { error: 'invalid_request' } });
      const client = create();
      await rejectionOf(client.getToken(), TokenRequestError);
      const token = await client.getToken();
      expect(ts.issued.has(token.accessToken)).to.equal(true);
      expect(ts.requests).to.have.length(2);
    });
  });

  describe('fetch()', () => {
    it('attaches the token and keeps the host headers', async () => {
      const client = create();
      const res = await client.fetch(`${api.url}/data?x=1`, { headers: { 'x-trace': 't1', Authorization: 'Basic nope' } });
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ ok: true, method: 'GET', path: '/data', body: '' });
      const token = (await client.getToken()).accessToken;
      expect(api.requests).to.deep.equal([{ method: 'GET', token, body: '', valid: true }]);
    });

    it('takes a Request object and its headers', async () => {
      const client = create();
      const res = await client.fetch(new Request(`${api.url}/data`, { method: 'DELETE', headers: { 'x-trace': 't2' } }));
      expect(res.status).to.equal(200);
      expect(api.requests[0]).to.include({ method: 'DELETE', valid: true });
    });

    it('replays a GET once with a new token after 401 invalid_token', async () => {
      const client = create();
      const rejected = nextEvent(client, 'token.rejected');
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await client.fetch(`${api.url}/data?secret=1`);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ ok: true, method: 'GET', path: '/data', body: '' });
      expect(api.requests.map((r) => r.valid)).to.deep.equal([false, true]);
      expect(api.requests[1]?.token).to.not.equal(first);
      expect(ts.requests).to.have.length(2);
      expect(await rejected).to.deep.equal({ clientId: 'svc-a', url: `${api.url}/data`, method: 'GET', replayed: true });
    });

    it('returns the second 401 as it is, without a loop', async () => {
      const client = create();
      api.refuseAll = true;
      const res = await client.fetch(`${api.url}/data`);
      expect(res.status).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.equal('Bearer realm="api", error="invalid_token", error_description="the token is not valid"');
      expect(await res.json()).to.deep.equal({ error: 'invalid_token' });
      expect(api.requests).to.have.length(2);
      expect(ts.requests).to.have.length(2);
    });

    it('does not replay a POST, but drops the refused token', async () => {
      const client = create();
      const first = (await client.getToken()).accessToken;
      api.refused.add(first);
      const res = await client.fetch(`${api.url}/data`, { method: 'POST', body: 'once' });
      expect(res.status).to.equal(401);
      expect(api.requests).to.have.length(1);
      const next = await client.fetch(`${api.url}/data`, { method: 'POST', body: 'again' });
      expect(next.status).to.equal(200);
      expect(api.requests[1]).to.include({ valid: true, body: 'again' });
      expect(ts.requests).to.have.length(2);
    });

    it('replays a POST with a string body when replay is always', async () => {
      const client = create({ replay: 'always' });
      api.refused.add((await client.getToken()).accessToken);
      const res = await client.fetch(`${api.url}/data`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ ok: true, method: 'POST', path: '/data', body: 'payload' });
      expect(api.requests.map((r) => [r.valid, r.body])).to.deep.equal([[false, 'payload'], [true, 'payload']]);
    });

    it('never replays a stream body', async () => {
      const client = create({ replay: 'always' });
      api.refused.add((await client.getToken()).accessToken);
      const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close(); } });
      const res = await client.fetch(`${api.url}/data`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
      expect(res.status).to.equal(401);
      expect(api.requests).to.have.length(1);
    });

    it('does not replay with replay: never', async () => {
      const client = create({ replay: 'never' });
      api.refused.add((await client.getToken()).accessToken);
      expect((await client.fetch(`${api.url}/data`)).status).to.equal(401);
      expect(api.requests).to.have.length(1);
    });

    it('keeps the token after a 401 that is not about the token', async () => {
      const client = create();
      const token = (await client.getToken()).accessToken;
      const other = await startTokenServer();
      try {
        // The token server's own 401 carries a Basic challenge: not an invalid_token.
        const res = await client.fetch(`${other.url}/token`, { method: 'POST', body: 'grant_type=client_credentials' });
        expect(res.status).to.equal(401);
        expect((await client.getToken()).accessToken).to.equal(token);
        expect(ts.requests).to.have.length(1);
      } finally {
        await other.close();
      }
    });

    it('makes one new token request when 50 concurrent calls see their token refused', async () => {
      const client = create();
      api.refused.add((await client.getToken()).accessToken);
      const answers = await Promise.all(Array.from({ length: 50 }, () => client.fetch(`${api.url}/data`).then((r) => r.status)));
      expect(answers.every((s) => s === 200)).to.equal(true);
      expect(ts.requests).to.have.length(2);
    });
  });

  describe('invalidate()', () => {
    it('drops the current token so that the next call fetches a new one', async () => {
      const client = create();
      const first = await client.getToken();
      await client.invalidate();
      expect((await client.getToken()).accessToken).to.not.equal(first.accessToken);
      expect(ts.requests).to.have.length(2);
    });

    it('keeps a newer token when asked to drop an older one', async () => {
      const client = create();
      const first = await client.getToken();
      await client.invalidate(first.accessToken);
      const second = await client.getToken();
      await client.invalidate(first.accessToken);
      expect((await client.getToken()).accessToken).to.equal(second.accessToken);
      expect(ts.requests).to.have.length(2);
    });
  });

  describe('abort', () => {
    it('ends a getToken() wait when its signal aborts, while the token request goes on for the cache', async () => {
      ts.delay = 300;
      const client = create();
      const controller = new AbortController();
      const waiting = client.getToken({ signal: controller.signal });
      const other = client.getToken();
      setTimeout(() => controller.abort(), 30);
      const err = await rejectionOf(waiting, Error);
      expect([err.name, ts.requests.length]).to.deep.equal(['AbortError', 1]);
      // The other caller, and the next one, get the token of that one request.
      const [shared, next] = [await other, await client.getToken()];
      expect(next.accessToken).to.equal(shared.accessToken);
      expect(ts.requests).to.have.length(1);
    });

    it("rejects with the signal's own reason, and at once for a signal already aborted (no request)", async () => {
      const client = create();
      const reason = new Error('shutting down');
      const err = await rejectionOf(client.getToken({ signal: AbortSignal.abort(reason) }), Error);
      expect(err).to.equal(reason);
      expect(ts.requests).to.have.length(0);
    });

    it('refuses a signal that is not an AbortSignal with a TypeError', async () => {
      const err = await rejectionOf(create().getToken({ signal: {} as AbortSignal }), TypeError);
      expect(err.message).to.equal('signal must be an AbortSignal');
    });

    it("stops client.fetch waiting for a token when the request's signal aborts; the API sees nothing", async () => {
      ts.delay = 300;
      const client = create();
      const err = await rejectionOf(client.fetch(`${api.url}/data`, { signal: AbortSignal.timeout(30) }), Error);
      expect([err.name, api.requests.length]).to.deep.equal(['TimeoutError', 0]);
      const res = await client.fetch(`${api.url}/data`);
      expect([res.status, api.requests.length, ts.requests.length]).to.deep.equal([200, 1, 1]);
      await res.body?.cancel();
    });
  });

  describe('discovery', () => {
    it('finds the token endpoint in the issuer metadata, once', async () => {
      const requests: string[] = [];
      const client = create({
        tokenUrl: undefined, issuer: ts.issuer,
        fetch: (input, init) => { requests.push(String(input)); return fetch(input, init); },
      });
      await client.getToken();
      await client.invalidate();
      await client.getToken();
      expect(requests).to.deep.equal([
        `${ts.issuer}/.well-known/openid-configuration`,
        `${ts.issuer}/.well-known/oauth-authorization-server`,
        ts.tokenUrl,
        ts.tokenUrl,
      ]);
    });

    it('throws RegistrationNotFoundError (ERR_M2M_REGISTRATION_NOT_FOUND) from tokenClients().get() for an unknown name', () => {
      const apis = tokenClients({ reports: { clientId: 'svc-a', clientSecret: SECRET } }, { tokenUrl: ts.tokenUrl });
      expect(apis.get('reports')).to.equal(apis.reports);
      expect(() => apis.get('billing')).to.throw(RegistrationNotFoundError, 'no token client is registered as "billing"')
        .that.deep.includes({ code: 'ERR_M2M_REGISTRATION_NOT_FOUND', registration: 'billing' });
    });

    it('reads the metadata once for 1000 registrations of tokenClients() that pass no fetch', async () => {
      const registrations = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`r${i}`, { clientId: 'svc-a', clientSecret: SECRET, scope: `s${i}` }]));
      const apis = tokenClients(registrations, { issuer: ts.issuer });
      const tokens = await Promise.all(['r0', 'r1', 'r999'].map((name) => apis.get(name).getToken()));
      expect(tokens.map((t) => t.scope)).to.deep.equal(['s0', 's1', 's999']);
      const metadataReads = Object.entries(ts.reads).filter(([path]) => path.includes('/.well-known/'));
      expect(metadataReads.reduce((n, [, count]) => n + count, 0)).to.equal(metadataReads.length);
      expect(metadataReads.length).to.be.within(1, 3);
    });

    it('reads the metadata once for every registration of tokenClients(), and again after a failed read', async () => {
      const requests: string[] = [];
      let failNext = true;
      const registration = (scope: string) => ({ clientId: 'svc-a', clientSecret: SECRET, scope });
      const apis = tokenClients({ a: registration('a'), b: registration('b'), c: registration('c') }, {
        issuer: ts.issuer, retry: false,
        fetch: (input, init) => {
          requests.push(String(input));
          if (failNext && String(input).includes('/.well-known/')) {
            failNext = false;
            return Promise.reject(new TypeError('fetch failed'));
          }
          return fetch(input, init);
        },
      });
      const first = await Promise.allSettled([apis.a.getToken(), apis.b.getToken()]);
      expect(first.map((o) => (o.status === 'rejected' ? (o.reason as TokenRequestError).reason : o.status)))
        .to.deep.equal(['discovery_failed', 'discovery_failed']);
      expect(requests).to.deep.equal([`${ts.issuer}/.well-known/openid-configuration`]);
      requests.length = 0;
      const tokens = await Promise.all([apis.a.getToken(), apis.b.getToken(), apis.c.getToken()]);
      expect(tokens.map((t) => t.scope)).to.deep.equal(['a', 'b', 'c']);
      expect(requests.filter((url) => url !== ts.tokenUrl)).to.deep.equal([
        `${ts.issuer}/.well-known/openid-configuration`,
        `${ts.issuer}/.well-known/oauth-authorization-server`,
      ]);
      expect(requests.filter((url) => url === ts.tokenUrl)).to.have.length(3);
    });

    it('refuses metadata that names another issuer', async () => {
      const err = await rejectionOf(create({ tokenUrl: undefined, issuer: `${api.url}/elsewhere`, retry: false }).getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'discovery_failed', tokenUrl: `${api.url}/elsewhere` });
      expect(ts.requests).to.have.length(0);
    });
  });

  describe('secrets', () => {
    it('never shows the secret or a token in util.inspect, JSON, String or events', async () => {
      const client = create();
      const seen = recordEvents(client);
      const token = (await client.getToken()).accessToken;
      api.refused.add(token);
      await client.fetch(`${api.url}/data`);
      const next = (await client.getToken()).accessToken;
      const texts = [inspect(client, { depth: 8, showHidden: true }), JSON.stringify(client), String(client), inspect(seen, { depth: 8 }), JSON.stringify(seen)];
      for (const text of texts) {
        for (const value of [SECRET, token, next]) expect(text).to.not.include(value);
      }
      expect(JSON.parse(JSON.stringify(client))).to.deep.equal({ clientId: 'svc-a', tokenUrl: ts.tokenUrl, authMethod: 'client_secret_basic', scope: '' });
      expect(seen.map((e) => (e as { name: string }).name)).to.deep.equal(['token.fetched', 'token.rejected', 'token.fetched']);
    });
  });
});
