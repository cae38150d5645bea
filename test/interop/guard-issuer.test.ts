import { expect } from 'chai';
import express from 'express';
import { createResourceServer, type ResourceServerOptions } from '../../lib/express/resource-server.js';
import type { AuthenticatedRequest } from '../../lib/express/request-auth.js';
import type { SigningAlgorithm } from '../../lib/index.js';
import { basic, listen, postForm, request, type Listening, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

// Interoperability: tokens from this package's issuer (a real token endpoint over SQLite), checked
// by requireScope() on a second Express app, with the JWKS given or discovered, RFC 9068 strict.

const REPORTS = 'https://reports.internal';

function decodePart(token: string, index: number): unknown {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString());
}

for (const alg of ['ES256', 'RS256', 'PS256'] as const satisfies readonly SigningAlgorithm[]) {
  describe(`requireScope() with tokens from authorizationServer() (${alg})`, () => {
    let issuer: TestIssuer;
    let clientId: string;
    let clientSecret: string;
    let now: number;
    const clock = () => now;
    const apps: Listening[] = [];

    before(async () => {
      now = Date.now();
      issuer = await startIssuer({ signingAlgorithm: alg, clock });
      ({ clientId, clientSecret } = await issuer.store.clients.create({
        name: 'nightly-report', scopes: ['reports:read', 'reports:list'], defaultScopes: ['reports:read'],
        audiences: [REPORTS, 'https://billing.internal'],
      }));
    });
    after(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await issuer.close();
    });

    async function obtain(form: Record<string, string | string[]> = {}): Promise<string> {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', ...form }, { authorization: basic(clientId, clientSecret) });
      expect(res.status, res.text).to.equal(200);
      return (res.json as { access_token: string }).access_token;
    }

    async function guard(options: Partial<ResourceServerOptions> = {}): Promise<string> {
      const rs = createResourceServer({ issuer: issuer.issuer, audience: REPORTS, strict: true, clock, ...options });
      const app = express();
      app.get('/reports', rs.requireScope('reports:read'), (req, res) => {
        const { auth } = req as AuthenticatedRequest;
        res.json({ clientId: auth.clientId, scopes: auth.scopes, sub: auth.payload.sub, alg: auth.header.alg });
      });
      app.get('/list', rs.requireScope(['reports:list']), (_req, res) => { res.json({}); });
      const server = await listen(app);
      apps.push(server);
      return server.url;
    }

    function expectOk(res: ReadResponse, scopes: string[]): void {
      expect({ status: res.status, body: res.json }).to.deep.equal({ status: 200, body: { clientId, scopes, sub: clientId, alg } });
    }

    it('accepts a token with the JWKS discovered from the issuer metadata', async () => {
      const url = await guard();
      expectOk(await request(`${url}/reports`, { headers: { authorization: `Bearer ${await obtain()}` } }), ['reports:read']);
    });

    it('accepts a token with the JWKS URI given', async () => {
      const url = await guard({ jwksUri: `${issuer.issuer}/jwks.json` });
      expectOk(await request(`${url}/reports`, { headers: { authorization: `Bearer ${await obtain({ scope: 'reports:read reports:list' })}` } }),
        ['reports:read', 'reports:list']);
    });

    it('refuses a token without the scope with 403 insufficient_scope', async () => {
      const url = await guard();
      const res = await request(`${url}/list`, { headers: { authorization: `Bearer ${await obtain()}` } });
      expect({ status: res.status, challenge: res.headers['www-authenticate'], body: res.json }).to.deep.equal({
        status: 403,
        challenge: `Bearer realm="${REPORTS}", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:list"`,
        body: { error: 'insufficient_scope', error_description: 'the token lacks a required scope' },
      });
    });

    it('refuses a token issued for another audience with 401 invalid_token', async () => {
      const url = await guard();
      const token = await obtain({ resource: 'https://billing.internal' });
      const res = await request(`${url}/reports`, { headers: { authorization: `Bearer ${token}` } });
      expect({ status: res.status, body: res.json }).to.deep.equal({
        status: 401, body: { error: 'invalid_token', error_description: 'the token audience is not accepted' },
      });
    });

    it('accepts tokens signed by a rotated key without a restart, and old tokens until they expire', async () => {
      const url = await guard();
      const before = await obtain();
      expectOk(await request(`${url}/reports`, { headers: { authorization: `Bearer ${before}` } }), ['reports:read']);
      await issuer.store.keys.rotate({ alg, activateAfter: 60 });
      now += 61_000;
      const after = await obtain();
      const kids = [before, after].map((t) => (decodePart(t, 0) as { kid: string }).kid);
      expect(kids[0]).not.to.equal(kids[1]);
      expectOk(await request(`${url}/reports`, { headers: { authorization: `Bearer ${after}` } }), ['reports:read']);
      expectOk(await request(`${url}/reports`, { headers: { authorization: `Bearer ${before}` } }), ['reports:read']);
      now += 300_000;
      const res = await request(`${url}/reports`, { headers: { authorization: `Bearer ${before}` } });
      expect({ status: res.status, body: res.json }).to.deep.equal({
        status: 401, body: { error: 'invalid_token', error_description: 'the token has expired' },
      });
    });
  });
}
