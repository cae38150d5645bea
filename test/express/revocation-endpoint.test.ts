import { expect } from 'chai';
import express from 'express';
import { authorizationServer, createKnexStore, type IssuerStore, type TokenRevokedEvent } from '../../lib/index.js';
import { sqliteDatabase } from '../support/db.js';
import { basic, listen, postForm, request } from '../support/http.js';
import { assertion, collect, postAssertion } from './private-key-jwt-fixtures.js';
import { makeKey, mint } from './resource-server-fixtures.js';
import {
  activeness, expectError, expectRevocationAnswer, jtiOf, postAs, postAsKeyed, startRevocationIssuer, tokenFor, type RevocationIssuer,
} from './revocation-fixtures.js';

const INVALID_CLIENT = ['invalid_client', 'client authentication failed'] as const;

describe('POST /revoke (RFC 7009)', () => {
  let ctx: RevocationIssuer;
  let revoked: TokenRevokedEvent[];
  let revokeUrl: string;

  beforeEach(async () => {
    ctx = await startRevocationIssuer();
    revoked = collect(ctx.issuer, 'token.revoked');
    revokeUrl = `${ctx.issuer.issuer}/revoke`;
  });
  afterEach(() => ctx.close());

  /** Whether the store holds `token` as revoked. */
  const isRevoked = (token: string, clientId = 'owner') =>
    ctx.issuer.store.revocations.isRevoked({ jti: jtiOf(token), clientId, issuedAt: new Date(ctx.clock.now) });

  describe('a token issued to the client', () => {
    it('is revoked: 200 with an empty body and no-store, the store records it, introspection calls it inactive', async () => {
      const token = await tokenFor(ctx, 'owner');
      expect(await activeness(ctx, token)).to.equal(true);
      expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token }));
      expect(await isRevoked(token)).to.equal(true);
      expect(await activeness(ctx, token)).to.equal(false);
      const { exp } = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number };
      expect(revoked).to.deep.equal([{ clientId: 'owner', jti: jtiOf(token), expiresAt: new Date(exp * 1000) }]);
    });

    it('answers the same 200 when revoked again, recording and announcing it once', async () => {
      const token = await tokenFor(ctx, 'owner');
      expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token }));
      expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token }));
      expect(revoked).to.have.length(1);
      expect((await ctx.issuer.store.revocations.list()).entries).to.have.length(1);
    });

    it('leaves the client\'s other tokens alone', async () => {
      const [first, second] = [await tokenFor(ctx, 'owner'), await tokenFor(ctx, 'owner')];
      expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token: first as string }));
      expect([await activeness(ctx, first as string), await activeness(ctx, second as string)]).to.deep.equal([false, true]);
    });

    for (const hint of ['access_token', 'refresh_token', 'id_token', 'x'.repeat(100)]) {
      it(`ignores token_type_hint=${hint.slice(0, 20)} and revokes the access token`, async () => {
        const token = await tokenFor(ctx, 'owner');
        expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token, token_type_hint: hint }));
        expect(await isRevoked(token)).to.equal(true);
      });
    }

    it('is revoked by a client that authenticates with client_secret_post', async () => {
      const res = await postForm(`${ctx.issuer.issuer}/token`, { grant_type: 'client_credentials', client_id: 'poster', client_secret: ctx.secrets.poster });
      const token = (res.json as { access_token: string }).access_token;
      expectRevocationAnswer(await postForm(revokeUrl, { token, client_id: 'poster', client_secret: ctx.secrets.poster }));
      expect(await isRevoked(token, 'poster')).to.equal(true);
    });

    it('is revoked by a client that authenticates with private_key_jwt', async () => {
      const res = await postAssertion(ctx.issuer.tokenUrl, assertion(ctx.key, 'keyed', ctx.issuer.tokenUrl));
      const token = (res.json as { access_token: string }).access_token;
      expectRevocationAnswer(await postAsKeyed(ctx, 'revoke', { token }));
      expect(await isRevoked(token, 'keyed')).to.equal(true);
    });
  });

  describe('any other token: 200, nothing revoked', () => {
    it('someone else\'s token', async () => {
      const token = await tokenFor(ctx, 'other');
      expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token }));
      expect(await activeness(ctx, token)).to.equal(true);
      expect([revoked, (await ctx.issuer.store.revocations.list()).entries]).to.deep.equal([[], []]);
    });

    it('an expired token', async () => {
      const token = await tokenFor(ctx, 'owner');
      ctx.clock.now += 301_000;
      expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token }));
      expect([revoked, (await ctx.issuer.store.revocations.list()).entries]).to.deep.equal([[], []]);
    });

    it('malformed, forged, foreign and hostile tokens', async () => {
      const genuine = await tokenFor(ctx, 'owner');
      const [header, payload] = genuine.split('.') as [string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      const kid = (JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string }).kid;
      const impostor = makeKey('ES256', { kid, fresh: true });
      const tokens = [
        'not-a-jwt', 'a.b.c', `${header}.${payload}.`, `${header}.${payload}.${'A'.repeat(86)}`,
        // Our kid, someone else's key.
        mint(impostor, claims),
        // Another issuer's token naming this client.
        mint(impostor, { ...claims, iss: 'https://elsewhere.example/oauth' }),
        // alg none and HS256 with the issuer's kid.
        `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${payload}.`,
        mint({ ...impostor, alg: 'HS256' as never }, claims),
        "'; DROP TABLE m2m_revocations; --", '\u0000'.repeat(10), '🔑'.repeat(200),
      ];
      for (const token of tokens) expectRevocationAnswer(await postAs(ctx, 'revoke', 'owner', { token }));
      expect([revoked, (await ctx.issuer.store.revocations.list()).entries]).to.deep.equal([[], []]);
      expect(await activeness(ctx, genuine)).to.equal(true);
    });
  });

  describe('client authentication, exactly as at /token', () => {
    it('answers a wrong secret, an unknown client and no credentials with 401 invalid_client, revoking nothing', async () => {
      const token = await tokenFor(ctx, 'owner');
      expectError(await postForm(revokeUrl, { token }, { authorization: basic('owner', 'wrong') }), 401, ...INVALID_CLIENT,
        { 'www-authenticate': `Basic realm="${new URL(ctx.issuer.issuer).host}"` });
      expectError(await postForm(revokeUrl, { token }, { authorization: basic('nobody', 'wrong') }), 401, ...INVALID_CLIENT,
        { 'www-authenticate': `Basic realm="${new URL(ctx.issuer.issuer).host}"` });
      expectError(await postForm(revokeUrl, { token, client_id: 'owner', client_secret: 'wrong' }), 401, ...INVALID_CLIENT);
      expectError(await postForm(revokeUrl, { token }), 401, ...INVALID_CLIENT, { 'www-authenticate': `Basic realm="${new URL(ctx.issuer.issuer).host}"` });
      expect(await activeness(ctx, token)).to.equal(true);
    });

    it('answers a disabled client with 401 invalid_client', async () => {
      const token = await tokenFor(ctx, 'owner');
      await ctx.issuer.store.clients.update('owner', { enabled: false });
      expectError(await postAs(ctx, 'revoke', 'owner', { token }), 401, ...INVALID_CLIENT,
        { 'www-authenticate': `Basic realm="${new URL(ctx.issuer.issuer).host}"` });
    });

    it('refuses two methods at once with 400 invalid_request', async () => {
      const token = await tokenFor(ctx, 'owner');
      expectError(await postForm(revokeUrl, { token, client_secret: ctx.secrets.owner }, { authorization: basic('owner', ctx.secrets.owner) }),
        400, 'invalid_request', 'client authentication must use exactly one method, not both the Authorization header and client_secret');
    });

    it('counts failures against the same budget as /token: spent at /revoke, /token answers 429 too', async () => {
      const limited = await startRevocationIssuer({ rateLimit: { perAddress: { points: 2, duration: 60 }, perClient: false } });
      try {
        const url = `${limited.issuer.issuer}/revoke`;
        for (let i = 0; i < 2; i++) expect((await postForm(url, { token: 'x' }, { authorization: basic('owner', 'wrong') })).status).to.equal(401);
        const blocked = await postForm(limited.issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('owner', limited.secrets.owner) });
        expectError(blocked, 429, 'temporarily_unavailable', 'too many failed client authentications; retry later', { 'retry-after': blocked.headers['retry-after'] as string });
        expect((await postAs(limited, 'revoke', 'owner', { token: 'x' })).status).to.equal(429);
      } finally {
        await limited.close();
      }
    });
  });

  describe('bad input', () => {
    it('refuses a missing or empty token with 400 invalid_request, before authenticating', async () => {
      expectError(await postAs(ctx, 'revoke', 'owner', {}), 400, 'invalid_request', 'the token parameter is missing');
      expectError(await postAs(ctx, 'revoke', 'owner', { token: '' }), 400, 'invalid_request', 'the token parameter is missing');
      expectError(await postForm(revokeUrl, {}, { authorization: basic('owner', 'wrong') }), 400, 'invalid_request', 'the token parameter is missing');
    });

    for (const name of ['token', 'token_type_hint', 'client_id']) {
      it(`refuses a repeated ${name} with 400 invalid_request`, async () => {
        const token = await tokenFor(ctx, 'owner');
        const form = { token, [name]: [name === 'token' ? token : 'owner', name === 'token' ? token : 'owner'] };
        expectError(await postAs(ctx, 'revoke', 'owner', form), 400, 'invalid_request', `the ${name} parameter is repeated`);
        expect(await activeness(ctx, token)).to.equal(true);
      });
    }

    it('refuses a JSON body, a body over 4 kB and more than 32 parameters, as /token does', async () => {
      const token = await tokenFor(ctx, 'owner');
      const authorization = basic('owner', ctx.secrets.owner);
      expectError(await request(revokeUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ token }) }),
        400, 'invalid_request', 'the revocation request must be sent as application/x-www-form-urlencoded');
      expectError(await postAs(ctx, 'revoke', 'owner', { token: 'x'.repeat(5000) }), 413, 'invalid_request', 'the request body exceeds 4096 bytes');
      const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, '1']));
      expectError(await postAs(ctx, 'revoke', 'owner', { token, ...many }), 413, 'invalid_request', 'the request has too many parameters');
      expect(await activeness(ctx, token)).to.equal(true);
    });

    it('takes nothing from the query string', async () => {
      const token = await tokenFor(ctx, 'owner');
      expectError(await postForm(`${revokeUrl}?token=${token}`, '', { authorization: basic('owner', ctx.secrets.owner) }),
        400, 'invalid_request', 'the token parameter is missing');
    });

    for (const method of ['GET', 'PUT', 'DELETE']) {
      it(`answers ${method} with 405 and Allow: POST`, async () => {
        expectError(await request(revokeUrl, { method }), 405, 'invalid_request', 'this endpoint accepts POST only', { allow: 'POST' });
      });
    }
  });

  it('answers 503 temporarily_unavailable, and tells internal_error, when the store cannot record the revocation', async () => {
    const token = await tokenFor(ctx, 'owner');
    const errors = collect(ctx.issuer, 'internal_error');
    const { knex } = ctx.issuer.db;
    const table = ctx.issuer.store.tables.revocations;
    await knex.schema.renameTable(table, `${table}_away`);
    try {
      expectError(await postAs(ctx, 'revoke', 'owner', { token }), 503, 'temporarily_unavailable', 'token revocation is temporarily unavailable',
        { 'retry-after': '5' });
    } finally {
      await knex.schema.renameTable(`${table}_away`, table);
    }
    expect(errors.map((e) => e.endpoint)).to.deep.equal(['revoke']);
  });

  it('is not served over a store without a revocation record, nor listed in the metadata', async () => {
    const db = sqliteDatabase();
    const knexStore = createKnexStore(db.knex);
    await knexStore.migrate();
    const store: IssuerStore = { clients: knexStore.clients, keys: knexStore.keys, migrate: () => knexStore.migrate() };
    const app = express();
    let router: express.Router = express.Router();
    app.use('/oauth', (req, res, next) => router(req, res, next));
    const server = await listen(app);
    router = authorizationServer({ issuer: `${server.url}/oauth`, store, rateLimit: false });
    try {
      expect((await postForm(`${server.url}/oauth/revoke`, { token: 'x' })).status).to.equal(404);
      const metadata = (await request(`${server.url}/oauth/.well-known/oauth-authorization-server`)).json as Record<string, unknown>;
      expect(Object.keys(metadata).filter((name) => name.startsWith('revocation_'))).to.deep.equal([]);
      expect(metadata.introspection_endpoint_auth_methods_supported).to.deep.equal(['client_secret_basic', 'client_secret_post']);
      expect(metadata).not.to.have.property('introspection_endpoint_auth_signing_alg_values_supported');
    } finally {
      await server.close();
      await db.destroy();
    }
  });
});
