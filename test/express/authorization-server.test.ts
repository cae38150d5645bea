import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { authorizationServer, createKnexStore, KeyDecryptionError, type AuthorizationServerEventMap } from '../../lib/index.js';
import { generateSigningKey } from '../../lib/core/keys.js';
import { sqliteDatabase } from '../support/db.js';
import express from 'express';
import { basic, listen, postForm, request, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

const AUDIENCE = 'https://reports.internal';

/** The headers every token-endpoint answer carries; `date`, `connection`, `keep-alive` vary. */
function stableHeaders(res: ReadResponse): Record<string, string> {
  const { date: _d, connection: _c, 'keep-alive': _k, 'content-length': _l, ...rest } = res.headers;
  return rest;
}

const JSON_NO_STORE = {
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'content-type': 'application/json; charset=utf-8',
  'x-powered-by': 'Express',
};

async function jwksKey(issuer: TestIssuer, kid: string) {
  const { json } = await request(`${issuer.issuer}/jwks.json`);
  const jwk = (json as { keys: (JsonWebKey & { kid: string })[] }).keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error(`kid ${kid} is not published`);
  return createPublicKey({ key: jwk, format: 'jwk' });
}

describe('authorizationServer()', () => {
  describe('options', () => {
    const db = sqliteDatabase();
    const store = createKnexStore(db.knex);
    after(() => db.destroy());

    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['no issuer', { store }, /issuer is required/],
      ['an issuer that is not a URL', { issuer: 'auth.internal', store }, /absolute URL/],
      ['an http issuer off loopback', { issuer: 'http://auth.internal/oauth', store }, /https/],
      ['an issuer with a trailing slash', { issuer: 'https://auth.internal/oauth/', store }, /slash/],
      ['an issuer with a query', { issuer: 'https://auth.internal/oauth?x=1', store }, /query/],
      ['an issuer with a fragment', { issuer: 'https://auth.internal/oauth#x', store }, /fragment/],
      ['an issuer with credentials', { issuer: 'https://u:p@auth.internal/oauth', store }, /credentials/],
      ['no store', { issuer: 'https://auth.internal/oauth' }, /store is required/],
      ['a zero tokenLifetime', { issuer: 'https://auth.internal/oauth', store, tokenLifetime: 0 }, /tokenLifetime/],
      ['a tokenLifetime over maxTokenLifetime', { issuer: 'https://a.b/o', store, tokenLifetime: 7200 }, /tokenLifetime/],
      ['a fractional maxTokenLifetime', { issuer: 'https://a.b/o', store, maxTokenLifetime: 1.5 }, /maxTokenLifetime/],
      ['an unknown scopePolicy', { issuer: 'https://a.b/o', store, scopePolicy: 'lenient' }, /scopePolicy/],
      ['a symmetric signingAlgorithm', { issuer: 'https://a.b/o', store, signingAlgorithm: 'HS256' }, /signingAlgorithm/],
      ['"none" as signingAlgorithm', { issuer: 'https://a.b/o', store, signingAlgorithm: 'none' }, /signingAlgorithm/],
      ['a claims hook that is not a function', { issuer: 'https://a.b/o', store, claims: {} }, /claims/],
      ['a malformed rate limit', { issuer: 'https://a.b/o', store, rateLimit: { perClient: { points: 0, duration: 60 } } }, /perClient/],
      ['a clock that is not a function', { issuer: 'https://a.b/o', store, clock: 5 }, /clock/],
    ];
    for (const [what, options, message] of cases) {
      it(`throws a TypeError at creation for ${what}`, () => {
        expect(() => authorizationServer(options as never)).to.throw(TypeError, message);
      });
    }

    it('accepts an http issuer on localhost, 127.0.0.1 and [::1]', () => {
      for (const host of ['localhost:3000', '127.0.0.1', '[::1]:8080']) {
        expect(() => authorizationServer({ issuer: `http://${host}/oauth`, store })).not.to.throw();
      }
    });
  });

  describe('POST /token', () => {
    let issuer: TestIssuer;
    let clientId: string;
    let clientSecret: string;
    const events: { name: string; payload: unknown }[] = [];

    before(async () => {
      issuer = await startIssuer();
      ({ clientId, clientSecret } = await issuer.store.clients.create({
        clientId: 'nightly-report', name: 'Nightly report', scopes: ['reports:read', 'reports:list'],
        defaultScopes: ['reports:read'], audiences: [AUDIENCE, 'https://billing.internal'],
        claims: { tenant: 'acme' },
      }));
      for (const name of ['token.issued', 'client.authentication_failed', 'rate_limited', 'internal_error'] as const) {
        issuer.as.events.on(name, (payload: AuthorizationServerEventMap[typeof name]) => events.push({ name, payload }));
      }
    });
    beforeEach(() => { events.length = 0; });
    after(() => issuer.close());

    it('issues an RFC 9068 access token to a client using client_secret_basic', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
      expect(res.status).to.equal(200);
      expect(stableHeaders(res)).to.deep.equal(JSON_NO_STORE);
      const body = res.json as { access_token: string };
      expect(Object.keys(body)).to.deep.equal(['access_token', 'token_type', 'expires_in', 'scope']);
      expect({ ...body, access_token: 'x' }).to.deep.equal({ access_token: 'x', token_type: 'Bearer', expires_in: 300, scope: 'reports:read' });

      const decoded = jwt.decode(body.access_token, { complete: true });
      const header = decoded?.header as jwt.JwtHeader;
      expect(Object.keys(header).sort()).to.deep.equal(['alg', 'kid', 'typ']);
      expect([header.alg, header.typ]).to.deep.equal(['ES256', 'at+jwt']);
      const payload = jwt.verify(body.access_token, await jwksKey(issuer, header.kid as string), {
        algorithms: ['ES256'], issuer: issuer.issuer, audience: AUDIENCE,
      }) as jwt.JwtPayload;
      expect(payload.exp).to.equal((payload.iat as number) + 300);
      expect(payload.jti).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect({ ...payload, exp: 0, iat: 0, jti: '' }).to.deep.equal({
        iss: issuer.issuer, sub: 'nightly-report', aud: AUDIENCE, exp: 0, iat: 0, jti: '',
        client_id: 'nightly-report', scope: 'reports:read', tenant: 'acme',
      });
      expect(events).to.deep.equal([{ name: 'token.issued', payload: {
        clientId: 'nightly-report', scopes: ['reports:read'], audience: [AUDIENCE], expiresIn: 300,
        jti: payload.jti, kid: header.kid, method: 'client_secret_basic' } }]);
    });

    it('issues a token to a client using client_secret_post', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
      expect([res.status, stableHeaders(res), (res.json as { scope: string }).scope]).to.deep.equal([200, JSON_NO_STORE, 'reports:read']);
      expect((events[0]?.payload as { method: string }).method).to.equal('client_secret_post');
    });

    it('accepts a client_id in the body that repeats the Basic one', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: clientId }, { authorization: basic(clientId, clientSecret) });
      expect(res.status).to.equal(200);
    });

    it('issues a fresh jti for every token', async () => {
      const jtis = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
        jtis.add((jwt.decode((res.json as { access_token: string }).access_token) as jwt.JwtPayload).jti as string);
      }
      expect(jtis.size).to.equal(5);
    });

    describe('scope', () => {
      const token = async (scope: string) => postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope }, { authorization: basic(clientId, clientSecret) });

      it('grants the requested scopes when all are allowed, echoed in order', async () => {
        const res = await token('reports:list reports:read');
        expect([res.status, (res.json as { scope: string }).scope]).to.deep.equal([200, 'reports:list reports:read']);
      });

      it('collapses repeated scope tokens and extra spaces', async () => {
        const res = await token('  reports:read   reports:read ');
        expect([res.status, (res.json as { scope: string }).scope]).to.deep.equal([200, 'reports:read']);
      });

      it('rejects a scope beyond the client\'s with 400 invalid_scope', async () => {
        const res = await token('reports:read reports:write');
        expect([res.status, stableHeaders(res), res.json]).to.deep.equal([400, JSON_NO_STORE, {
          error: 'invalid_scope', error_description: 'the requested scope exceeds the scope granted to the client' }]);
      });

      it('rejects an empty scope parameter with 400 invalid_scope', async () => {
        const res = await token('   ');
        expect([res.status, res.json]).to.deep.equal([400, { error: 'invalid_scope', error_description: 'scope is empty' }]);
      });

      for (const bad of ['reports:"read"', 'a\\b', 'caf\u00e9', 'a\tb', '\u0000']) {
        it(`rejects the malformed scope ${JSON.stringify(bad)} with 400 invalid_scope`, async () => {
          const res = await token(bad);
          expect([res.status, res.json]).to.deep.equal([400, { error: 'invalid_scope', error_description: 'scope holds a malformed scope token' }]);
        });
      }
    });

    describe('audience', () => {
      const token = (form: Record<string, string | string[]>) =>
        postForm(issuer.tokenUrl, { grant_type: 'client_credentials', ...form }, { authorization: basic(clientId, clientSecret) });
      const aud = (res: ReadResponse) => (jwt.decode((res.json as { access_token: string }).access_token) as jwt.JwtPayload).aud;

      it('uses the client\'s default audience when none is requested', async () => {
        expect(aud(await token({}))).to.equal(AUDIENCE);
      });

      it('takes an RFC 8707 resource parameter', async () => {
        expect(aud(await token({ resource: 'https://billing.internal' }))).to.equal('https://billing.internal');
      });

      it('takes several resource parameters as an audience array', async () => {
        expect(aud(await token({ resource: [AUDIENCE, 'https://billing.internal'] }))).to.deep.equal([AUDIENCE, 'https://billing.internal']);
      });

      it('takes an audience parameter', async () => {
        expect(aud(await token({ audience: 'https://billing.internal' }))).to.equal('https://billing.internal');
      });

      const refusals: [string, Record<string, string | string[]>, number, string, string][] = [
        ['a resource the client may not have', { resource: 'https://payroll.internal' }, 400, 'invalid_target', 'the requested resource or audience is not allowed for this client'],
        ['an audience the client may not have', { audience: 'payroll' }, 400, 'invalid_target', 'the requested resource or audience is not allowed for this client'],
        ['a relative resource', { resource: '/reports' }, 400, 'invalid_target', 'resource must be an absolute URI without a fragment'],
        ['a resource with a fragment', { resource: `${AUDIENCE}#x` }, 400, 'invalid_target', 'resource must be an absolute URI without a fragment'],
        ['both resource and audience', { resource: AUDIENCE, audience: AUDIENCE }, 400, 'invalid_request', 'use either resource or audience, not both'],
        ['a repeated audience', { audience: [AUDIENCE, AUDIENCE] }, 400, 'invalid_request', 'the audience parameter is repeated'],
      ];
      for (const [what, form, status, error, description] of refusals) {
        it(`rejects ${what} with ${status} ${error}`, async () => {
          const res = await token(form);
          expect([res.status, stableHeaders(res), res.json]).to.deep.equal([status, JSON_NO_STORE, { error, error_description: description }]);
        });
      }
    });

    describe('client authentication failures', () => {
      const realm = () => `Basic realm="${new URL(issuer.url).host}"`;
      const failure = (withChallenge: boolean) => ({
        ...(withChallenge ? { 'www-authenticate': realm() } : {}), ...JSON_NO_STORE,
      });
      const body = { error: 'invalid_client', error_description: 'client authentication failed' };

      it('answers an unknown client and a wrong secret identically (Basic)', async () => {
        const wrong = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(clientId, `${clientSecret.slice(0, -7)}aaaaaaa`) });
        const unknown = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('nobody', clientSecret) });
        for (const res of [wrong, unknown]) {
          expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401, failure(true), body]);
        }
        expect(events.map((e) => (e.payload as { reason: string }).reason)).to.deep.equal(['malformed_credentials', 'unknown_client']);
      });

      it('answers an unknown client and a wrong well-formed secret identically (post), without a challenge', async () => {
        const { clientSecret: otherSecret } = await issuer.store.clients.create({ name: 'other', scopes: ['x'], audiences: ['y'] });
        const wrong = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: clientId, client_secret: otherSecret });
        const unknown = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: 'nobody', client_secret: otherSecret });
        for (const res of [wrong, unknown]) {
          expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401, failure(false), body]);
        }
        expect(events.map((e) => e.payload)).to.deep.equal([
          { clientId, reason: 'invalid_secret', method: 'client_secret_post', address: '127.0.0.1' },
          { clientId: 'nobody', reason: 'unknown_client', method: 'client_secret_post', address: '127.0.0.1' },
        ]);
      });

      it('refuses a disabled client with the same answer', async () => {
        const created = await issuer.store.clients.create({ name: 'off', scopes: ['x'], audiences: ['y'] });
        await issuer.store.clients.update(created.clientId, { enabled: false });
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(created.clientId, created.clientSecret) });
        expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401, failure(true), body]);
        expect((events[0]?.payload as { reason: string }).reason).to.equal('client_disabled');
      });

      it('refuses an expired secret with the same answer', async () => {
        const created = await issuer.store.clients.create({ name: 'old', scopes: ['x'], audiences: ['y'], secretExpiresAt: new Date(Date.now() - 1000) });
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(created.clientId, created.clientSecret) });
        expect([res.status, res.json]).to.deep.equal([401, body]);
        expect((events[0]?.payload as { reason: string }).reason).to.equal('expired_secret');
      });

      it('refuses a request without client authentication with 401 and a Basic challenge', async () => {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: clientId });
        expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401, failure(true), body]);
        expect((events[0]?.payload as { reason: string }).reason).to.equal('no_credentials');
      });

      it('refuses a Bearer Authorization header with 401 invalid_client', async () => {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: 'Bearer abc' });
        expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401, failure(true), body]);
        expect((events[0]?.payload as { reason: string }).reason).to.equal('unsupported_method');
      });

      it('never puts the presented secret in an event', async () => {
        await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: clientId, client_secret: 'hunter2-hunter2' });
        expect(JSON.stringify(events)).not.to.include('hunter2');
      });
    });

    it('refuses a client that may not use the grant with 400 unauthorized_client', async () => {
      const created = await issuer.store.clients.create({ name: 'no-grant', scopes: ['x'], audiences: ['y'], grantTypes: [] });
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(created.clientId, created.clientSecret) });
      expect([res.status, stableHeaders(res), res.json]).to.deep.equal([400, JSON_NO_STORE, {
        error: 'unauthorized_client', error_description: 'the client is not allowed the client_credentials grant' }]);
    });

    it('refuses another grant type with 400 unsupported_grant_type', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'password', username: 'a', password: 'b' }, { authorization: basic(clientId, clientSecret) });
      expect([res.status, stableHeaders(res), res.json]).to.deep.equal([400, JSON_NO_STORE, {
        error: 'unsupported_grant_type', error_description: 'only the client_credentials grant is supported' }]);
    });
  });

  describe('lifetimes and claims', () => {
    let issuer: TestIssuer;
    after(() => issuer.close());

    it('uses the per-client lifetime, capped by maxTokenLifetime, and merges hook claims below reserved ones', async () => {
      issuer = await startIssuer({
        tokenLifetime: 120, maxTokenLifetime: 600,
        claims: async ({ client, scopes, audience }) => ({
          hook: `${client.clientId}:${scopes.join(',')}:${audience.join(',')}`, iss: 'https://evil', sub: 'root', scope: 'admin', tenant: 'hook',
        }),
      });
      const short = await issuer.store.clients.create({ clientId: 'short', name: 's', scopes: ['a'], audiences: ['aud'] });
      const long = await issuer.store.clients.create({ clientId: 'long', name: 'l', scopes: ['a'], audiences: ['aud'], tokenLifetime: 3600, claims: { tenant: 'static' } });
      const shortRes = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('short', short.clientSecret) });
      const longRes = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('long', long.clientSecret) });
      expect([(shortRes.json as { expires_in: number }).expires_in, (longRes.json as { expires_in: number }).expires_in]).to.deep.equal([120, 600]);
      const payload = jwt.decode((longRes.json as { access_token: string }).access_token) as jwt.JwtPayload;
      expect([payload.iss, payload.sub, payload.scope, payload.hook, payload.tenant, (payload.exp as number) - (payload.iat as number)])
        .to.deep.equal([issuer.issuer, 'long', 'a', 'long:a:aud', 'hook', 600]);
    });
  });

  describe('what listeners and the claims hook are handed', () => {
    let issuer: TestIssuer;
    after(() => issuer.close());

    it('is a copy: pushing into the scopes, audience or client given to them grants nothing to later tokens', async () => {
      issuer = await startIssuer({
        claims: ({ client, scopes, audience }) => {
          (scopes as string[]).push('admin:hook');
          (audience as string[]).push('https://evil.hook');
          client.scopes.push('admin:client');
          client.defaultScopes.push('admin:client');
          return {};
        },
      });
      issuer.as.events.on('token.issued', (event) => {
        event.scopes.push('admin:event');
        event.audience.push('https://evil.event');
      });
      const { clientSecret } = await issuer.store.clients.create({ clientId: 'job', name: 'j', scopes: ['a'], audiences: ['aud'] });
      const scopes: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('job', clientSecret) });
        const payload = jwt.decode((res.json as { access_token: string }).access_token) as jwt.JwtPayload;
        scopes.push([res.status, (res.json as { scope: string }).scope, payload.scope, payload.aud]);
      }
      expect(scopes).to.deep.equal([[200, 'a', 'a', 'aud'], [200, 'a', 'a', 'aud'], [200, 'a', 'a', 'aud']]);
      const explicit = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope: 'admin:client' }, { authorization: basic('job', clientSecret) });
      expect([explicit.status, (explicit.json as { error: string }).error]).to.deep.equal([400, 'invalid_scope']);
    });
  });

  describe('with "scopePolicy: downscope"', () => {
    let issuer: TestIssuer;
    let secret: string;
    before(async () => {
      issuer = await startIssuer({ scopePolicy: 'downscope' });
      ({ clientSecret: secret } = await issuer.store.clients.create({ clientId: 'd', name: 'd', scopes: ['a', 'b'], audiences: ['aud'] }));
    });
    after(() => issuer.close());

    it('grants the allowed part of the request and echoes it in scope', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope: 'a c b' }, { authorization: basic('d', secret) });
      expect([res.status, (res.json as { scope: string }).scope]).to.deep.equal([200, 'a b']);
      expect((jwt.decode((res.json as { access_token: string }).access_token) as jwt.JwtPayload).scope).to.equal('a b');
    });

    it('still refuses with invalid_scope when nothing requested is allowed', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope: 'c' }, { authorization: basic('d', secret) });
      expect([res.status, res.json]).to.deep.equal([400, { error: 'invalid_scope', error_description: 'the requested scope exceeds the scope granted to the client' }]);
    });
  });

  describe('GET /jwks.json', () => {
    for (const alg of ['ES256', 'RS256', 'PS256'] as const) {
      it(`publishes only the public members of a generated ${alg} key`, async () => {
        const issuer = await startIssuer({ signingAlgorithm: alg });
        try {
          const res = await request(`${issuer.issuer}/jwks.json`);
          const { date: _d, connection: _c, 'keep-alive': _k, 'content-length': _l, etag: _e, ...headers } = res.headers;
          expect([res.status, headers]).to.deep.equal([200, {
            'cache-control': 'public, max-age=300', 'content-type': 'application/jwk-set+json; charset=utf-8', 'x-powered-by': 'Express' }]);
          const keys = (res.json as { keys: Record<string, string>[] }).keys;
          expect(keys).to.have.length(1);
          const expectedMembers = alg === 'ES256' ? ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] : ['alg', 'e', 'kid', 'kty', 'n', 'use'];
          expect(Object.keys(keys[0] as object).sort()).to.deep.equal(expectedMembers);
          expect([keys[0]?.alg, keys[0]?.use]).to.deep.equal([alg, 'sig']);
          const { secrets } = { secrets: ['d', 'p', 'q', 'dp', 'dq', 'qi'] };
          for (const member of secrets) expect(res.text).not.to.include(`"${member}"`);
        } finally {
          await issuer.close();
        }
      });
    }

    it('signs RS256 and PS256 tokens that verify against the published key', async () => {
      for (const alg of ['RS256', 'PS256'] as const) {
        const issuer = await startIssuer({ signingAlgorithm: alg });
        try {
          const { clientSecret } = await issuer.store.clients.create({ clientId: 'r', name: 'r', scopes: ['a'], audiences: ['aud'] });
          const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('r', clientSecret) });
          const token = (res.json as { access_token: string }).access_token;
          const header = jwt.decode(token, { complete: true })?.header as jwt.JwtHeader;
          expect([header.alg, header.typ]).to.deep.equal([alg, 'at+jwt']);
          const payload = jwt.verify(token, await jwksKey(issuer, header.kid as string), { algorithms: [alg], issuer: issuer.issuer, audience: 'aud' }) as jwt.JwtPayload;
          expect(payload.client_id).to.equal('r');
          expect(() => jwt.verify(`${token.slice(0, -4)}AAAA`, createPublicKey({ key: { kty: 'oct', k: 'AA' }, format: 'jwk' }))).to.throw();
        } finally {
          await issuer.close();
        }
      }
    });
  });

  describe('GET /.well-known/oauth-authorization-server', () => {
    it('serves RFC 8414 metadata naming the endpoints under the issuer', async () => {
      const issuer = await startIssuer();
      try {
        const res = await request(`${issuer.issuer}/.well-known/oauth-authorization-server`);
        expect([res.status, res.headers['content-type'], res.headers['cache-control']]).to.deep.equal([200, 'application/json; charset=utf-8', 'public, max-age=3600']);
        expect(res.json).to.deep.equal({
          issuer: issuer.issuer,
          token_endpoint: `${issuer.issuer}/token`,
          jwks_uri: `${issuer.issuer}/jwks.json`,
          grant_types_supported: ['client_credentials'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
          token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
          revocation_endpoint: `${issuer.issuer}/revoke`,
          revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
          revocation_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
          introspection_endpoint: `${issuer.issuer}/introspect`,
          introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
          introspection_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
          response_types_supported: [],
          access_token_signing_alg_values_supported: ['ES256', 'RS256', 'PS256'],
        });
      } finally {
        await issuer.close();
      }
    });
  });

  describe('metadata at the RFC 8414 §3.1 location', () => {
    it('gives the host a handler and path to mount at the root, where standard discovery looks', async () => {
      const db = sqliteDatabase();
      const store = createKnexStore(db.knex);
      await store.migrate();
      const app = express();
      let oauth: ReturnType<typeof authorizationServer> | undefined;
      app.use('/oauth', (req, res, next) => (oauth as ReturnType<typeof authorizationServer>)(req, res, next));
      app.get('/.well-known/oauth-authorization-server/oauth', (req, res) => (oauth as ReturnType<typeof authorizationServer>).metadata(req, res));
      const server = await listen(app);
      try {
        oauth = authorizationServer({ issuer: `${server.url}/oauth`, store });
        expect(oauth.metadataPath).to.equal('/.well-known/oauth-authorization-server/oauth');
        const viaRoot = await request(`${server.url}${oauth.metadataPath}`);
        const viaRouter = await request(`${server.url}/oauth/.well-known/oauth-authorization-server`);
        expect([viaRoot.status, viaRoot.json]).to.deep.equal([200, viaRouter.json]);
        expect((viaRoot.json as { issuer: string }).issuer).to.equal(`${server.url}/oauth`);
      } finally {
        await server.close();
        await db.destroy();
      }
    });

    it('has the plain well-known path for an issuer without a path', () => {
      const db = sqliteDatabase();
      const oauth = authorizationServer({ issuer: 'https://auth.internal', store: createKnexStore(db.knex) });
      expect(oauth.metadataPath).to.equal('/.well-known/oauth-authorization-server');
      return db.destroy();
    });
  });

  describe('key rotation', () => {
    it('publishes a new key before it signs, switches at activation, and drops the old key after the longest token lifetime', async () => {
      const t0 = Date.parse('2026-11-22T00:00:00Z');
      let now = t0;
      const issuer = await startIssuer({ clock: () => now, keyCacheTtl: 30, maxTokenLifetime: 600 });
      try {
        const { clientSecret } = await issuer.store.clients.create({ clientId: 'rot', name: 'r', scopes: ['a'], audiences: ['aud'] });
        const kidOf = async () => {
          const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('rot', clientSecret) });
          return (jwt.decode((res.json as { access_token: string }).access_token, { complete: true })?.header as jwt.JwtHeader).kid;
        };
        const published = async () => ((await request(`${issuer.issuer}/jwks.json`)).json as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
        const oldKid = await kidOf();
        const next = await issuer.store.keys.rotate({ activateAfter: 600 });

        expect(await published()).to.deep.equal([oldKid]); // cached for keyCacheTtl
        now += 31_000;
        expect(await published()).to.deep.equal([oldKid, next.kid].sort());
        expect(await kidOf()).to.equal(oldKid);

        now += 600_000; // past activation, and past the cache
        expect(await kidOf()).to.equal(next.kid);
        expect(await published()).to.deep.equal([oldKid, next.kid].sort());

        // The old key stays until activation (t0 + 600 s) + maxTokenLifetime (600 s) + 60 s of skew.
        now = t0 + 1230_000;
        expect(await published()).to.deep.equal([oldKid, next.kid].sort());
        now = t0 + 1261_000;
        expect(await published()).to.deep.equal([next.kid]);
      } finally {
        await issuer.close();
      }
    });

    it('records its maxTokenLifetime plus 60 s with the keys it signs with, pending ones included', async () => {
      const t0 = Date.parse('2026-11-22T00:00:00Z');
      const issuer = await startIssuer({ clock: () => t0, maxTokenLifetime: 600 });
      try {
        // Rotated in before the issuer's first start, with a shorter retention than the issuer needs.
        const pending = await issuer.store.keys.rotate({ activateAfter: 600, retention: 60 });
        await issuer.as.ready();
        const keys = await issuer.store.keys.list();
        expect(keys).to.have.length(2);
        expect(keys.map((k) => k.retention)).to.deep.equal([660, 660]);
        expect(keys.some((k) => k.kid === pending.kid)).to.equal(true);
      } finally {
        await issuer.close();
      }
    });

    it('keeps a retired key published as long as its stored retention says, and never less than its own', async () => {
      const t0 = Date.parse('2026-11-22T00:00:00Z');
      let now = t0;
      const issuer = await startIssuer({ clock: () => now, keyCacheTtl: 1, maxTokenLifetime: 600 });
      const published = async (): Promise<string[]> =>
        ((await request(`${issuer.issuer}/jwks.json`)).json as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
      try {
        await issuer.as.ready();
        const [first] = await issuer.store.keys.list();
        const firstKid = first?.kid as string;
        // Recorded by another issuer on the same database whose tokens live two hours.
        await issuer.db.knex(issuer.store.tables.keys).where({ kid: firstKid }).update({ retention: 7260 });
        // A second later, so that the two keys never tie on activation.
        now = t0 + 1000;
        const second = await issuer.store.keys.rotate({ activateAfter: 0 });
        expect(second.retention).to.equal(7260);
        now = t0 + 1000 + 7259_000;
        expect(await published()).to.deep.equal([firstKid, second.kid].sort());
        now = t0 + 1000 + 7261_000;
        expect(await published()).to.deep.equal([second.kid]);

        // A stored retention shorter than this issuer's own (maxTokenLifetime 600 + 60) does not count.
        await issuer.db.knex(issuer.store.tables.keys).where({ kid: second.kid }).update({ retention: 60 });
        const third = await issuer.store.keys.rotate({ activateAfter: 0 });
        const rotatedAt = now;
        now = rotatedAt + 659_000;
        expect(await published()).to.deep.equal([second.kid, third.kid].sort());
        now = rotatedAt + 661_000;
        expect(await published()).to.deep.equal([third.kid]);
      } finally {
        await issuer.close();
      }
    });

    it('drops a revoked key once the key cache expires', async () => {
      let now = Date.parse('2026-11-22T00:00:00Z');
      const issuer = await startIssuer({ clock: () => now, keyCacheTtl: 5 });
      try {
        await issuer.as.ready();
        const next = await issuer.store.keys.rotate({ activateAfter: 0 });
        const [first] = (await issuer.store.keys.list()).filter((k) => k.kid !== next.kid);
        await issuer.store.keys.revoke(first?.kid as string);
        now += 6000;
        const res = await request(`${issuer.issuer}/jwks.json`);
        expect((res.json as { keys: { kid: string }[] }).keys.map((k) => k.kid)).to.deep.equal([next.kid]);
      } finally {
        await issuer.close();
      }
    });
  });

  describe('when the store fails', () => {
    it('answers 503 temporarily_unavailable with Retry-After, without internals, and reports internal_error', async () => {
      const issuer = await startIssuer();
      const errors: unknown[] = [];
      issuer.as.events.on('internal_error', (e) => errors.push(e.error));
      try {
        const { clientSecret } = await issuer.store.clients.create({ clientId: 'c', name: 'c', scopes: ['a'], audiences: ['aud'] });
        await issuer.db.knex.schema.dropTable(`${issuer.db.prefix}client_secrets`);
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('c', clientSecret) });
        expect([res.status, stableHeaders(res), res.json]).to.deep.equal([503, { ...JSON_NO_STORE, 'retry-after': '5' }, {
          error: 'temporarily_unavailable', error_description: 'client authentication is temporarily unavailable' }]);
        expect(res.text).not.to.match(/select|sqlite|m2m_/i);
        expect(errors).to.have.length(1);
      } finally {
        await issuer.close();
      }
    });

    it('goes on issuing to a cached client while the change log cannot be read', async () => {
      const issuer = await startIssuer({}, undefined, { changePollInterval: 0.05 });
      try {
        const { clientSecret } = await issuer.store.clients.create({ clientId: 'c', name: 'c', scopes: ['a'], audiences: ['aud'] });
        const token = () => postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('c', clientSecret) });
        expect((await token()).status).to.equal(200);
        // The change log gone: every poll fails from now on, and the store says it is degraded.
        const events: string[] = [];
        issuer.store.events.on('degraded', () => events.push('degraded'));
        await issuer.db.knex.schema.dropTable(`${issuer.db.prefix}client_changes`);
        await new Promise((resolve) => { setTimeout(resolve, 100); });
        const during = await Promise.all([token(), token(), token()]);
        expect(during.map((r) => r.status)).to.deep.equal([200, 200, 200]);
        const wrong = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('c', 'm2m_cs_wrong') });
        expect(wrong.status).to.equal(401);
        expect(events).to.deep.equal(['degraded']);
      } finally {
        await issuer.close();
      }
    });

    it('refuses a client disabled by another process before the outage, though no request came between', async () => {
      const issuer = await startIssuer({}, undefined, { clientCacheTtl: 0.05 });
      try {
        const { clientSecret } = await issuer.store.clients.create({ clientId: 'c', name: 'c', scopes: ['a'], audiences: ['aud'] });
        const token = () => postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('c', clientSecret) });
        expect((await token()).status).to.equal(200);
        // The CLI's store: its own registry, the same tables.
        await createKnexStore(issuer.db.knex, { tablePrefix: issuer.db.prefix }).clients.update('c', { enabled: false });
        // No request for a while: only the background check can learn of the change.
        await new Promise((resolve) => { setTimeout(resolve, 1000); });
        await issuer.db.knex.schema.dropTable(`${issuer.db.prefix}client_changes`);
        const res = await token();
        expect([res.status, res.json]).to.deep.equal([401, { error: 'invalid_client', error_description: 'client authentication failed' }]);
      } finally {
        await issuer.close();
      }
    });

    it('answers the JWKS with 503 and Retry-After when no key can be loaded', async () => {
      const issuer = await startIssuer();
      try {
        await issuer.db.knex.schema.dropTable(`${issuer.db.prefix}signing_keys`);
        const res = await request(`${issuer.issuer}/jwks.json`);
        expect([res.status, res.headers['retry-after'], res.json]).to.deep.equal([503, '5', {
          error: 'temporarily_unavailable', error_description: 'signing keys are unavailable' }]);
      } finally {
        await issuer.close();
      }
    });
  });
});

describe('authorizationServer() over a store with keyEncryptionKey', () => {
  const KEK = 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=';

  /** An issuer on a fresh SQLite file whose store has `keyEncryptionKey`, its first key created by `firstKek`. */
  async function start(firstKek: string, kek: string) {
    const db = sqliteDatabase();
    const store = createKnexStore(db.knex, { tablePrefix: db.prefix, keyEncryptionKey: kek });
    await store.migrate();
    await createKnexStore(db.knex, { tablePrefix: db.prefix, keyEncryptionKey: firstKek }).keys.ensure('ES256');
    const { clientId, clientSecret } = await store.clients.create({ name: 'sealed', scopes: ['a'], audiences: [AUDIENCE] });
    const app = express();
    let mounted: express.Router = express.Router();
    app.use('/oauth', (req, res, next) => mounted(req, res, next));
    const server = await listen(app);
    const as = authorizationServer({ issuer: `${server.url}/oauth`, store });
    mounted = as;
    const errors: unknown[] = [];
    as.events.on('internal_error', (event) => errors.push(event.error));
    return {
      db, as, errors, url: `${server.url}/oauth`,
      token: () => postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) }),
      async close() { await server.close(); await store.clients.flushUsage(); await db.destroy(); },
    };
  }

  it('issues tokens signed with the key it decrypts, which verify against its JWKS', async () => {
    const issuer = await start(KEK, KEK);
    try {
      const res = await issuer.token();
      expect(res.status).to.equal(200);
      const stored = await issuer.db.knex(`${issuer.db.prefix}signing_keys`).pluck('private_key') as string[];
      expect(stored.map((v) => v.startsWith('m2m-enc:v1:'))).to.deep.equal([true]);
      const jwks = (await request(`${issuer.url}/jwks.json`)).json as { keys: JsonWebKey[] };
      const token = (res.json as { access_token: string }).access_token;
      const payload = jwt.verify(token, createPublicKey({ key: jwks.keys[0] as JsonWebKey, format: 'jwk' }), { algorithms: ['ES256'] });
      expect(payload).to.include({ aud: AUDIENCE, iss: issuer.url });
    } finally {
      await issuer.close();
    }
  });

  it('answers 503 temporarily_unavailable, and reports why to internal_error, when its key cannot be decrypted', async () => {
    const issuer = await start(KEK, 'z'.repeat(40));
    try {
      const res = await issuer.token();
      expect([res.status, res.headers['retry-after'], res.json]).to.deep.equal([503, '5', {
        error: 'temporarily_unavailable', error_description: 'signing keys are unavailable' }]);
      expect(res.text).to.not.include('m2m-enc').and.not.include(KEK);
      expect(issuer.errors.map((e) => String((e as Error).cause ?? e))).to.have.length(1);
      const cause = (issuer.errors[0] as Error).cause as Error;
      expect(cause).to.be.instanceOf(KeyDecryptionError).with.property('code', 'ERR_M2M_KEY_DECRYPTION');
      expect(cause.message).to.match(/could not be decrypted: keyEncryptionKey is not the one it was stored with$/);
      // The JWKS needs no private key: still served.
      expect((await request(`${issuer.url}/jwks.json`)).status).to.equal(200);
    } finally {
      await issuer.close();
    }
  });
});

describe('authorizationServer() and plain-text or tampered signing keys', () => {
  it('reports published keys stored in plain text once, through keys.plaintext, and none once they are sealed', async () => {
    const issuer = await startIssuer();
    try {
      const seen: string[][] = [];
      issuer.as.events.on('keys.plaintext', (event) => seen.push(event.kids));
      await issuer.as.ready();
      const [key] = await issuer.store.keys.list();
      expect(seen).to.deep.equal([[key?.kid]]);
      const { clientSecret } = await issuer.store.clients.create({ clientId: 'c', name: 'c', scopes: ['a'], audiences: ['aud'] });
      expect((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('c', clientSecret) })).status).to.equal(200);
      expect(seen).to.have.length(1);

      const sealing = createKnexStore(issuer.db.knex, { tablePrefix: issuer.db.prefix, keyEncryptionKey: 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=' });
      expect(await sealing.keys.seal()).to.equal(1);
      expect((await sealing.keys.list()).map((k) => k.encrypted)).to.deep.equal([true]);
      const fresh = authorizationServer({ issuer: issuer.issuer, store: sealing });
      const later: string[][] = [];
      fresh.events.on('keys.plaintext', (event) => later.push(event.kids));
      await fresh.ready();
      expect(later).to.deep.equal([]);
    } finally {
      await issuer.close();
    }
  });

  it('never signs with a stored private key that does not match its published public key: 503 and internal_error', async () => {
    const issuer = await startIssuer();
    try {
      const errors: unknown[] = [];
      issuer.as.events.on('internal_error', (event) => errors.push(event.error));
      await issuer.store.keys.ensure('ES256');
      const stranger = await generateSigningKey('ES256');
      await issuer.db.knex(`${issuer.db.prefix}signing_keys`).update({ private_key: stranger.privateKeyPem });
      const { clientSecret } = await issuer.store.clients.create({ clientId: 'c', name: 'c', scopes: ['a'], audiences: ['aud'] });
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('c', clientSecret) });
      expect([res.status, res.headers['retry-after'], res.json]).to.deep.equal([503, '5', {
        error: 'temporarily_unavailable', error_description: 'signing keys are unavailable' }]);
      expect((errors[0] as { cause?: { code?: string } }).cause?.code).to.equal('ERR_M2M_KEY_MISMATCH');
    } finally {
      await issuer.close();
    }
  });
});
