import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import express from 'express';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { adminApi, createResourceServer, InvalidOptionError } from '../../lib/index.js';
import { ADMIN_OPENAPI } from '../../lib/express/admin-openapi.js';
import { basic, listen, postForm, request, type Listening, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

// The admin API over HTTP: a real issuer mints the callers' tokens, the API runs in its own app on
// the issuer's store (a real SQLite file), and every answer is checked against the OpenAPI document.

const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema({ $id: 'admin', components: ADMIN_OPENAPI.components });

/** Checks `res` against the OpenAPI response schema for `method path` and its status. */
function conforms(res: ReadResponse, method: string, path: keyof typeof ADMIN_OPENAPI.paths): void {
  const item = ADMIN_OPENAPI.paths[path] as Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>;
  const response = item[method]?.responses[String(res.status)];
  expect(response, `${method} ${path} documents no ${res.status}`).not.to.equal(undefined);
  const schema = response!.content?.['application/json']?.schema;
  if (schema === undefined) {
    expect(res.text, `${method} ${path} ${res.status} has no body`).to.equal('');
    return;
  }
  const validate = ajv.compile(rewrite(schema) as object);
  expect(validate(res.json), `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}\n${res.text}`).to.equal(true);
}

/** `#/components/...` references made absolute to the schema registered as `admin`. */
function rewrite(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"admin#/components/'));
}

const ADMIN_AUDIENCE = 'https://auth.internal/admin';

describe('adminApi()', () => {
  let issuer: TestIssuer;
  let api: Listening;
  let adminToken: string;
  let readToken: string;
  let base: string;

  async function tokenFor(scopes: string[]): Promise<string> {
    const { client, clientSecret } = await issuer.store.clients.create({ name: `caller ${scopes.join(' ')}`, scopes, audiences: [ADMIN_AUDIENCE] });
    const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, clientSecret) });
    expect(res.status, res.text).to.equal(200);
    return (res.json as { access_token: string }).access_token;
  }

  before(async () => {
    issuer = await startIssuer();
    const rs = createResourceServer({ issuer: issuer.issuer, audience: ADMIN_AUDIENCE });
    const app = express();
    app.use('/admin', adminApi({ store: issuer.store, resourceServer: rs }));
    api = await listen(app);
    base = `${api.url}/admin`;
    adminToken = await tokenFor(['m2m:admin']);
    readToken = await tokenFor(['m2m:read']);
  });
  after(async () => {
    await api.close();
    await issuer.close();
  });

  const call = (method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) => {
    const { token = adminToken, body, headers = {} } = options;
    return request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  };
  const snapshot = async () => JSON.stringify({ clients: await issuer.store.clients.list(), keys: (await issuer.store.keys.list()).map((k) => k.kid) });

  it('refuses to start without a guard or a store, or with an unknown option', () => {
    const rs = createResourceServer({ issuer: 'https://a.example', audience: ADMIN_AUDIENCE });
    expect(() => adminApi({ store: issuer.store } as never)).to.throw(InvalidOptionError, /needs a resourceServer/);
    expect(() => adminApi({ resourceServer: rs } as never)).to.throw(InvalidOptionError, /needs the issuer store/);
    expect(() => adminApi({ store: issuer.store, resourceServer: rs, adminScopes: 'x' } as never)).to.throw(InvalidOptionError, /adminScope/);
  });

  it('answers 401 without a token, and 403 to a reading token that tries to change something', async () => {
    const none = await request(`${base}/clients`);
    expect([none.status, none.headers['www-authenticate']]).to.deep.equal([401, `Bearer realm="${ADMIN_AUDIENCE}"`]);
    const before = await snapshot();
    const denied = await call('POST', '/clients', { token: readToken, body: { name: 'x', scopes: ['a'], audiences: ['https://a.internal'] } });
    expect(denied.status).to.equal(403);
    expect(denied.headers['www-authenticate']).to.include('error="insufficient_scope"').and.include('scope="m2m:admin"');
    expect(await snapshot()).to.equal(before);
    const listed = await call('GET', '/clients', { token: readToken });
    expect(listed.status).to.equal(200);
    conforms(listed, 'get', '/clients');
  });

  it('creates a client whose secret is shown once and works at the token endpoint; shows, lists, updates, disables, enables and deletes it', async () => {
    const created = await call('POST', '/clients', { body: { clientId: 'billing-sync', name: 'Billing sync', scopes: ['billing:read'], audiences: ['https://billing.internal'] } });
    expect(created.status, created.text).to.equal(201);
    expect(created.headers.location).to.equal('/admin/clients/billing-sync');
    expect(created.headers['cache-control']).to.equal('no-store');
    conforms(created, 'post', '/clients');
    const { clientSecret } = created.json as { clientSecret: string };
    const token = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('billing-sync', clientSecret) });
    expect(token.status).to.equal(200);

    const shown = await call('GET', '/clients/billing-sync', { token: readToken });
    conforms(shown, 'get', '/clients/{clientId}');
    expect(shown.text).not.to.include(clientSecret);
    expect((shown.json as { secrets: unknown[] }).secrets).to.have.length(1);

    const updated = await call('PATCH', '/clients/billing-sync', { body: { name: 'Billing sync v2', tokenLifetime: 600 } });
    conforms(updated, 'patch', '/clients/{clientId}');
    expect((updated.json as { client: { name: string; tokenLifetime: number } }).client).to.include({ name: 'Billing sync v2', tokenLifetime: 600 });

    const disabled = await call('POST', '/clients/billing-sync/disable');
    conforms(disabled, 'post', '/clients/{clientId}/disable');
    expect((disabled.json as { client: { enabled: boolean } }).client.enabled).to.equal(false);
    const refused = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('billing-sync', clientSecret) });
    expect(refused.status).to.equal(401);
    const enabled = await call('POST', '/clients/billing-sync/enable');
    conforms(enabled, 'post', '/clients/{clientId}/enable');
    expect((enabled.json as { client: { enabled: boolean } }).client.enabled).to.equal(true);

    const again = await call('POST', '/clients', { body: { clientId: 'billing-sync', name: 'x', scopes: ['a'], audiences: ['https://a.internal'] } });
    expect([again.status, again.json]).to.deep.equal([409, { error: 'conflict', error_description: (again.json as { error_description: string }).error_description }]);

    const deleted = await call('DELETE', '/clients/billing-sync');
    expect([deleted.status, deleted.text]).to.deep.equal([204, '']);
    const gone = await call('GET', '/clients/billing-sync');
    expect([gone.status, gone.json]).to.deep.equal([404, { error: 'not_found', error_description: 'no client "billing-sync"' }]);
    conforms(gone, 'get', '/clients/{clientId}');
  });

  it('rotates a secret with a grace period and revokes one, returning the new secret once', async () => {
    await call('POST', '/clients', { body: { clientId: 'rotating', name: 'Rotating', scopes: ['a'], audiences: ['https://a.internal'] } });
    const rotated = await call('POST', '/clients/rotating/secrets', { body: { gracePeriod: 3600 } });
    expect(rotated.status, rotated.text).to.equal(201);
    conforms(rotated, 'post', '/clients/{clientId}/secrets');
    const { secret } = rotated.json as { secret: { id: string } };
    const revoked = await call('DELETE', `/clients/rotating/secrets/${secret.id}`);
    expect([revoked.status, revoked.text]).to.deep.equal([204, '']);
    const twice = await call('DELETE', `/clients/rotating/secrets/${secret.id}`);
    expect(twice.status).to.equal(404);
    const bad = await call('POST', '/clients/rotating/secrets', { body: { gracePeriod: -1 } });
    expect([bad.status, bad.json]).to.deep.equal([400, { error: 'invalid_request', error_description: 'gracePeriod must be a whole number of seconds from 0 to 2592000' }]);
  });

  it('registers a secretless client with its public keys, and refuses a secret for it with 409', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'archiver-1' }] };
    const created = await call('POST', '/clients', { body: { clientId: 'archiver', name: 'Archiver', scopes: ['a'], audiences: ['https://a.internal'], jwks } });
    expect(created.status, created.text).to.equal(201);
    conforms(created, 'post', '/clients');
    expect(created.json).not.to.have.property('clientSecret');
    expect((created.json as { client: { tokenEndpointAuthMethod: string } }).client.tokenEndpointAuthMethod).to.equal('private_key_jwt');
    const before = await snapshot();
    const refused = await call('POST', '/clients/archiver/secrets', { body: {} });
    expect([refused.status, (refused.json as { error: string }).error]).to.deep.equal([409, 'conflict']);
    conforms(refused, 'post', '/clients/{clientId}/secrets');
    expect(await snapshot()).to.equal(before);
  });

  it('lists, rotates and revokes signing keys without ever showing a private key', async () => {
    const rotated = await call('POST', '/keys/rotate', { body: { alg: 'ES256', activateAfter: 600 } });
    expect(rotated.status, rotated.text).to.equal(201);
    conforms(rotated, 'post', '/keys/rotate');
    const { key } = rotated.json as { key: { kid: string; state: string } };
    expect(key.state).to.equal('pending');
    const listed = await call('GET', '/keys', { token: readToken });
    conforms(listed, 'get', '/keys');
    expect(listed.text).not.to.match(/PRIVATE KEY|"d":/);
    const revoked = await call('POST', `/keys/${key.kid}/revoke`);
    expect([revoked.status, revoked.json]).to.deep.equal([200, { kid: key.kid, revoked: true }]);
    conforms(revoked, 'post', '/keys/{kid}/revoke');
    expect((await call('POST', `/keys/${key.kid}/revoke`)).status).to.equal(404);
    const badAlg = await call('POST', '/keys/rotate', { body: { alg: 'HS256' } });
    expect([badAlg.status, badAlg.json]).to.deep.equal([400, { error: 'invalid_request', error_description: 'alg must be one of ES256, RS256, PS256' }]);
  });

  describe('bad input: a clear 4xx JSON error, nothing changed', () => {
    const cases: [string, () => Promise<ReadResponse>, number, string, RegExp][] = [
      ['an unknown field, with the nearest name', () => call('POST', '/clients', { body: { name: 'x', scope: ['a'], audiences: ['https://a.internal'] } }), 400, 'invalid_request', /unknown field "scope" \(did you mean "scopes"\?\)/],
      ['a repeated field', () => call('POST', '/clients', { body: '{"name":"a","name":"b","scopes":["a"],"audiences":["https://a.internal"]}', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request', /the field "name" is given twice/],
      ['a repeated field in a nested object', () => call('POST', '/clients', { body: '{"name":"a","scopes":["a"],"audiences":["https://a.internal"],"claims":{"t":1,"t":2}}', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request', /"t" is given twice/],
      ['a form body', () => call('POST', '/clients', { body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type', /application\/json/],
      ['malformed JSON', () => call('POST', '/clients', { body: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request', /not valid JSON/],
      ['a JSON array', () => call('POST', '/clients', { body: [1, 2] }), 400, 'invalid_request', /a JSON object/],
      ['an oversized body', () => call('POST', '/clients', { body: { name: 'x'.repeat(20_000), scopes: ['a'], audiences: ['https://a.internal'] } }), 413, 'request_too_large', /16384 bytes/],
      ['a name with control characters', () => call('POST', '/clients', { body: { name: 'evil\u0000\u001b[31m', scopes: ['a'], audiences: ['https://a.internal'] } }), 400, 'invalid_request', /name must be/],
      ['a scope holding SQL', () => call('POST', '/clients', { body: { name: 'x', scopes: ["a' OR '1'='1"], audiences: ['https://a.internal'] } }), 400, 'invalid_request', /scope/],
      ['a client id holding SQL', () => call('POST', '/clients', { body: { clientId: "x'; DROP TABLE m2m_clients; --", name: 'x', scopes: ['a'], audiences: ['https://a.internal'] } }), 400, 'invalid_request', /clientId/],
      ['a path id with control characters', () => call('PATCH', '/clients/a%00b', { body: { name: 'y' } }), 400, 'invalid_request', /clientId must be/],
      ['an unknown endpoint', () => call('GET', '/nope'), 404, 'not_found', /no such endpoint/],
    ];
    for (const [what, send, status, error, description] of cases) {
      it(`refuses ${what} with ${status} ${error}`, async () => {
        const before = await snapshot();
        const res = await send();
        expect(res.status, res.text).to.equal(status);
        expect(res.headers['content-type']).to.match(/^application\/json/);
        expect(res.headers['cache-control']).to.equal('no-store');
        expect(Object.keys(res.json as object).sort()).to.deep.equal(['error', 'error_description']);
        expect((res.json as { error: string }).error).to.equal(error);
        expect((res.json as { error_description: string }).error_description).to.match(description);
        expect(res.text).not.to.match(/at .*\.ts:|select |insert /i);
        expect(await snapshot()).to.equal(before);
      });
    }
  });

  it('records its changes in the audit trail as made by the calling client, and serves the trail', async () => {
    await call('POST', '/clients', { body: { clientId: 'audited', name: 'Audited', scopes: ['a'], audiences: ['https://a.internal'] } });
    await call('POST', '/clients/audited/disable');
    const trail = await call('GET', '/audit?clientId=audited', { token: readToken });
    expect(trail.status, trail.text).to.equal(200);
    conforms(trail, 'get', '/audit');
    const entries = (trail.json as { entries: { actor: string; action: string }[] }).entries;
    const caller = (await issuer.store.clients.list()).find((c) => c.scopes.includes('m2m:admin'))!.clientId;
    expect(entries.map((e) => [e.actor, e.action])).to.deep.equal([
      [`admin-api:${caller}`, 'client.created'], [`admin-api:${caller}`, 'secret.created'], [`admin-api:${caller}`, 'client.disabled'],
    ]);
    const paged = await call('GET', `/audit?clientId=audited&limit=1&after=${(trail.json as { entries: { id: number }[] }).entries[0]!.id}`, { token: readToken });
    expect((paged.json as { entries: { action: string }[] }).entries.map((e) => e.action)).to.deep.equal(['secret.created']);
    for (const [query, description] of [
      ['limit=0', /limit must be an integer/], ['limit=abc', /limit must be a whole number/], ['since=yesterday', /since must be an ISO 8601 time/],
      ['clientId=a&clientId=b', /clientId must be given once/], ['client=a', /unknown query parameter "client"/],
    ] as const) {
      const res = await call('GET', `/audit?${query}`, { token: readToken });
      expect([res.status, (res.json as { error: string }).error], query).to.deep.equal([400, 'invalid_request']);
      expect((res.json as { error_description: string }).error_description).to.match(description);
    }
  });

  it('serves its OpenAPI 3.1 document', async () => {
    const res = await request(`${base}/openapi.json`);
    expect(res.status).to.equal(200);
    expect((res.json as { openapi: string }).openapi).to.equal('3.1.0');
    expect(res.json).to.deep.equal(JSON.parse(JSON.stringify(ADMIN_OPENAPI)));
  });
});

describe('adminApi() when the store is down', () => {
  it('answers 503 temporarily_unavailable with Retry-After, and tells onError', async () => {
    const issuer = await startIssuer();
    const errors: unknown[] = [];
    const app = express();
    const rs = createResourceServer({ issuer: issuer.issuer, audience: ADMIN_AUDIENCE });
    app.use('/admin', adminApi({ store: issuer.store, resourceServer: rs, onError: (e) => errors.push(e) }));
    const api = await listen(app);
    try {
      const { client, clientSecret } = await issuer.store.clients.create({ name: 'a', scopes: ['m2m:read'], audiences: [ADMIN_AUDIENCE] });
      const token = (await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, clientSecret) })).json as { access_token: string };
      await issuer.store.clients.flushUsage();
      await issuer.db.knex.destroy();
      const res = await request(`${api.url}/admin/clients`, { headers: { authorization: `Bearer ${token.access_token}` } });
      expect([res.status, res.headers['retry-after'], res.json]).to.deep.equal([503, '5', { error: 'temporarily_unavailable', error_description: 'the store is unavailable' }]);
      expect(errors).to.have.length(1);
    } finally {
      await api.close();
      await issuer.server.close();
    }
  });
});
