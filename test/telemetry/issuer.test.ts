import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { AuthorizationServerOptions } from '../../lib/index.js';
import { generateClientSecret } from '../../lib/core/secrets.js';
import { basic, postForm, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { installTelemetry, type Point, type TestTelemetry } from '../support/telemetry.js';
import { assertion, postAssertion } from '../express/private-key-jwt-fixtures.js';
import { makeKey } from '../express/resource-server-fixtures.js';

// The issuer's traces and metrics, read with the real OpenTelemetry SDK over HTTP against a real
// issuer (SQLite), the package itself depending only on @opentelemetry/api.

const AUDIENCE = 'https://reports.internal';
const REGISTRATION = { name: 'job', scopes: ['reports:read'], audiences: [AUDIENCE] };

const byName = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter((s) => s.name === name);
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const seconds = ([s, ns]: [number, number]): number => s + ns / 1e9;

/** The one span named `name`, failing when there are none or several. */
function only(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = byName(spans, name);
  expect(found, name).to.have.length(1);
  return found[0] as ReadableSpan;
}

/** A histogram's points as attributes and count; the sums are checked apart (they are times). */
const counts = (points: Point[]) => points.map((p) => ({ attributes: p.attributes, count: (p.value as { count: number }).count }));

const accessTokenOf = (res: ReadResponse): string => (res.json as { access_token: string }).access_token;

/** A secret other than `secret`, well formed (checksum included) so that the store looks it up; a malformed one is refused before. */
const wrong = (secret: string): string => {
  const other = generateClientSecret();
  return other === secret ? wrong(secret) : other;
};

describe('OpenTelemetry: the issuer', () => {
  let telemetry: TestTelemetry;
  let issuer: TestIssuer | undefined;

  async function start(options: Partial<Omit<AuthorizationServerOptions, 'store' | 'issuer'>> = {}): Promise<TestIssuer> {
    issuer = await startIssuer(options);
    await issuer.as.ready();
    return issuer;
  }

  const clientCredentials = (clientId: string, secret: string, form: Record<string, string> = {}) =>
    postForm(issuer!.tokenUrl, { grant_type: 'client_credentials', ...form }, { authorization: basic(clientId, secret) });

  beforeEach(() => { telemetry = installTelemetry(); });
  afterEach(async () => {
    await issuer?.close();
    issuer = undefined;
    await telemetry.uninstall();
  });

  it('traces an issued token: a server span with the authentication and the signing nested under it', async () => {
    const { store } = await start();
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    const res = await clientCredentials(client.clientId, clientSecret!);
    expect(res.status).to.equal(200);
    const { kid } = jwt.decode(accessTokenOf(res), { complete: true })!.header;

    const spans = telemetry.spans();
    expect(spans.map((s) => s.name)).to.have.members(['m2m.issuer.token_request', 'm2m.issuer.client_authentication', 'm2m.issuer.sign']);
    const request = only(spans, 'm2m.issuer.token_request');
    const authentication = only(spans, 'm2m.issuer.client_authentication');
    const sign = only(spans, 'm2m.issuer.sign');
    expect([request.kind, authentication.kind, sign.kind]).to.deep.equal([SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.INTERNAL]);
    expect(parentOf(request)).to.equal(undefined);
    expect(parentOf(authentication)).to.equal(request.spanContext().spanId);
    expect(parentOf(sign)).to.equal(request.spanContext().spanId);
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).to.equal(1);
    expect(request.attributes).to.deep.equal({
      'm2m.grant_type': 'client_credentials', 'm2m.client_id': client.clientId, 'm2m.outcome': 'issued', 'http.response.status_code': 200,
    });
    expect(authentication.attributes).to.deep.equal({ 'm2m.auth_method': 'client_secret_basic', 'm2m.outcome': 'authenticated' });
    expect(sign.attributes).to.deep.equal({ 'm2m.kid': kid, 'm2m.alg': 'ES256' });
    expect(spans.map((s) => s.status.code)).to.deep.equal([SpanStatusCode.UNSET, SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
    expect(spans.flatMap((s) => s.events)).to.deep.equal([]);
    // The steps fall within the request, one after the other. The SDK takes a span's start from
    // Date.now() (whole milliseconds) and its end from the performance clock: 1 ms of leeway.
    const within = (earlier: [number, number], later: [number, number]) => expect(seconds(later) - seconds(earlier)).to.be.greaterThan(-0.001);
    for (const step of [authentication, sign]) {
      within(request.startTime, step.startTime);
      within(step.endTime, request.endTime);
    }
    within(authentication.endTime, sign.startTime);
  });

  it('counts an issued token and times it', async () => {
    const { store } = await start();
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    const before = performance.now();
    expect((await clientCredentials(client.clientId, clientSecret!)).status).to.equal(200);
    expect((await clientCredentials(client.clientId, clientSecret!)).status).to.equal(200);
    const elapsed = (performance.now() - before) / 1000;
    expect(await telemetry.points('m2m.issuer.token_requests')).to.deep.equal([{ attributes: { 'm2m.outcome': 'issued' }, value: 2 }]);
    const durations = await telemetry.points('m2m.issuer.token_request.duration');
    expect(counts(durations)).to.deep.equal([{ attributes: { 'm2m.outcome': 'issued' }, count: 2 }]);
    const { sum } = durations[0]!.value as { sum: number };
    expect(sum).to.be.greaterThan(0).and.at.most(elapsed);
    expect(await telemetry.points('m2m.issuer.client_authentication.failures')).to.deep.equal([]);
    expect(await telemetry.points('m2m.issuer.rate_limited')).to.deep.equal([]);
  });

  it('marks a wrong secret as refused, not as an error, and counts the failure by reason', async () => {
    const { store } = await start();
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    expect((await clientCredentials(client.clientId, wrong(clientSecret!))).status).to.equal(401);
    expect((await clientCredentials('nobody', clientSecret!)).status).to.equal(401);
    expect((await clientCredentials(client.clientId, 'not-a-secret')).status).to.equal(401);

    const spans = telemetry.spans();
    const requests = byName(spans, 'm2m.issuer.token_request');
    const authentications = byName(spans, 'm2m.issuer.client_authentication');
    const refused = { 'm2m.grant_type': 'client_credentials', 'm2m.outcome': 'refused', 'error.type': 'invalid_client', 'http.response.status_code': 401 };
    expect(requests.map((s) => s.attributes)).to.deep.equal([refused, refused, refused]);
    expect(authentications.map((s) => s.attributes)).to.deep.equal([
      { 'm2m.auth_method': 'client_secret_basic', 'm2m.outcome': 'refused', 'm2m.reason': 'invalid_secret' },
      { 'm2m.auth_method': 'client_secret_basic', 'm2m.outcome': 'refused', 'm2m.reason': 'unknown_client' },
      { 'm2m.auth_method': 'client_secret_basic', 'm2m.outcome': 'refused', 'm2m.reason': 'malformed_credentials' },
    ]);
    expect(authentications.map(parentOf)).to.deep.equal(requests.map((s) => s.spanContext().spanId));
    expect(spans.map((s) => s.status.code)).to.deep.equal(spans.map(() => SpanStatusCode.UNSET));
    expect(byName(spans, 'm2m.issuer.sign')).to.deep.equal([]);

    expect(await telemetry.points('m2m.issuer.token_requests')).to.deep.equal([
      { attributes: { 'm2m.outcome': 'refused', 'error.type': 'invalid_client' }, value: 3 },
    ]);
    expect(await telemetry.points('m2m.issuer.client_authentication.failures')).to.have.deep.members([
      { attributes: { 'm2m.reason': 'invalid_secret', 'm2m.auth_method': 'client_secret_basic' }, value: 1 },
      { attributes: { 'm2m.reason': 'unknown_client', 'm2m.auth_method': 'client_secret_basic' }, value: 1 },
      { attributes: { 'm2m.reason': 'malformed_credentials', 'm2m.auth_method': 'client_secret_basic' }, value: 1 },
    ]);
    expect(counts(await telemetry.points('m2m.issuer.token_request.duration'))).to.deep.equal([{ attributes: { 'm2m.outcome': 'refused' }, count: 3 }]);
  });

  it('counts a request without credentials by reason, without a method', async () => {
    await start();
    const res = await postForm(issuer!.tokenUrl, { grant_type: 'client_credentials' });
    expect(res.status).to.equal(401);
    expect(only(telemetry.spans(), 'm2m.issuer.client_authentication').attributes).to.deep.equal({ 'm2m.outcome': 'refused', 'm2m.reason': 'no_credentials' });
    expect(await telemetry.points('m2m.issuer.client_authentication.failures')).to.deep.equal([
      { attributes: { 'm2m.reason': 'no_credentials' }, value: 1 },
    ]);
  });

  it('records the grant type of a refused grant, and no grant type that is not a plausible one', async () => {
    const { store } = await start();
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    const send = (grantType: string) =>
      postForm(issuer!.tokenUrl, { grant_type: grantType }, { authorization: basic(client.clientId, clientSecret!) });
    expect((await send('password')).status).to.equal(400);
    expect((await send(`x y ${'z'.repeat(100)}`)).status).to.equal(400);
    const unsupported = { 'm2m.outcome': 'refused', 'error.type': 'unsupported_grant_type', 'http.response.status_code': 400 };
    expect(byName(telemetry.spans(), 'm2m.issuer.token_request').map((s) => [s.attributes, s.status.code])).to.deep.equal([
      [{ 'm2m.grant_type': 'password', ...unsupported }, SpanStatusCode.UNSET],
      [unsupported, SpanStatusCode.UNSET],
    ]);
    // Refused before any authentication.
    expect(telemetry.spans().map((s) => s.name)).to.deep.equal(['m2m.issuer.token_request', 'm2m.issuer.token_request']);
    expect(await telemetry.points('m2m.issuer.token_requests')).to.deep.equal([
      { attributes: { 'm2m.outcome': 'refused', 'error.type': 'unsupported_grant_type' }, value: 2 },
    ]);
  });

  it('counts a rate-limited request, and the failure that led to it', async () => {
    const { store } = await start({ rateLimit: { perClient: { points: 3, duration: 60 }, perAddress: false } });
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await clientCredentials(client.clientId, wrong(clientSecret!))).status);
    expect(statuses).to.deep.equal([401, 401, 401, 429]);

    expect(await telemetry.points('m2m.issuer.rate_limited')).to.deep.equal([{ attributes: {}, value: 1 }]);
    expect(await telemetry.points('m2m.issuer.token_requests')).to.have.deep.members([
      { attributes: { 'm2m.outcome': 'refused', 'error.type': 'invalid_client' }, value: 3 },
      { attributes: { 'm2m.outcome': 'refused', 'error.type': 'temporarily_unavailable' }, value: 1 },
    ]);
    expect(await telemetry.points('m2m.issuer.client_authentication.failures')).to.deep.equal([
      { attributes: { 'm2m.reason': 'invalid_secret', 'm2m.auth_method': 'client_secret_basic' }, value: 4 },
    ]);
    const last = byName(telemetry.spans(), 'm2m.issuer.token_request')[3]!;
    expect([last.attributes, last.status.code]).to.deep.equal([{
      'm2m.grant_type': 'client_credentials', 'm2m.outcome': 'refused', 'error.type': 'temporarily_unavailable', 'http.response.status_code': 429,
    }, SpanStatusCode.UNSET]);
  });

  it('counts a request refused for its address before any authentication, with no authentication span', async () => {
    const { store } = await start({ rateLimit: { perClient: false, perAddress: { points: 1, duration: 60 } } });
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    const first = await clientCredentials(client.clientId, wrong(clientSecret!));
    // The address's budget is spent: even the right secret is refused, before authentication.
    const second = await clientCredentials(client.clientId, clientSecret!);
    expect([first.status, second.status]).to.deep.equal([401, 429]);
    expect(await telemetry.points('m2m.issuer.rate_limited')).to.deep.equal([{ attributes: {}, value: 1 }]);
    const [, blocked] = byName(telemetry.spans(), 'm2m.issuer.token_request');
    expect(blocked!.attributes).to.deep.equal({
      'm2m.grant_type': 'client_credentials', 'm2m.outcome': 'refused', 'error.type': 'temporarily_unavailable', 'http.response.status_code': 429,
    });
    expect(byName(telemetry.spans(), 'm2m.issuer.client_authentication')).to.have.length(1);
  });

  it('carries the private_key_jwt method and never the assertion', async () => {
    const { store, tokenUrl } = await start({ rateLimit: false });
    const key = makeKey('ES256', { kid: 'archiver-1' });
    await store.clients.create({ ...REGISTRATION, clientId: 'archiver', jwks: { keys: [key.jwk] } });
    const signed = assertion(key, 'archiver', tokenUrl);
    const res = await postAssertion(tokenUrl, signed);
    expect(res.status).to.equal(200);
    expect(only(telemetry.spans(), 'm2m.issuer.client_authentication').attributes).to.deep.equal({
      'm2m.auth_method': 'private_key_jwt', 'm2m.outcome': 'authenticated',
    });
    expect(only(telemetry.spans(), 'm2m.issuer.token_request').attributes).to.deep.equal({
      'm2m.grant_type': 'client_credentials', 'm2m.client_id': 'archiver', 'm2m.outcome': 'issued', 'http.response.status_code': 200,
    });
    // A replayed assertion: refused, counted with the method.
    expect((await postAssertion(tokenUrl, signed)).status).to.equal(401);
    expect(await telemetry.points('m2m.issuer.client_authentication.failures')).to.deep.equal([
      { attributes: { 'm2m.reason': 'replayed_assertion', 'm2m.auth_method': 'private_key_jwt' }, value: 1 },
    ]);
    const recorded = JSON.stringify(telemetry.spans().map((s) => s.attributes));
    expect(recorded).not.to.include(signed.split('.')[2]).and.not.to.include(accessTokenOf(res).split('.')[2]);
  });

  it('marks a store failure as an error: the request as failed with 503, the authentication with the store\'s error', async () => {
    const { store, db } = await start();
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    await db.knex.schema.dropTable(`${db.prefix}client_secrets`);
    expect((await clientCredentials(client.clientId, clientSecret!)).status).to.equal(503);

    const request = only(telemetry.spans(), 'm2m.issuer.token_request');
    const authentication = only(telemetry.spans(), 'm2m.issuer.client_authentication');
    expect([request.status.code, request.attributes]).to.deep.equal([SpanStatusCode.ERROR, {
      'm2m.grant_type': 'client_credentials', 'm2m.outcome': 'failed', 'error.type': 'temporarily_unavailable', 'http.response.status_code': 503,
    }]);
    expect([authentication.status.code, authentication.attributes]).to.deep.equal([SpanStatusCode.ERROR, {
      'm2m.auth_method': 'client_secret_basic', 'error.type': 'SQLITE_ERROR',
    }]);
    expect(await telemetry.points('m2m.issuer.token_requests')).to.deep.equal([
      { attributes: { 'm2m.outcome': 'failed', 'error.type': 'temporarily_unavailable' }, value: 1 },
    ]);
    expect(counts(await telemetry.points('m2m.issuer.token_request.duration'))).to.deep.equal([{ attributes: { 'm2m.outcome': 'failed' }, count: 1 }]);
    expect(await telemetry.points('m2m.issuer.client_authentication.failures')).to.deep.equal([]);
  });

  it('marks a claims hook that throws as an error: 500 server_error', async () => {
    const { store } = await start({ claims: () => { throw new Error('the hook broke'); } });
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    expect((await clientCredentials(client.clientId, clientSecret!)).status).to.equal(500);
    const request = only(telemetry.spans(), 'm2m.issuer.token_request');
    expect([request.status.code, request.attributes]).to.deep.equal([SpanStatusCode.ERROR, {
      'm2m.grant_type': 'client_credentials', 'm2m.client_id': client.clientId, 'm2m.outcome': 'failed', 'error.type': 'server_error',
      'http.response.status_code': 500,
    }]);
    expect(only(telemetry.spans(), 'm2m.issuer.client_authentication').status.code).to.equal(SpanStatusCode.UNSET);
    expect(await telemetry.points('m2m.issuer.token_requests')).to.deep.equal([
      { attributes: { 'm2m.outcome': 'failed', 'error.type': 'server_error' }, value: 1 },
    ]);
  });

  it('records no secret and no access token in any span or metric', async () => {
    const { store } = await start({ rateLimit: false });
    const { client, clientSecret } = await store.clients.create(REGISTRATION);
    const secret = clientSecret!;
    const basicToken = await clientCredentials(client.clientId, secret);
    const postToken = await postForm(issuer!.tokenUrl, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: secret });
    expect((await clientCredentials(client.clientId, wrong(secret))).status).to.equal(401);
    expect([basicToken.status, postToken.status]).to.deep.equal([200, 200]);
    expect(byName(telemetry.spans(), 'm2m.issuer.client_authentication').map((s) => s.attributes['m2m.auth_method']))
      .to.deep.equal(['client_secret_basic', 'client_secret_post', 'client_secret_basic']);

    const recorded = JSON.stringify({
      attributes: telemetry.spans().map((s) => s.attributes),
      events: telemetry.spans().map((s) => s.events),
      metrics: await Promise.all([
        'm2m.issuer.token_requests', 'm2m.issuer.client_authentication.failures', 'm2m.issuer.token_request.duration',
      ].map((name) => telemetry.points(name))),
    });
    for (const value of [secret, accessTokenOf(basicToken), accessTokenOf(postToken)]) {
      expect(recorded).not.to.include(value);
      // Nor any part of it: a token's signature, a secret without its prefix.
      expect(recorded).not.to.include(value.slice(-16));
    }
  });
});
