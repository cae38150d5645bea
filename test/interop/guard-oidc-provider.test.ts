import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { Provider } from 'oidc-provider';
import { createResourceServer } from '../../lib/express/resource-server.js';
import type { AuthenticatedRequest } from '../../lib/express/request-auth.js';
import { basic, listen, postForm, request, type Listening } from '../support/http.js';

// Interoperability: RFC 9068 JWT access tokens from node-oidc-provider (client credentials,
// resource indicators), checked by requireScope() with the JWKS found through OpenID Connect
// discovery, RFC 9068 strict.

const REPORTS = 'https://reports.internal';
const SCOPES = 'reports:read reports:list';

interface RunningProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

async function startProvider(alg: 'ES256' | 'RS256' | 'PS256'): Promise<RunningProvider> {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientId = randomUUID();
  const clientSecret = randomBytes(32).toString('base64url');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', scope: SCOPES, id_token_signed_response_alg: alg,
    }],
    scopes: SCOPES.split(' '),
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: randomUUID() }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => REPORTS,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: SCOPES, audience: REPORTS, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg } } }),
      },
    },
  });
  server.on('request', provider.callback());
  return {
    issuer, clientId, clientSecret,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const alg of ['ES256', 'RS256', 'PS256'] as const) {
  describe(`requireScope() with tokens from node-oidc-provider (${alg})`, () => {
    let op: RunningProvider;
    let app: Listening;

    before(async () => {
      op = await startProvider(alg);
      const rs = createResourceServer({ issuer: op.issuer, audience: REPORTS, strict: true });
      const api = express();
      api.get('/reports', rs.requireScope('reports:read'), (req, res) => {
        const { auth } = req as AuthenticatedRequest;
        res.json({ clientId: auth.clientId, scopes: auth.scopes, typ: auth.header.typ, alg: auth.header.alg, aud: auth.payload.aud });
      });
      api.get('/admin', rs.requireScope('reports:admin'), (_req, res) => { res.json({}); });
      app = await listen(api);
    });
    after(async () => {
      await app.close();
      await op.close();
    });

    async function obtain(scope: string): Promise<string> {
      const res = await postForm(`${op.issuer}/token`, { grant_type: 'client_credentials', scope }, { authorization: basic(op.clientId, op.clientSecret) });
      expect(res.status, res.text).to.equal(200);
      return (res.json as { access_token: string }).access_token;
    }

    it('accepts its JWT access token, found through discovery', async () => {
      const token = await obtain(SCOPES);
      const res = await request(`${app.url}/reports`, { headers: { authorization: `Bearer ${token}` } });
      expect({ status: res.status, body: res.json }).to.deep.equal({
        status: 200, body: { clientId: op.clientId, scopes: ['reports:read', 'reports:list'], typ: 'at+jwt', alg, aud: REPORTS },
      });
    });

    it('refuses its token for a scope it does not grant with 403 insufficient_scope', async () => {
      const res = await request(`${app.url}/admin`, { headers: { authorization: `Bearer ${await obtain('reports:read')}` } });
      expect({ status: res.status, challenge: res.headers['www-authenticate'], body: res.json }).to.deep.equal({
        status: 403,
        challenge: `Bearer realm="${REPORTS}", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:admin"`,
        body: { error: 'insufficient_scope', error_description: 'the token lacks a required scope' },
      });
    });

    it('refuses its token with a flipped signature bit with 401 invalid_token', async () => {
      const token = await obtain('reports:read');
      const [h, p, s = ''] = token.split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[0] = (sig[0] ?? 0) ^ 1;
      const res = await request(`${app.url}/reports`, { headers: { authorization: `Bearer ${h}.${p}.${sig.toString('base64url')}` } });
      expect({ status: res.status, body: res.json }).to.deep.equal({
        status: 401, body: { error: 'invalid_token', error_description: 'the token signature or claims are invalid' },
      });
    });
  });
}
