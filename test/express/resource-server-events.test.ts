import express from 'express';
import { expect } from 'chai';
import { createResourceServer, type ResourceServer } from '../../lib/express/resource-server.js';
import type { ResourceServerEventMap } from '../../lib/express/guard-events.js';
import { InvalidTokenError, TemporarilyUnavailableError } from '../../lib/errors.js';
import { request, type Listening, type ReadResponse } from '../support/http.js';
import { rejectionOf } from '../support/rejection.js';
import {
  AUDIENCE, bearer, claims, makeKey, mint, startApp, startJwksServer, type JwksServer, type TestKey,
} from './resource-server-fixtures.js';

// The guard's events through the public API: a real JWKS server on loopback, real requests.

type Recorded = { [K in keyof ResourceServerEventMap]: { name: K; payload: ResourceServerEventMap[K] } }[keyof ResourceServerEventMap];

describe('createResourceServer().events', () => {
  let jwks: JwksServer;
  let key: TestKey;
  let app: Listening;
  let rs: ResourceServer;
  let seen: Recorded[];

  beforeEach(async () => {
    key = makeKey('ES256');
    jwks = await startJwksServer([key]);
    rs = createResourceServer({ issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, jwksCooldown: 0 });
    seen = [];
    for (const name of ['token.accepted', 'token.refused', 'keys.fetched', 'keys.unavailable'] as const) {
      rs.events.on(name, (payload) => { seen.push({ name, payload } as Recorded); });
    }
    app = await startApp((a, echo) => {
      a.use('/api', (() => {
        const router = express.Router();
        router.get('/reports', rs.requireScope('reports:read'), echo);
        router.post('/reports', rs.requireScope(['reports:write']), echo);
        return router;
      })());
    });
  });
  afterEach(async () => {
    await app.close();
    await jwks.close();
  });

  const descriptionOf = (res: ReadResponse): string => (res.json as { error_description: string }).error_description;
  const token = (extra: Record<string, unknown> = {}) => mint(key, claims(jwks.issuer, extra));
  const durations = (events: Recorded[]) => events.map((e) => {
    if ('durationMs' in e.payload) {
      expect(e.payload.durationMs).to.be.a('number').and.at.least(0);
      return { ...e, payload: { ...e.payload, durationMs: 0 } };
    }
    return e;
  });

  it('reports the key fetch, then each accepted token with its client, scopes, method, path and whether it was cached', async () => {
    const t = token();
    expect((await request(`${app.url}/api/reports?secret=1`, { headers: bearer(t) })).status).to.equal(200);
    expect((await request(`${app.url}/api/reports`, { headers: bearer(t) })).status).to.equal(200);
    expect(durations(seen)).to.deep.equal([
      { name: 'keys.fetched', payload: { jwksUri: jwks.jwksUri, kids: [key.kid], durationMs: 0 } },
      { name: 'token.accepted', payload: { clientId: 'svc-reports', scopes: ['reports:read', 'reports:list'], cached: false, method: 'GET', path: '/api/reports' } },
      { name: 'token.accepted', payload: { clientId: 'svc-reports', scopes: ['reports:read', 'reports:list'], cached: true, method: 'GET', path: '/api/reports' } },
    ]);
    expect(JSON.stringify(seen)).not.to.include(t);
  });

  it('reports each refusal with its reason and status, never the token', async () => {
    const expired = token({ exp: Math.floor(Date.now() / 1000) - 600 });
    const answers = [
      await request(`${app.url}/api/reports`),
      await request(`${app.url}/api/reports`, { headers: { authorization: 'Bearer a b' } }),
      await request(`${app.url}/api/reports`, { headers: bearer(expired) }),
      await request(`${app.url}/api/reports`, { method: 'POST', headers: bearer(token()) }),
    ];
    expect(answers.map((r) => r.status)).to.deep.equal([401, 400, 401, 403]);
    const refusals = seen.filter((e) => e.name === 'token.refused').map((e) => e.payload);
    expect(refusals).to.deep.equal([
      { reason: 'no_token', status: 401, description: 'an access token is required', clientId: undefined, requiredScopes: undefined, method: 'GET', path: '/api/reports' },
      { reason: 'invalid_request', status: 400, description: descriptionOf(answers[1]!), clientId: undefined, requiredScopes: undefined, method: 'GET', path: '/api/reports' },
      { reason: 'invalid_token', status: 401, description: descriptionOf(answers[2]!), clientId: undefined, requiredScopes: undefined, method: 'GET', path: '/api/reports' },
      { reason: 'insufficient_scope', status: 403, description: 'the token lacks a required scope', clientId: 'svc-reports', requiredScopes: ['reports:write'], method: 'POST', path: '/api/reports' },
    ]);
    expect(JSON.stringify(seen)).not.to.include(expired);
  });

  it('reports a JWKS outage as keys.unavailable and the refusal as unavailable (503)', async () => {
    jwks.mode = 'fail';
    const res = await request(`${app.url}/api/reports`, { headers: bearer(token()) });
    expect(res.status).to.equal(503);
    const names = seen.map((e) => e.name);
    expect(names).to.deep.equal(['keys.unavailable', 'token.refused']);
    const [outage, refused] = seen;
    expect(outage!.name === 'keys.unavailable' && outage!.payload.url).to.equal(jwks.jwksUri);
    expect(outage!.name === 'keys.unavailable' && outage!.payload.error).to.be.instanceOf(Error);
    expect(refused!.payload).to.deep.include({ reason: 'unavailable', status: 503, description: 'the signing keys are unavailable' });
  });

  it('reports verify() calls outside Express without method or path', async () => {
    await rs.verify(token());
    await rejectionOf(rs.verify('not-a-jwt'), InvalidTokenError);
    const calls = seen.flatMap((e) => (e.name === 'token.accepted' || e.name === 'token.refused'
      ? [{ name: e.name, method: e.payload.method, path: e.payload.path }] : []));
    expect(calls).to.deep.equal([
      { name: 'token.accepted', method: undefined, path: undefined },
      { name: 'token.refused', method: undefined, path: undefined },
    ]);
    jwks.mode = 'fail';
    await rs.refreshKeys().catch((err: unknown) => expect(err).to.be.instanceOf(TemporarilyUnavailableError));
    expect(seen.at(-1)!.name).to.equal('keys.unavailable');
  });

  it('keeps answering when a listener throws, and still calls the other listeners and once listeners once', async () => {
    const calls: string[] = [];
    rs.events.on('token.accepted', () => { throw new Error('listener bug'); });
    rs.events.on('token.accepted', () => { calls.push('second'); });
    rs.events.once('token.accepted', () => { calls.push('once'); });
    const t = token();
    for (let i = 0; i < 2; i++) {
      const res = await request(`${app.url}/api/reports`, { headers: bearer(t) });
      expect(res.status).to.equal(200);
    }
    expect(calls).to.deep.equal(['second', 'once', 'second']);
  });
});
