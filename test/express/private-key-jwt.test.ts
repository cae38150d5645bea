import { expect } from 'chai';
import express from 'express';
import jwt from 'jsonwebtoken';
import { authorizationServer, createKnexStore, InvalidOptionError, type IssuerStore } from '../../lib/index.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from '../support/db.js';
import { basic, listen, postForm, request, type Listening } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import {
  assertion, collect, expectInvalidClient, JSON_NO_STORE, postAssertion, stableHeaders, startClientJwks, type ClientJwksServer,
} from './private-key-jwt-fixtures.js';
import { makeKey } from './resource-server-fixtures.js';

const AUDIENCE = 'https://reports.internal';
const REGISTRATION = { name: 'archiver', scopes: ['reports:read'], audiences: [AUDIENCE] };

/** The claims of an issued access token, unverified (the token's signature is the guard's test). */
const claimsOf = (res: { json: unknown }): Record<string, unknown> =>
  jwt.decode((res.json as { access_token: string }).access_token) as Record<string, unknown>;

describe('authorizationServer() with private_key_jwt (RFC 7523 §2.2)', () => {
  let issuer: TestIssuer;
  const es = makeKey('ES256', { kid: 'es-1' });
  const rs = makeKey('RS256', { kid: 'rs-1', publishAlg: false });
  const ps = makeKey('PS256', { kid: 'ps-1', fresh: true });

  before(async () => {
    issuer = await startIssuer({ rateLimit: false });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'archiver', jwks: { keys: [es.jwk, rs.jwk, ps.jwk] } });
    await issuer.as.ready();
  });
  after(() => issuer.close());

  for (const key of [es, rs, ps]) {
    it(`issues a token for an ${key.alg} assertion addressed to the token endpoint`, async () => {
      const issued = collect(issuer, 'token.issued');
      const res = await postAssertion(issuer.tokenUrl, assertion(key, 'archiver', issuer.tokenUrl));
      expect([res.status, stableHeaders(res)]).to.deep.equal([200, JSON_NO_STORE]);
      expect(res.json).to.deep.equal({ access_token: (res.json as { access_token: string }).access_token, token_type: 'Bearer', expires_in: 300, scope: 'reports:read' });
      expect([claimsOf(res).sub, claimsOf(res).client_id, claimsOf(res).aud]).to.deep.equal(['archiver', 'archiver', AUDIENCE]);
      expect(issued.map((e) => [e.clientId, e.method])).to.deep.equal([['archiver', 'private_key_jwt']]);
    });
  }

  it('accepts the issuer identifier as aud, alone or in an array, and a client_id equal to sub', async () => {
    for (const aud of [issuer.issuer, ['https://elsewhere.example', issuer.issuer]]) {
      const res = await postAssertion(issuer.tokenUrl, assertion(es, 'archiver', aud), { client_id: 'archiver' });
      expect(res.status, JSON.stringify(aud)).to.equal(200);
    }
  });

  it('takes the only key of a client when the assertion names none', async () => {
    const only = makeKey('ES256', { kid: 'only', fresh: true });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'single', jwks: { keys: [only.jwk] } });
    const res = await postAssertion(issuer.tokenUrl, assertion(only, 'single', issuer.tokenUrl, {}, { kid: undefined }));
    expect(res.status).to.equal(200);
  });

  it('rotates keys without downtime: both keys work while both are registered, then only the new one', async () => {
    const old = makeKey('ES256', { kid: 'old', fresh: true });
    const next = makeKey('ES256', { kid: 'next', fresh: true });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'rotating', jwks: { keys: [old.jwk] } });
    await issuer.store.clients.update('rotating', { jwks: { keys: [old.jwk, next.jwk] } });
    const during = await Promise.all([old, next].map((key) => postAssertion(issuer.tokenUrl, assertion(key, 'rotating', issuer.tokenUrl))));
    expect(during.map((res) => res.status)).to.deep.equal([200, 200]);
    await issuer.store.clients.update('rotating', { jwks: { keys: [next.jwk] } });
    const failed = collect(issuer, 'client.authentication_failed');
    expectInvalidClient(await postAssertion(issuer.tokenUrl, assertion(old, 'rotating', issuer.tokenUrl)));
    expect((await postAssertion(issuer.tokenUrl, assertion(next, 'rotating', issuer.tokenUrl))).status).to.equal(200);
    expect(failed).to.deep.equal([{ clientId: 'rotating', reason: 'unknown_key', method: 'private_key_jwt', address: '127.0.0.1',
      detail: 'no key of the client matches the assertion kid' }]);
  });

  it('refuses an assertion used before on the same instance, which issued one token for it', async () => {
    const failed = collect(issuer, 'client.authentication_failed');
    const once = assertion(es, 'archiver', issuer.tokenUrl);
    const [first, second] = [await postAssertion(issuer.tokenUrl, once), await postAssertion(issuer.tokenUrl, once)];
    expect(first.status).to.equal(200);
    expectInvalidClient(second);
    expect(failed).to.deep.equal([{ clientId: 'archiver', reason: 'replayed_assertion', method: 'private_key_jwt', address: '127.0.0.1',
      detail: 'the client assertion jti was used before' }]);
  });

  it('refuses an assertion of a disabled client with the same answer', async () => {
    const off = makeKey('ES256', { kid: 'off', fresh: true });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'disabled', enabled: false, jwks: { keys: [off.jwk] } });
    const failed = collect(issuer, 'client.authentication_failed');
    expectInvalidClient(await postAssertion(issuer.tokenUrl, assertion(off, 'disabled', issuer.tokenUrl)));
    expect(failed.map((e) => [e.reason, e.detail])).to.deep.equal([['client_disabled', 'the client is disabled']]);
  });

  describe('each client authenticates with its registered method only', () => {
    let basicOnly: { clientId: string; clientSecret: string };
    let postOnly: { clientId: string; clientSecret: string };
    let either: { clientId: string; clientSecret: string };

    before(async () => {
      basicOnly = await issuer.store.clients.create({ ...REGISTRATION, tokenEndpointAuthMethod: 'client_secret_basic' });
      postOnly = await issuer.store.clients.create({ ...REGISTRATION, tokenEndpointAuthMethod: 'client_secret_post' });
      either = await issuer.store.clients.create(REGISTRATION);
    });

    const viaBasic = (c: { clientId: string; clientSecret: string }) =>
      postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(c.clientId, c.clientSecret) });
    const viaPost = (c: { clientId: string; clientSecret: string }) =>
      postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });

    it('lets a client_secret_basic client use the Authorization header, and refuses its secret in the body', async () => {
      const failed = collect(issuer, 'client.authentication_failed');
      expect((await viaBasic(basicOnly)).status).to.equal(200);
      expectInvalidClient(await viaPost(basicOnly));
      expect(failed).to.deep.equal([{ clientId: basicOnly.clientId, reason: 'method_not_allowed', method: 'client_secret_post', address: '127.0.0.1',
        detail: 'the client authenticates with client_secret_basic, not client_secret_post' }]);
    });

    it('lets a client_secret_post client use the body, and refuses its secret in the header with a Basic challenge', async () => {
      expect((await viaPost(postOnly)).status).to.equal(200);
      const res = await viaBasic(postOnly);
      expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401,
        { 'www-authenticate': `Basic realm="${new URL(issuer.url).host}"`, ...JSON_NO_STORE },
        { error: 'invalid_client', error_description: 'client authentication failed' }]);
    });

    it('lets a client registered without a method (as every client from before methods) use either secret method', async () => {
      expect([(await viaBasic(either)).status, (await viaPost(either)).status]).to.deep.equal([200, 200]);
    });

    it('refuses an assertion for a client that authenticates with a secret, before looking for any key', async () => {
      const failed = collect(issuer, 'client.authentication_failed');
      expectInvalidClient(await postAssertion(issuer.tokenUrl, assertion(es, either.clientId, issuer.tokenUrl)));
      expect(failed.map((e) => [e.reason, e.detail])).to.deep.equal([['method_not_allowed', 'the client authenticates with a secret, not private_key_jwt']]);
    });

    it('refuses a private_key_jwt client that sends a secret', async () => {
      const failed = collect(issuer, 'client.authentication_failed');
      expectInvalidClient(await viaPost({ clientId: 'archiver', clientSecret: either.clientSecret }));
      expect(failed.map((e) => e.reason)).to.deep.equal(['invalid_secret']);
    });
  });
});

describe('authorizationServer() with private_key_jwt clients publishing a jwks_uri', () => {
  let issuer: TestIssuer;
  let jwks: ClientJwksServer;
  const first = makeKey('ES256', { kid: 'uri-1', fresh: true });
  const second = makeKey('RS256', { kid: 'uri-2', fresh: true });

  before(async () => {
    jwks = await startClientJwks([first.jwk]);
    issuer = await startIssuer({ rateLimit: false, clientAssertion: { jwksCooldown: 3600 } });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'remote', jwksUri: jwks.url });
  });
  after(async () => {
    await issuer.close();
    await jwks.server.close();
  });

  it('fetches the client\'s keys once and issues tokens with them', async () => {
    for (let i = 0; i < 3; i++) expect((await postAssertion(issuer.tokenUrl, assertion(first, 'remote', issuer.tokenUrl))).status).to.equal(200);
    expect(jwks.requests).to.equal(1);
  });

  it('picks up a key the client published since, with one more fetch, and refuses an unknown kid without another', async () => {
    jwks.keys = [first.jwk, second.jwk];
    expect((await postAssertion(issuer.tokenUrl, assertion(second, 'remote', issuer.tokenUrl))).status).to.equal(200);
    expect(jwks.requests).to.equal(2);
    const failed = collect(issuer, 'client.authentication_failed');
    const stranger = makeKey('ES256', { kid: 'uri-3', fresh: true });
    for (let i = 0; i < 3; i++) expectInvalidClient(await postAssertion(issuer.tokenUrl, assertion(stranger, 'remote', issuer.tokenUrl)));
    // The cooldown holds every further unknown kid: at most one fetch per jwksCooldown.
    expect(jwks.requests).to.equal(2);
    expect(failed.map((e) => [e.reason, e.detail])).to.deep.equal(Array(3).fill(['unknown_key', 'no key of the client matches the assertion kid']));
  });

  it('answers 503 temporarily_unavailable with Retry-After when the client\'s jwks_uri is down, and counts no failure', async () => {
    const downJwks = await startClientJwks([]);
    await downJwks.server.close();
    const key = makeKey('ES256', { kid: 'down', fresh: true });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'unreachable', jwksUri: downJwks.url });
    const failed = collect(issuer, 'client.authentication_failed');
    const internal = collect(issuer, 'internal_error');
    const res = await postAssertion(issuer.tokenUrl, assertion(key, 'unreachable', issuer.tokenUrl));
    expect([res.status, stableHeaders(res), res.json]).to.deep.equal([503, { 'retry-after': '5', ...JSON_NO_STORE },
      { error: 'temporarily_unavailable', error_description: 'client authentication is temporarily unavailable' }]);
    expect(failed).to.deep.equal([]);
    expect(internal.map((e) => [e.endpoint, (e.error as Error).name])).to.deep.equal([['token', 'TemporarilyUnavailableError']]);
    expect(res.text).not.to.match(/ECONNREFUSED|127\.0\.0\.1|at \w+ \(/);
  });
});

describe('authorizationServer() private_key_jwt across instances sharing PostgreSQL', () => {
  let db: TestDatabase;
  let servers: Listening[];
  let issuerId: string;
  const key = makeKey('ES256', { kid: 'shared', fresh: true });

  before(async () => {
    db = postgresDatabase();
    servers = [];
    // Two instances behind one issuer identifier, as behind a load balancer.
    const routers: express.Router[] = [express.Router(), express.Router()];
    for (const i of [0, 1]) {
      const app = express();
      app.use('/oauth', (req, res, next) => (routers[i] as express.Router)(req, res, next));
      servers.push(await listen(app));
    }
    issuerId = `${(servers[0] as Listening).url}/oauth`;
    for (const i of [0, 1]) {
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix });
      await store.migrate();
      if (i === 0) await store.clients.create({ ...REGISTRATION, clientId: 'archiver', jwks: { keys: [key.jwk] } });
      routers[i] = authorizationServer({ issuer: issuerId, store, rateLimit: false });
    }
  });
  after(async () => {
    for (const server of servers) await server.close();
    await db.destroy();
  });

  it('refuses on the second instance an assertion the first has accepted', async () => {
    const once = assertion(key, 'archiver', `${issuerId}/token`);
    const [a, b] = servers.map((server) => `${server.url}/oauth/token`) as [string, string];
    expect((await postAssertion(a, once)).status).to.equal(200);
    expectInvalidClient(await postAssertion(b, once));
    expect((await postAssertion(b, assertion(key, 'archiver', `${issuerId}/token`))).status).to.equal(200);
  });
});

describe('authorizationServer() metadata and options for private_key_jwt', () => {
  it('lists private_key_jwt and the assertion algorithms in the metadata, as configured', async () => {
    const issuer = await startIssuer({ clientAssertion: { algorithms: ['ES256', 'PS256'] } });
    try {
      const res = await request(`${issuer.issuer}/.well-known/oauth-authorization-server`);
      const metadata = res.json as Record<string, unknown>;
      expect([metadata.token_endpoint_auth_methods_supported, metadata.token_endpoint_auth_signing_alg_values_supported]).to.deep.equal([
        ['client_secret_basic', 'client_secret_post', 'private_key_jwt'], ['ES256', 'PS256']]);
      const rsa = makeKey('RS256', { kid: 'rs' });
      await issuer.store.clients.create({ ...REGISTRATION, clientId: 'rsa', jwks: { keys: [rsa.jwk] } });
      const failed = collect(issuer, 'client.authentication_failed');
      expectInvalidClient(await postAssertion(issuer.tokenUrl, assertion(rsa, 'rsa', issuer.tokenUrl)));
      expect(failed.map((e) => [e.reason, e.detail])).to.deep.equal([['invalid_assertion', 'the client assertion signing algorithm is not accepted']]);
    } finally {
      await issuer.close();
    }
  });

  it('offers no private_key_jwt over a store that keeps no used assertions, and refuses assertions there', async () => {
    const db = sqliteDatabase();
    const knexStore = createKnexStore(db.knex);
    await knexStore.migrate();
    const key = makeKey('ES256', { kid: 'k' });
    await knexStore.clients.create({ ...REGISTRATION, clientId: 'archiver', jwks: { keys: [key.jwk] } });
    const store: IssuerStore = { clients: knexStore.clients, keys: knexStore.keys, migrate: () => knexStore.migrate() };
    const app = express();
    let router: express.Router = express.Router();
    app.use('/oauth', (req, res, next) => router(req, res, next));
    const server = await listen(app);
    const issuerId = `${server.url}/oauth`;
    const as = authorizationServer({ issuer: issuerId, store, rateLimit: false });
    router = as;
    try {
      const metadata = (await request(`${issuerId}/.well-known/oauth-authorization-server`)).json as Record<string, unknown>;
      expect(metadata.token_endpoint_auth_methods_supported).to.deep.equal(['client_secret_basic', 'client_secret_post']);
      expect(metadata).not.to.have.property('token_endpoint_auth_signing_alg_values_supported');
      const failed: unknown[] = [];
      as.events.on('client.authentication_failed', (e) => failed.push(e));
      expectInvalidClient(await postAssertion(`${issuerId}/token`, assertion(key, 'archiver', `${issuerId}/token`)));
      expect(failed).to.deep.equal([{ clientId: 'archiver', reason: 'unsupported_method', method: 'private_key_jwt', address: '127.0.0.1',
        detail: 'this issuer has no store for used assertions' }]);
    } finally {
      await server.close();
      await db.destroy();
    }
  });

  describe('clientAssertion option', () => {
    let db: TestDatabase;
    before(() => { db = sqliteDatabase(); });
    after(() => db.destroy());

    const bad: [string, unknown, string][] = [
      ['HS256 among the algorithms', { algorithms: ['ES256', 'HS256'] }, 'clientAssertion.algorithms'],
      ['none among the algorithms', { algorithms: ['none'] }, 'clientAssertion.algorithms'],
      ['no algorithm', { algorithms: [] }, 'clientAssertion.algorithms'],
      ['a maxLifetime of 0', { maxLifetime: 0 }, 'clientAssertion.maxLifetime'],
      ['a maxLifetime over an hour', { maxLifetime: 3601 }, 'clientAssertion.maxLifetime'],
      ['a negative clockTolerance', { clockTolerance: -1 }, 'clientAssertion.clockTolerance'],
      ['a fetch that is not a function', { fetch: 'fetch' }, 'clientAssertion.fetch'],
      ['an unknown option', { maxAge: 60 }, 'clientAssertion.maxAge'],
      ['null', null, 'clientAssertion'],
    ];
    for (const [what, value, option] of bad) {
      it(`throws an InvalidOptionError at creation for ${what}`, () => {
        const store = createKnexStore(db.knex);
        let caught: unknown;
        try {
          authorizationServer({ issuer: 'https://auth.internal/oauth', store, clientAssertion: value as never });
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(InvalidOptionError);
        expect((caught as InvalidOptionError).option).to.equal(option);
      });
    }
  });
});

