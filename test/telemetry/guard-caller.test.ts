import { SpanStatusCode } from '@opentelemetry/api';
import { expect } from 'chai';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createResourceServer, tokenClient, TokenRequestError } from '../../lib/index.js';
import { request, type Listening } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { rejectionOf } from '../support/rejection.js';
import { installTelemetry, type TestTelemetry } from '../support/telemetry.js';
import {
  AUDIENCE, bearer, claims, makeKey, mint, startApp, startJwksServer, type JwksServer, type TestKey,
} from '../express/resource-server-fixtures.js';

// Traces and metrics read with the real OpenTelemetry SDK (in-memory exporter, on-demand reader),
// the package itself depending only on @opentelemetry/api.

const byName = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter((s) => s.name === name);
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

describe('OpenTelemetry: the guard', () => {
  let telemetry: TestTelemetry;
  let jwks: JwksServer;
  let key: TestKey;
  let app: Listening;

  beforeEach(async () => {
    telemetry = installTelemetry();
    key = makeKey('ES256');
    jwks = await startJwksServer([key]);
    const rs = createResourceServer({ issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, jwksCooldown: 0 });
    app = await startApp((a, echo) => {
      a.get('/reports', rs.requireScope('reports:read'), echo);
      a.post('/reports', rs.requireScope('reports:write'), echo);
    });
  });
  afterEach(async () => {
    await app.close();
    await jwks.close();
    await telemetry.uninstall();
  });

  const token = () => mint(key, claims(jwks.issuer));

  it('traces a check with the key lookup and the JWKS fetch nested under it, and never records the token', async () => {
    const t = token();
    expect((await request(`${app.url}/reports`, { headers: bearer(t) })).status).to.equal(200);
    expect((await request(`${app.url}/reports`, { headers: bearer(t) })).status).to.equal(200);
    const spans = telemetry.spans();
    const checks = byName(spans, 'm2m.guard.check');
    expect(checks.map((s) => s.attributes)).to.deep.equal([
      { 'http.request.method': 'GET', 'm2m.outcome': 'accepted', 'm2m.token.cached': false, 'm2m.client_id': 'svc-reports' },
      { 'http.request.method': 'GET', 'm2m.outcome': 'accepted', 'm2m.token.cached': true, 'm2m.client_id': 'svc-reports' },
    ]);
    const [lookup] = byName(spans, 'm2m.guard.key_lookup');
    const [fetch] = byName(spans, 'm2m.jwks.fetch');
    expect(lookup!.attributes).to.deep.equal({ 'm2m.kid': key.kid });
    expect(parentOf(lookup!)).to.equal(checks[0]!.spanContext().spanId);
    expect(fetch!.attributes).to.deep.equal({ 'url.full': jwks.jwksUri });
    expect(parentOf(fetch!)).to.equal(lookup!.spanContext().spanId);
    expect(byName(spans, 'm2m.guard.key_lookup')).to.have.length(1);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.to.include(t.split('.')[2]);
  });

  it('counts decisions by outcome, cache hits, verifications and JWKS fetches', async () => {
    const t = token();
    await request(`${app.url}/reports`, { headers: bearer(t) });
    await request(`${app.url}/reports`, { headers: bearer(t) });
    await request(`${app.url}/reports`);
    await request(`${app.url}/reports`, { method: 'POST', headers: bearer(t) });
    await request(`${app.url}/reports`, { headers: bearer('x.y.z') });
    expect(await telemetry.points('m2m.guard.decisions')).to.have.deep.members([
      { attributes: { 'm2m.outcome': 'accepted' }, value: 2 },
      { attributes: { 'm2m.outcome': 'no_token' }, value: 1 },
      { attributes: { 'm2m.outcome': 'insufficient_scope' }, value: 1 },
      { attributes: { 'm2m.outcome': 'invalid_token' }, value: 1 },
    ]);
    // The second GET and the POST were answered from the cache.
    expect(await telemetry.points('m2m.guard.token_cache.hits')).to.deep.equal([{ attributes: {}, value: 2 }]);
    const [verifications] = await telemetry.points('m2m.guard.verification.duration');
    expect((verifications!.value as { count: number }).count).to.equal(2);
    expect(await telemetry.points('m2m.jwks.fetches')).to.deep.equal([{ attributes: { 'm2m.outcome': 'success' }, value: 1 }]);
  });

  it('marks a refused check and a failed JWKS fetch as errors with error.type', async () => {
    jwks.mode = 'fail';
    expect((await request(`${app.url}/reports`, { headers: bearer(token()) })).status).to.equal(503);
    const [check] = byName(telemetry.spans(), 'm2m.guard.check');
    const [fetch] = byName(telemetry.spans(), 'm2m.jwks.fetch');
    expect(check!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(check!.attributes).to.deep.equal({ 'http.request.method': 'GET', 'm2m.outcome': 'unavailable', 'error.type': 'unavailable' });
    expect(fetch!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(fetch!.attributes['error.type']).to.be.a('string');
    expect(await telemetry.points('m2m.jwks.fetches')).to.deep.equal([
      { attributes: { 'm2m.outcome': 'failure', 'error.type': fetch!.attributes['error.type'] }, value: 1 },
    ]);
  });
});

describe('OpenTelemetry: the caller', () => {
  let telemetry: TestTelemetry;
  let issuer: TestIssuer;

  beforeEach(async () => {
    telemetry = installTelemetry();
    issuer = await startIssuer();
  });
  afterEach(async () => {
    await issuer.close();
    await telemetry.uninstall();
  });

  it('traces a token fetch and counts it, without the secret or the token', async () => {
    const { client, clientSecret } = await issuer.store.clients.create({ name: 'job', scopes: ['reports:read'], audiences: [AUDIENCE] });
    const caller = tokenClient({ tokenUrl: issuer.tokenUrl, clientId: client.clientId, clientSecret: clientSecret!, scope: 'reports:read' });
    const token = await caller.getToken();
    await caller.getToken();
    const [span] = byName(telemetry.spans(), 'm2m.caller.token_fetch');
    expect(span!.attributes).to.deep.equal({ 'm2m.client_id': client.clientId, 'url.full': issuer.tokenUrl, 'm2m.attempts': 1 });
    expect(span!.status.code).to.equal(SpanStatusCode.UNSET);
    expect(JSON.stringify(telemetry.spans().map((s) => s.attributes))).not.to.include(clientSecret).and.not.to.include(String(token));
    expect(await telemetry.points('m2m.caller.token_fetches')).to.deep.equal([
      { attributes: { 'm2m.source': 'endpoint', 'm2m.outcome': 'success' }, value: 1 },
    ]);
    const [duration] = await telemetry.points('m2m.caller.token_fetch.duration');
    expect(duration!.attributes).to.deep.equal({ 'm2m.outcome': 'success' });
    expect((duration!.value as { count: number }).count).to.equal(1);
  });

  it('counts retries and a failed fetch by reason', async () => {
    const caller = tokenClient({
      tokenUrl: issuer.tokenUrl, clientId: 'nobody', clientSecret: 'wrong-secret-wrong-secret', retry: { retries: 2, minDelay: 1, maxDelay: 5 },
    });
    const err = await rejectionOf(caller.getToken(), TokenRequestError);
    expect([err.reason, err.error]).to.deep.equal(['oauth_error', 'invalid_client']);
    const [span] = byName(telemetry.spans(), 'm2m.caller.token_fetch');
    expect(span!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(span!.attributes['error.type']).to.equal('invalid_client');
    expect(await telemetry.points('m2m.caller.token_fetches')).to.deep.equal([
      { attributes: { 'm2m.source': 'endpoint', 'm2m.outcome': 'failure', 'error.type': 'invalid_client' }, value: 1 },
    ]);
    expect(await telemetry.points('m2m.caller.retries')).to.deep.equal([]);
  });

  it('counts each retry of a failure that may pass by itself (no server listening)', async () => {
    const caller = tokenClient({
      tokenUrl: 'http://127.0.0.1:1/token', clientId: 'job', clientSecret: 'secret-secret-secret-secret', retry: { retries: 2, minDelay: 1, maxDelay: 5 },
    });
    const err = await rejectionOf(caller.getToken(), TokenRequestError);
    expect(err.reason).to.equal('network_error');
    expect(await telemetry.points('m2m.caller.retries')).to.deep.equal([{ attributes: { 'error.type': 'network_error' }, value: 2 }]);
    const [span] = byName(telemetry.spans(), 'm2m.caller.token_fetch');
    expect(span!.attributes).to.deep.equal({ 'm2m.client_id': 'job', 'url.full': 'http://127.0.0.1:1/token', 'm2m.attempts': 3, 'error.type': 'network_error' });
  });
});
