import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { INTROSPECTION_SCOPE } from '../../lib/index.js';
import { basic, postForm, request, type ReadResponse } from '../support/http.js';
import { collect, stableHeaders } from './private-key-jwt-fixtures.js';
import { makeKey, mint } from './resource-server-fixtures.js';
import {
  AUDIT, expectError, postAs, postAsKeyed, REPORTS, startRevocationIssuer, tokenFor, type RevocationIssuer,
} from './revocation-fixtures.js';

const JSON_NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache', 'content-type': 'application/json; charset=utf-8', 'x-powered-by': 'Express' };

/** Asserts a 200 introspection answer: the no-store JSON headers and exactly `body`. */
function expectAnswer(res: ReadResponse, body: Record<string, unknown>): void {
  expect([res.status, stableHeaders(res), res.json]).to.deep.equal([200, JSON_NO_STORE, body]);
}

describe('POST /introspect (RFC 7662)', () => {
  let ctx: RevocationIssuer;
  let introspectUrl: string;

  beforeEach(async () => {
    ctx = await startRevocationIssuer();
    introspectUrl = `${ctx.issuer.issuer}/introspect`;
  });
  afterEach(() => ctx.close());

  const ask = (token: string) => postAs(ctx, 'introspect', 'inspector', { token });
  const claimsOf = (token: string) => jwt.decode(token) as Record<string, unknown>;

  describe('an active token', () => {
    it('answers active: true with the token\'s claims and token_type Bearer', async () => {
      const token = await tokenFor(ctx, 'owner', { scope: 'reports:read' });
      const { exp, iat, jti } = claimsOf(token);
      expectAnswer(await ask(token), {
        active: true, scope: 'reports:read', client_id: 'owner', sub: 'owner', aud: REPORTS, iss: ctx.issuer.issuer,
        exp, iat, jti, token_type: 'Bearer',
      });
    });

    it('answers aud as the token holds it: an array for several audiences', async () => {
      const token = await tokenFor(ctx, 'other', { resource: REPORTS });
      const res = await postForm(ctx.issuer.tokenUrl, `grant_type=client_credentials&resource=${encodeURIComponent(REPORTS)}&resource=${encodeURIComponent(AUDIT)}`,
        { authorization: basic('other', ctx.secrets.other) });
      const both = (res.json as { access_token: string }).access_token;
      expect(((await ask(token)).json as { aud: unknown }).aud).to.equal(REPORTS);
      expect(((await ask(both)).json as { aud: unknown }).aud).to.deep.equal([REPORTS, AUDIT]);
    });

    it('is answered to a caller that authenticates with private_key_jwt or client_secret_post, when it may introspect', async () => {
      await ctx.issuer.store.clients.update('keyed', { scopes: ['reports:read', INTROSPECTION_SCOPE] });
      await ctx.issuer.store.clients.update('poster', { scopes: ['reports:read', INTROSPECTION_SCOPE] });
      const token = await tokenFor(ctx, 'owner');
      expect(((await postAsKeyed(ctx, 'introspect', { token })).json as { active: boolean }).active).to.equal(true);
      const posted = await postForm(introspectUrl, { token, client_id: 'poster', client_secret: ctx.secrets.poster });
      expect((posted.json as { active: boolean }).active).to.equal(true);
    });

    it('ignores token_type_hint, whatever it says', async () => {
      const token = await tokenFor(ctx, 'owner');
      for (const hint of ['access_token', 'refresh_token', 'bogus']) {
        expect(((await postAs(ctx, 'introspect', 'inspector', { token, token_type_hint: hint })).json as { active: boolean }).active).to.equal(true);
      }
    });
  });

  describe('answers { active: false } and nothing more for', () => {
    it('a token revoked at /revoke', async () => {
      const token = await tokenFor(ctx, 'owner');
      expect((await postAs(ctx, 'revoke', 'owner', { token })).status).to.equal(200);
      expectAnswer(await ask(token), { active: false });
    });

    it('every token of a client whose tokens were revoked, and not its next one', async () => {
      const token = await tokenFor(ctx, 'owner');
      await ctx.issuer.store.clients.revokeTokens('owner');
      expectAnswer(await ask(token), { active: false });
      ctx.clock.now += 1000;
      expect(((await ask(await tokenFor(ctx, 'owner'))).json as { active: boolean }).active).to.equal(true);
    });

    it('an expired token', async () => {
      const token = await tokenFor(ctx, 'owner');
      ctx.clock.now = (claimsOf(token).exp as number) * 1000;
      expectAnswer(await ask(token), { active: false });
    });

    it('a token of a disabled client, even once it is enabled again', async () => {
      const token = await tokenFor(ctx, 'owner');
      await ctx.issuer.store.clients.update('owner', { enabled: false });
      expectAnswer(await ask(token), { active: false });
      await ctx.issuer.store.clients.update('owner', { enabled: true });
      expectAnswer(await ask(token), { active: false });
    });

    it('a token of a client disabled by direct SQL, which records no revocation', async () => {
      const token = await tokenFor(ctx, 'owner');
      // Bumping the revision makes every registry copy read the change, as the CLI's own writes do.
      await ctx.issuer.db.knex(ctx.issuer.store.tables.clients).where({ client_id: 'owner' }).update({ enabled: false });
      await ctx.issuer.db.knex(ctx.issuer.store.tables.revisions).where({ name: 'clients' }).increment('value', 1);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expectAnswer(await ask(token), { active: false });
    });

    it('a token of a deleted client', async () => {
      const token = await tokenFor(ctx, 'owner');
      await ctx.issuer.store.clients.delete('owner');
      expectAnswer(await ask(token), { active: false });
    });

    it('malformed, forged, foreign and hostile tokens', async () => {
      const genuine = await tokenFor(ctx, 'owner');
      const [header, payload] = genuine.split('.') as [string, string];
      const claims = claimsOf(genuine);
      const { kid } = jwt.decode(genuine, { complete: true })?.header as { kid: string };
      const impostor = makeKey('ES256', { kid, fresh: true });
      const tokens = [
        'not-a-jwt', 'a.b.c', `${header}.${payload}.`, `${header}.${payload}.${'A'.repeat(86)}`,
        mint(impostor, claims), mint(impostor, { ...claims, iss: 'https://elsewhere.example/oauth' }),
        `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${payload}.`,
        // The issuer's own token with its payload swapped: the signature no longer matches.
        `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'reports:read reports:list admin' })).toString('base64url')}.${genuine.split('.')[2]}`,
        "'; DROP TABLE m2m_clients; --", '🔑'.repeat(200),
      ];
      for (const token of tokens) expectAnswer(await ask(token), { active: false });
      expect(((await ask(genuine)).json as { active: boolean }).active).to.equal(true);
    });

    it('a token signed with a key the issuer has revoked', async () => {
      const token = await tokenFor(ctx, 'owner');
      const { kid } = jwt.decode(token, { complete: true })?.header as { kid: string };
      await ctx.issuer.store.keys.rotate({ activateAfter: 0 });
      await ctx.issuer.store.keys.revoke(kid);
      // The issuer reads its key list again after keyCacheTtl (30 s).
      ctx.clock.now += 31_000;
      expectAnswer(await ask(token), { active: false });
    });
  });

  describe('the caller', () => {
    it('is refused with 403 unauthorized_client when it lacks the m2m:introspect scope', async () => {
      const token = await tokenFor(ctx, 'owner');
      expectError(await postAs(ctx, 'introspect', 'owner', { token }), 403, 'unauthorized_client',
        'the client may not introspect tokens: it lacks the m2m:introspect scope');
    });

    it('is refused with 401 invalid_client for wrong credentials, told as client.authentication_failed', async () => {
      const failed = collect(ctx.issuer, 'client.authentication_failed');
      expectError(await postForm(introspectUrl, { token: 'x' }, { authorization: basic('inspector', 'wrong') }), 401, 'invalid_client',
        'client authentication failed', { 'www-authenticate': `Basic realm="${new URL(ctx.issuer.issuer).host}"` });
      expect(failed.map((e) => [e.clientId, e.reason])).to.deep.equal([['inspector', 'malformed_credentials']]);
    });
  });

  describe('bad input', () => {
    it('refuses a missing, empty or repeated token with 400 invalid_request', async () => {
      expectError(await postAs(ctx, 'introspect', 'inspector', {}), 400, 'invalid_request', 'the token parameter is missing');
      expectError(await postAs(ctx, 'introspect', 'inspector', { token: '' }), 400, 'invalid_request', 'the token parameter is missing');
      expectError(await postAs(ctx, 'introspect', 'inspector', { token: ['a', 'b'] }), 400, 'invalid_request', 'the token parameter is repeated');
      expectError(await postAs(ctx, 'introspect', 'inspector', { token: 'a', token_type_hint: ['a', 'b'] }), 400, 'invalid_request',
        'the token_type_hint parameter is repeated');
    });

    it('refuses a JSON body, an oversized body and too many parameters', async () => {
      const authorization = basic('inspector', ctx.secrets.inspector);
      expectError(await request(introspectUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: '{"token":"x"}' }),
        400, 'invalid_request', 'the introspection request must be sent as application/x-www-form-urlencoded');
      expectError(await postAs(ctx, 'introspect', 'inspector', { token: 'x'.repeat(5000) }), 413, 'invalid_request', 'the request body exceeds 4096 bytes');
      const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, '1']));
      expectError(await postAs(ctx, 'introspect', 'inspector', { token: 'x', ...many }), 413, 'invalid_request', 'the request has too many parameters');
    });

    it('answers GET with 405 and Allow: POST', async () => {
      expectError(await request(`${introspectUrl}?token=x`), 405, 'invalid_request', 'this endpoint accepts POST only', { allow: 'POST' });
    });
  });

  it('answers 503 temporarily_unavailable when the revocation record cannot be read', async () => {
    const token = await tokenFor(ctx, 'owner');
    const { knex } = ctx.issuer.db;
    const table = ctx.issuer.store.tables.revocations;
    await knex.schema.renameTable(table, `${table}_away`);
    try {
      expectError(await ask(token), 503, 'temporarily_unavailable', 'token introspection is temporarily unavailable', { 'retry-after': '5' });
    } finally {
      await knex.schema.renameTable(`${table}_away`, table);
    }
  });
});
