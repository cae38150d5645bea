import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { createResourceServer, type ResourceServerOptions } from '../../lib/express/resource-server.js';
import { request, type Listening } from '../support/http.js';
import {
  bearer, makeKey, mint, startApp, startJwksServer, type JwksServer, type TestKey,
} from '../express/resource-server-fixtures.js';

// Interoperability with the access-token shapes of hosted issuers that cannot run here (Keycloak,
// Auth0, Okta, Entra ID): their documented header and claim layouts, signed with keys served by a
// loopback JWKS whose metadata is found through discovery, with the resource-server options each
// one needs.

interface Shape {
  name: string;
  /** The issuer's path below the loopback origin (Auth0's issuer ends with a slash). */
  issuerPath: string;
  header: Record<string, unknown>;
  claims: (issuer: string, now: number) => Record<string, unknown>;
  options: Partial<ResourceServerOptions>;
  audience: string;
  scope: string;
  expected: { clientId: string; scopes: string[] };
}

const SHAPES: Shape[] = [
  {
    name: 'Keycloak (typ JWT, azp, aud array, space-delimited scope)',
    issuerPath: '/realms/acme', header: { typ: 'JWT' }, audience: 'reports-api', scope: 'reports:read', options: {},
    claims: (iss, now) => ({
      exp: now + 300, iat: now, jti: randomUUID(), iss, aud: ['reports-api', 'account'], sub: randomUUID(), typ: 'Bearer',
      azp: 'nightly-report', scope: 'profile reports:read email', clientHost: '10.0.0.1', client_id: 'nightly-report',
    }),
    expected: { clientId: 'nightly-report', scopes: ['profile', 'reports:read', 'email'] },
  },
  {
    name: 'Auth0 (issuer with a trailing slash, permissions array)',
    issuerPath: '/', header: { typ: 'at+jwt' }, audience: 'https://reports.internal', scope: 'read:reports',
    options: { scopeClaim: 'permissions' },
    claims: (iss, now) => ({
      iss, sub: 'AbC123@clients', aud: 'https://reports.internal', iat: now, exp: now + 86_400, azp: 'AbC123',
      scope: 'read:reports', gty: 'client-credentials', permissions: ['read:reports'],
    }),
    expected: { clientId: 'AbC123', scopes: ['read:reports'] },
  },
  {
    name: 'Okta (no typ, cid, scp array)',
    issuerPath: '/oauth2/default', header: { typ: undefined }, audience: 'api://reports', scope: 'reports.read',
    options: { scopeClaim: 'scp' },
    claims: (iss, now) => ({
      ver: 1, jti: `AT.${randomUUID()}`, iss, aud: 'api://reports', iat: now, exp: now + 3600, cid: '0oa1b2c3', scp: ['reports.read'], sub: '0oa1b2c3',
    }),
    expected: { clientId: '0oa1b2c3', scopes: ['reports.read'] },
  },
  {
    name: 'Entra ID v2 (app roles, azp, GUID audience)',
    issuerPath: '/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0', header: { typ: 'JWT' }, audience: '6e74172b-be56-4843-9ff4-e66a39bb12e3',
    scope: 'Reports.Read.All', options: { scopeClaim: 'roles' },
    claims: (iss, now) => ({
      aud: '6e74172b-be56-4843-9ff4-e66a39bb12e3', iss, iat: now, nbf: now, exp: now + 3600, azp: 'f0c2bd0e-3a7e-4a4b-8bd1-1d9c7b6c0b2a',
      azpacr: '1', oid: randomUUID(), roles: ['Reports.Read.All'], sub: randomUUID(), tid: '72f988bf-86f1-41af-91ab-2d7cd011db47', ver: '2.0',
    }),
    expected: { clientId: 'f0c2bd0e-3a7e-4a4b-8bd1-1d9c7b6c0b2a', scopes: ['Reports.Read.All'] },
  },
  {
    name: 'Entra ID v1 (appid, roles)',
    issuerPath: '/72f988bf-86f1-41af-91ab-2d7cd011db47/', header: { typ: 'JWT' }, audience: 'api://reports', scope: 'Reports.Read.All',
    options: { scopeClaim: 'roles' },
    claims: (iss, now) => ({
      aud: 'api://reports', iss, iat: now, nbf: now, exp: now + 3600, appid: '1f7b3d1e-0000-4000-8000-000000000001', roles: ['Reports.Read.All'], ver: '1.0',
    }),
    expected: { clientId: '1f7b3d1e-0000-4000-8000-000000000001', scopes: ['Reports.Read.All'] },
  },
];

for (const shape of SHAPES) {
  describe(`requireScope() with ${shape.name} access tokens`, () => {
    let jwks: JwksServer;
    let key: TestKey;
    let app: Listening;

    before(async () => {
      key = makeKey('RS256', { publishAlg: false });
      jwks = await startJwksServer([key]);
      jwks.issuer = `${jwks.url}${shape.issuerPath}`;
      const rs = createResourceServer({ issuer: jwks.issuer, audience: shape.audience, ...shape.options });
      app = await startApp((a, echo) => { a.get('/r', rs.requireScope(shape.scope), echo); });
    });
    after(async () => {
      await app.close();
      await jwks.close();
    });

    it('accepts the token, with the client id and scopes read from its claims', async () => {
      const token = mint(key, shape.claims(jwks.issuer, Math.floor(Date.now() / 1000)), shape.header);
      const res = await request(`${app.url}/r`, { headers: bearer(token) });
      expect(res.status, res.text).to.equal(200);
      const auth = (res.json as { auth: { clientId: string; scopes: string[]; token: string } }).auth;
      expect({ clientId: auth.clientId, scopes: auth.scopes, token: auth.token }).to.deep.equal({ ...shape.expected, token });
      expect(jwks.metadataRequests).to.deep.equal({ [`${shape.issuerPath.replace(/\/+$/, '')}/.well-known/openid-configuration`]: 1 });
    });

    it('refuses the same token for another audience with 401 invalid_token', async () => {
      const token = mint(key, { ...shape.claims(jwks.issuer, Math.floor(Date.now() / 1000)), aud: 'https://elsewhere.example' }, shape.header);
      const res = await request(`${app.url}/r`, { headers: bearer(token) });
      expect({ status: res.status, body: res.json }).to.deep.equal({
        status: 401, body: { error: 'invalid_token', error_description: 'the token audience is not accepted' },
      });
    });
  });
}
