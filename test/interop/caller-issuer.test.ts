import { expect } from 'chai';
import express from 'express';
import {
  createResourceServer, tokenClient, tokenClients, type AuthenticatedRequest, type CallerFetch, type ResourceServerOptions,
  type TokenClient, type TokenRejectedEvent,
} from '../../lib/index.js';
import { listen, type Listening } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

// The whole flow inside this package: tokenClient() discovers our issuer (authorizationServer()
// over SQLite), gets tokens with client_secret_basic, and calls Express APIs guarded by
// createResourceServer().requireScope() with the JWKS discovered from the same issuer.

const REPORTS = 'https://reports.internal';
const BILLING = 'https://billing.internal';
const LIFETIME = 300;
/** Unreserved URI characters that form-urlencoding (RFC 6749 §2.3.1) may still escape: `%7E`. */
const SPECIAL_ID = 'svc-a_b.c~d';
/** A client id with the Basic separator and form-urlencoding's own special characters in it. */
const DELIMITED_ID = 'urn:svc:a+b%20c';
const INSUFFICIENT_WRITE = `Bearer realm="${REPORTS}", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:write"`;

/** One call the client made through its `fetch`: metadata, token and API requests alike. */
interface SentRequest {
  method: string;
  url: string;
  form: Record<string, string[]> | undefined;
}

function recordingFetch(): { fetch: CallerFetch; sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  return {
    sent,
    fetch: (input, init) => {
      const body = init?.body;
      let form: Record<string, string[]> | undefined;
      if (typeof body === 'string') {
        form = {};
        for (const [k, v] of new URLSearchParams(body)) (form[k] ??= []).push(v);
      }
      sent.push({ method: init?.method ?? 'GET', url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, form });
      return fetch(input, init);
    },
  };
}

function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header = '', payload = ''] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>,
  };
}

async function read(res: Response): Promise<{ status: number; challenge: string | null; cacheControl: string | null; body: unknown }> {
  return { status: res.status, challenge: res.headers.get('www-authenticate'), cacheControl: res.headers.get('cache-control'), body: await res.json() };
}

/** An API guarded by requireScope() on the issuer, recording the Authorization header of each request. */
interface GuardedApi extends Listening {
  seen: { method: string; path: string; authorization: string | undefined }[];
}

async function startGuardedApi(
  issuer: TestIssuer, audience: string, clock: () => number, options: Partial<ResourceServerOptions> = {},
): Promise<GuardedApi> {
  const rs = createResourceServer({ issuer: issuer.issuer, audience, strict: true, clock, ...options });
  const app = express();
  const seen: GuardedApi['seen'] = [];
  app.use((req, _res, next) => {
    seen.push({ method: req.method, path: req.path, authorization: req.headers.authorization });
    next();
  });
  const describeAuth = (req: express.Request) => {
    const { auth } = req as AuthenticatedRequest;
    return { clientId: auth.clientId, scopes: auth.scopes, aud: auth.payload.aud, kid: auth.header.kid };
  };
  app.get('/reports', rs.requireScope('reports:read'), (req, res) => { res.json({ reports: ['q1', 'q2'], auth: describeAuth(req) }); });
  app.post('/reports', rs.requireScope('reports:write'), (_req, res) => { res.status(201).json({ created: true }); });
  app.get('/invoices', rs.requireScope('invoices:read'), (req, res) => { res.json({ invoices: [], auth: describeAuth(req) }); });
  const server = await listen(app);
  return Object.assign(server, { seen });
}

/** The issuer, one API per audience and a clock shared by all three and the clients. */
interface World {
  issuer: TestIssuer;
  reports: GuardedApi;
  billing: GuardedApi;
  clock: () => number;
  advance(ms: number): void;
  close(): Promise<void>;
}

async function startWorld(guard: Partial<ResourceServerOptions> = {}): Promise<World> {
  let now = Date.now();
  const clock = () => now;
  const issuer = await startIssuer({ clock });
  const reports = await startGuardedApi(issuer, REPORTS, clock, guard);
  const billing = await startGuardedApi(issuer, BILLING, clock, guard);
  return {
    issuer, reports, billing, clock,
    advance: (ms) => { now += ms; },
    async close() {
      await Promise.all([reports.close(), billing.close()]);
      await issuer.close();
    },
  };
}

describe('tokenClient() with authorizationServer() and requireScope()', () => {
  let world: World;
  let clientId: string;
  let clientSecret: string;

  before(async () => {
    world = await startWorld();
    ({ clientId, clientSecret } = await world.issuer.store.clients.create({
      name: 'nightly-report', scopes: ['reports:read', 'invoices:read'], defaultScopes: ['reports:read'], audiences: [REPORTS, BILLING],
    }));
  });
  after(async () => { await world.close(); });
  beforeEach(() => {
    world.reports.seen.length = 0;
    world.billing.seen.length = 0;
  });

  /** The metadata requests discovery makes before it finds our router's document. */
  function discovery(): string[] {
    const { issuer, url } = world.issuer;
    // OpenID Connect Discovery first, then RFC 8414 §3.1 (path inserted), then the appended form our router answers.
    return [
      `GET ${issuer}/.well-known/openid-configuration`,
      `GET ${url}/.well-known/oauth-authorization-server/oauth`,
      `GET ${issuer}/.well-known/oauth-authorization-server`,
    ];
  }

  function rejections(client: TokenClient): TokenRejectedEvent[] {
    const events: TokenRejectedEvent[] = [];
    client.events.on('token.rejected', (event) => events.push(event));
    return events;
  }

  for (const param of ['resource', 'audience'] as const) {
    it(`gets a token for the audience named by ${param} that the guard accepts`, async () => {
      const { fetch, sent } = recordingFetch();
      const client = tokenClient({
        issuer: world.issuer.issuer, clientId, clientSecret, scope: 'reports:read', [param]: REPORTS, fetch, clock: world.clock,
      });
      const token = await client.getToken();
      expect(token.toJSON()).to.deep.equal({ tokenType: 'Bearer', scope: 'reports:read', expiresAt: new Date(world.clock() + LIFETIME * 1000).toISOString() });
      const { header, payload } = decodeJwt(token.accessToken);
      expect(header).to.include({ typ: 'at+jwt', alg: 'ES256' });
      expect(payload).to.include({ iss: world.issuer.issuer, sub: clientId, client_id: clientId, aud: REPORTS, scope: 'reports:read' });

      const res = await client.fetch(`${world.reports.url}/reports`);
      expect(await read(res)).to.deep.equal({
        status: 200, challenge: null, cacheControl: null,
        body: { reports: ['q1', 'q2'], auth: { clientId, scopes: ['reports:read'], aud: REPORTS, kid: header.kid } },
      });
      expect(world.reports.seen).to.deep.equal([{ method: 'GET', path: '/reports', authorization: `Bearer ${token.accessToken}` }]);
      expect(sent.map((r) => `${r.method} ${r.url}`)).to.deep.equal([
        ...discovery(), `POST ${world.issuer.tokenUrl}`, `GET ${world.reports.url}/reports`,
      ]);
      expect(sent.find((r) => r.method === 'POST')?.form).to.deep.equal({
        grant_type: ['client_credentials'], scope: ['reports:read'], [param]: [REPORTS],
      });
    });
  }

  it('returns a 403 insufficient_scope as it is: no replay, the token kept, one token request', async () => {
    const { fetch, sent } = recordingFetch();
    // replay: 'always' so that only the status (403, not 401 invalid_token) keeps the POST from going again.
    const client = tokenClient({ issuer: world.issuer.issuer, clientId, clientSecret, resource: REPORTS, replay: 'always', fetch, clock: world.clock });
    const rejected = rejections(client);
    const res = await client.fetch(`${world.reports.url}/reports`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'q3' }),
    });
    expect(await read(res)).to.deep.equal({
      status: 403, challenge: INSUFFICIENT_WRITE, cacheControl: 'no-store',
      body: { error: 'insufficient_scope', error_description: 'the token lacks a required scope' },
    });
    expect((await client.fetch(`${world.reports.url}/reports`)).status).to.equal(200);
    expect(sent.filter((r) => r.method === 'POST' && r.url === world.issuer.tokenUrl)).to.have.length(1);
    expect(world.reports.seen.map((r) => `${r.method} ${r.path}`)).to.deep.equal(['POST /reports', 'GET /reports']);
    expect(new Set(world.reports.seen.map((r) => r.authorization)).size).to.equal(1);
    expect(rejected).to.deep.equal([]);
  });

  for (const id of [SPECIAL_ID, DELIMITED_ID]) {
    it(`authenticates ${id} with client_secret_basic, form-urlencoded before base64 (RFC 6749 §2.3.1)`, async () => {
      const special = await world.issuer.store.clients.create({ clientId: id, name: 'special characters', scopes: ['reports:read'], audiences: [REPORTS] });
      const client = tokenClient({ tokenUrl: world.issuer.tokenUrl, clientId: id, clientSecret: special.clientSecret, clock: world.clock });
      const token = await client.getToken();
      expect(decodeJwt(token.accessToken).payload).to.include({ sub: id, client_id: id, aud: REPORTS, scope: 'reports:read' });
      const res = await client.fetch(`${world.reports.url}/reports`);
      expect(await read(res)).to.deep.equal({
        status: 200, challenge: null, cacheControl: null,
        body: { reports: ['q1', 'q2'], auth: { clientId: id, scopes: ['reports:read'], aud: REPORTS, kid: decodeJwt(token.accessToken).header.kid } },
      });
    });
  }

  it('gives each registration of tokenClients() its own token, scope and audience', async () => {
    const { fetch, sent } = recordingFetch();
    const apis = tokenClients({
      reports: { clientId, clientSecret, scope: 'reports:read', resource: REPORTS },
      billing: { clientId, clientSecret, scope: 'invoices:read', resource: BILLING },
    }, { issuer: world.issuer.issuer, fetch, clock: world.clock });
    expect(apis.names()).to.deep.equal(['reports', 'billing']);
    expect(apis.get('billing')).to.equal(apis.billing);

    const [reportsToken, billingToken] = await Promise.all([apis.reports.getToken(), apis.billing.getToken()]);
    expect(reportsToken.accessToken).not.to.equal(billingToken.accessToken);
    expect([reportsToken.scope, billingToken.scope]).to.deep.equal(['reports:read', 'invoices:read']);
    expect(decodeJwt(reportsToken.accessToken).payload).to.include({ aud: REPORTS, scope: 'reports:read' });
    expect(decodeJwt(billingToken.accessToken).payload).to.include({ aud: BILLING, scope: 'invoices:read' });

    const reportsRes = await read(await apis.reports.fetch(`${world.reports.url}/reports`));
    const billingRes = await read(await apis.billing.fetch(`${world.billing.url}/invoices`));
    expect({ status: reportsRes.status, scopes: (reportsRes.body as { auth: { scopes: string[] } }).auth.scopes }).to.deep.equal({ status: 200, scopes: ['reports:read'] });
    expect({ status: billingRes.status, scopes: (billingRes.body as { auth: { scopes: string[] } }).auth.scopes }).to.deep.equal({ status: 200, scopes: ['invoices:read'] });
    expect(world.reports.seen.map((r) => r.authorization)).to.deep.equal([`Bearer ${reportsToken.accessToken}`]);
    expect(world.billing.seen.map((r) => r.authorization)).to.deep.equal([`Bearer ${billingToken.accessToken}`]);

    // One discovery for both registrations of the same issuer: no metadata location read twice.
    const metadataReads = sent.filter((r) => r.method === 'GET' && r.url.includes('/.well-known/')).map((r) => r.url);
    expect(metadataReads).to.include(`${world.issuer.issuer}/.well-known/oauth-authorization-server`);
    expect(metadataReads).to.deep.equal([...new Set(metadataReads)]);
    const tokenForms = sent.filter((r) => r.method === 'POST').map((r) => r.form);
    expect(tokenForms).to.have.deep.members([
      { grant_type: ['client_credentials'], scope: ['reports:read'], resource: [REPORTS] },
      { grant_type: ['client_credentials'], scope: ['invoices:read'], resource: [BILLING] },
    ]);
    expect(tokenForms).to.have.length(2);

    // Each token is for its own API only: the billing guard refuses the reports token.
    const crossed = await fetch(`${world.billing.url}/invoices`, { headers: { authorization: `Bearer ${reportsToken.accessToken}` } });
    expect(await read(crossed)).to.deep.equal({
      status: 401,
      challenge: `Bearer realm="${BILLING}", error="invalid_token", error_description="the token audience is not accepted"`,
      cacheControl: 'no-store',
      body: { error: 'invalid_token', error_description: 'the token audience is not accepted' },
    });
  });
});

describe('tokenClient() across a key rotation at authorizationServer()', () => {
  let world: World;
  let client: TokenClient;
  let rejected: TokenRejectedEvent[];
  let sent: SentRequest[];

  before(async () => {
    // The guard keeps the JWKS for 60 s, so that a key revoked at the issuer stops being trusted
    // within the test's clock, and caches no verified tokens: a cached token would be accepted
    // until it expires whatever became of its key.
    world = await startWorld({ jwksCacheMaxAge: 60, tokenCacheSize: 0 });
    const { clientId, clientSecret } = await world.issuer.store.clients.create({ name: 'nightly-report', scopes: ['reports:read'], audiences: [REPORTS] });
    const recorder = recordingFetch();
    sent = recorder.sent;
    client = tokenClient({ issuer: world.issuer.issuer, clientId, clientSecret, scope: 'reports:read', fetch: recorder.fetch, clock: world.clock });
    rejected = [];
    client.events.on('token.rejected', (event) => rejected.push(event));
  });
  after(async () => { await world.close(); });

  const kidOf = (authorization: string | undefined): unknown => decodeJwt((authorization ?? '').replace(/^Bearer /, '')).header.kid;

  it('keeps working: the old token until its key is revoked, then a new token signed by the new key', async () => {
    const url = `${world.reports.url}/reports`;
    expect((await client.fetch(url)).status).to.equal(200);
    const [oldKey] = await world.issuer.store.keys.list();
    expect(kidOf(world.reports.seen[0]?.authorization)).to.equal(oldKey?.kid);

    // The new key is published at once and signs from 60 s on; the client's token stays valid.
    const newKey = await world.issuer.store.keys.rotate({ alg: 'ES256', activateAfter: 60 });
    world.advance(61_000);
    const second = await client.fetch(url);
    expect((await read(second)).status).to.equal(200);
    expect(world.reports.seen[1]?.authorization).to.equal(world.reports.seen[0]?.authorization);

    // The old key is withdrawn; once the guard's JWKS is older than 60 s it no longer trusts the
    // old token, answers 401 invalid_token, and the client replays the GET with a new token.
    expect(await world.issuer.store.keys.revoke(oldKey?.kid ?? '')).to.equal(true);
    world.advance(61_000);
    const third = await client.fetch(url);
    const body = await read(third);
    expect({ status: body.status, kid: (body.body as { auth: { kid: string } }).auth.kid }).to.deep.equal({ status: 200, kid: newKey.kid });
    expect(world.reports.seen.slice(2).map((r) => kidOf(r.authorization))).to.deep.equal([oldKey?.kid, newKey.kid]);
    expect(rejected).to.deep.equal([{ clientId: client.clientId, url, method: 'GET', replayed: true }]);
    expect(sent.filter((r) => r.method === 'POST')).to.have.length(2);

    // And the next call uses the new token without another token request.
    expect((await client.fetch(url)).status).to.equal(200);
    expect(kidOf(world.reports.seen[4]?.authorization)).to.equal(newKey.kid);
    expect(sent.filter((r) => r.method === 'POST')).to.have.length(2);
  });
});
