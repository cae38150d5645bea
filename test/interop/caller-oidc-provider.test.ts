import { generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { expect } from 'chai';
import express from 'express';
import { Provider } from 'oidc-provider';
import {
  createResourceServer, tokenClient, TokenRequestError, type AuthenticatedRequest, type CallerFetch, type TokenClient,
  type TokenClientOptions,
} from '../../lib/index.js';
import { listen, type Listening } from '../support/http.js';
import { rejectionOf } from '../support/rejection.js';

// Interoperability: tokenClient() against node-oidc-provider (v9) with every client authentication
// method the caller has: client_secret_basic, client_secret_post, private_key_jwt (RS256 and
// ES256, with the key as a KeyObject, a PEM string and a JWK). The token endpoint is discovered
// from the issuer; the tokens are checked by this package's guard with the provider's JWKS.
//
// private_key_jwt audience: oidc-provider (lib/shared/jwt_client_auth.js,
// ctx.oidc.clientJwtAuthExpectedAudience() in lib/helpers/oidc_context.js) accepts an assertion
// whose `aud` is the issuer identifier, the token endpoint URL, or the URL of the endpoint being
// called (the token endpoint again here); an array `aud` must hold one of them. Only with the FAPI
// 2.0 profile does it require the issuer alone (assertJwtClientAuthClaimsAndHeader). So the
// caller's default (the token endpoint, RFC 7523 §3) works, and so does `assertionAudience: issuer`.

const REPORTS = 'https://reports.internal';
const SCOPES = 'reports:read reports:list';
const LIFETIME = 300;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Unreserved URI characters that form-urlencoding (RFC 6749 §2.3.1) may still escape: `%7E`. */
const SPECIAL_ID = 'svc-a_b.c~d';

interface SecretClient {
  clientId: string;
  clientSecret: string;
}

interface KeyClient {
  clientId: string;
  alg: 'RS256' | 'ES256';
  kid: string;
  privateKey: KeyObject;
}

interface RunningProvider {
  issuer: string;
  basic: SecretClient;
  special: SecretClient;
  post: SecretClient;
  rs256: KeyClient;
  es256: KeyClient;
  close(): Promise<void>;
}

function keyPair(alg: 'RS256' | 'ES256'): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
}

function keyClient(clientId: string, alg: 'RS256' | 'ES256'): { client: KeyClient; metadata: Record<string, unknown> } {
  const { privateKey, publicKey } = keyPair(alg);
  const kid = randomBytes(8).toString('base64url');
  return {
    client: { clientId, alg, kid, privateKey },
    metadata: {
      client_id: clientId, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: SCOPES,
      token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: alg,
      jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' }] },
    },
  };
}

async function startProvider(): Promise<RunningProvider> {
  const { privateKey: signingKey } = keyPair('RS256');
  const secretClient = (clientId: string, method: string): { client: SecretClient; metadata: Record<string, unknown> } => {
    const clientSecret = randomBytes(32).toString('base64url');
    return {
      client: { clientId, clientSecret },
      metadata: {
        client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
        scope: SCOPES, token_endpoint_auth_method: method,
      },
    };
  };
  const basic = secretClient('svc-basic', 'client_secret_basic');
  const special = secretClient(SPECIAL_ID, 'client_secret_basic');
  const post = secretClient('svc-post', 'client_secret_post');
  const rs256 = keyClient('svc-rs256', 'RS256');
  const es256 = keyClient('svc-es256', 'ES256');

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [basic.metadata, special.metadata, post.metadata, rs256.metadata, es256.metadata],
    scopes: SCOPES.split(' '),
    jwks: { keys: [{ ...signingKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('base64url') }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { ClientCredentials: LIFETIME },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => REPORTS,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: SCOPES, audience: REPORTS, accessTokenTTL: LIFETIME, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
  });
  server.on('request', provider.callback());
  return {
    issuer, basic: basic.client, special: special.client, post: post.client, rs256: rs256.client, es256: es256.client,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One request the client made, as its `fetch` was called. */
interface SentRequest {
  method: string;
  url: string;
  authorization: string | null;
  form: Record<string, string> | undefined;
}

/** A `fetch` that records every call the client makes (metadata, token, API) and passes it on. */
function recordingFetch(): { fetch: CallerFetch; sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  return {
    sent,
    fetch: (input, init) => {
      const body = init?.body;
      sent.push({
        method: init?.method ?? 'GET',
        url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
        authorization: new Headers(init?.headers).get('authorization'),
        form: typeof body === 'string' ? Object.fromEntries(new URLSearchParams(body)) : undefined,
      });
      return fetch(input, init);
    },
  };
}

function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header = '', payload = ''] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>,
  };
}

/** Everything an error shows when logged, thrown or serialised. */
function renderings(value: unknown): string[] {
  return [String(value), inspect(value, { depth: 10, showHidden: true }), JSON.stringify(value) ?? ''];
}

/** How the private key is handed to tokenClient(). */
const KEY_FORMS: { name: string; convert(key: KeyObject): KeyObject | string | JsonWebKey }[] = [
  { name: 'a KeyObject', convert: (key) => key },
  { name: 'a PEM string', convert: (key) => key.export({ format: 'pem', type: 'pkcs8' }) as string },
  { name: 'a private JWK', convert: (key) => key.export({ format: 'jwk' }) },
];

describe('tokenClient() with node-oidc-provider', () => {
  let op: RunningProvider;
  let api: Listening;
  const apiSeen: (string | undefined)[] = [];

  before(async () => {
    op = await startProvider();
    const rs = createResourceServer({ issuer: op.issuer, audience: REPORTS, strict: true });
    const app = express();
    app.use((req, _res, next) => {
      apiSeen.push(req.headers.authorization);
      next();
    });
    app.get('/reports', rs.requireScope('reports:read'), (req, res) => {
      const { auth } = req as AuthenticatedRequest;
      res.json({ clientId: auth.clientId, scopes: auth.scopes, typ: auth.header.typ, alg: auth.header.alg, aud: auth.payload.aud, iss: auth.payload.iss });
    });
    api = await listen(app);
  });
  after(async () => {
    await api.close();
    await op.close();
  });
  beforeEach(() => { apiSeen.length = 0; });

  const discovery = (): SentRequest => ({
    method: 'GET', url: `${op.issuer}/.well-known/openid-configuration`, authorization: null, form: undefined,
  });

  /** Gets a token, checks it through the guard with client.fetch(), and returns what was sent. */
  async function expectWorkingClient(client: TokenClient, sent: SentRequest[], clientId: string): Promise<SentRequest> {
    const token = await client.getToken();
    expect(token.toJSON()).to.deep.include({ tokenType: 'Bearer', scope: 'reports:read' });
    const { header, payload } = decodeJwt(token.accessToken);
    expect(header).to.include({ typ: 'at+jwt', alg: 'RS256' });
    expect(payload).to.include({ iss: op.issuer, client_id: clientId, aud: REPORTS, scope: 'reports:read' });
    expect((payload.exp as number) - (payload.iat as number)).to.equal(LIFETIME);

    const res = await client.fetch(`${api.url}/reports`);
    expect({ status: res.status, contentType: res.headers.get('content-type'), body: await res.json() }).to.deep.equal({
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: { clientId, scopes: ['reports:read'], typ: 'at+jwt', alg: 'RS256', aud: REPORTS, iss: op.issuer },
    });
    expect(apiSeen).to.deep.equal([`Bearer ${token.accessToken}`]);

    expect(sent.map((r) => `${r.method} ${r.url}`)).to.deep.equal([
      `GET ${op.issuer}/.well-known/openid-configuration`, `POST ${op.issuer}/token`, `GET ${api.url}/reports`,
    ]);
    expect(sent[0]).to.deep.equal(discovery());
    return sent[1] as SentRequest;
  }

  describe('with client_secret_basic', () => {
    it('discovers the token endpoint and gets a token the guard accepts', async () => {
      const { fetch, sent } = recordingFetch();
      const client = tokenClient({ issuer: op.issuer, ...op.basic, scope: 'reports:read', fetch });
      const tokenRequest = await expectWorkingClient(client, sent, op.basic.clientId);
      expect(tokenRequest).to.deep.equal({
        method: 'POST', url: `${op.issuer}/token`,
        authorization: `Basic ${Buffer.from(`${op.basic.clientId}:${op.basic.clientSecret}`).toString('base64')}`,
        form: { grant_type: 'client_credentials', scope: 'reports:read' },
      });
    });

    it(`form-urlencodes the client id ${SPECIAL_ID} before base64 (RFC 6749 §2.3.1) as the provider expects`, async () => {
      const { fetch, sent } = recordingFetch();
      const client = tokenClient({ issuer: op.issuer, ...op.special, scope: 'reports:read', fetch });
      const tokenRequest = await expectWorkingClient(client, sent, SPECIAL_ID);
      expect(tokenRequest.authorization).to.equal(`Basic ${Buffer.from(`svc-a_b.c%7Ed:${op.special.clientSecret}`).toString('base64')}`);
    });

    it('fails fast on a wrong secret with invalid_client, one token request, the secret nowhere', async () => {
      const { fetch, sent } = recordingFetch();
      const wrong = `${op.basic.clientSecret}x`;
      const client = tokenClient({ issuer: op.issuer, clientId: op.basic.clientId, clientSecret: wrong, scope: 'reports:read', fetch });
      const err = await rejectionOf(client.getToken(), TokenRequestError);
      expect(err).to.include({
        name: 'TokenRequestError', reason: 'oauth_error', error: 'invalid_client', status: 401, retryable: false,
        description: 'client authentication failed', tokenUrl: `${op.issuer}/token`, clientId: op.basic.clientId,
      });
      expect(err.message).to.equal(`token request to ${op.issuer}/token failed (HTTP 401): invalid_client: client authentication failed`);
      expect(sent.map((r) => `${r.method} ${r.url}`)).to.deep.equal([`GET ${op.issuer}/.well-known/openid-configuration`, `POST ${op.issuer}/token`]);
      for (const text of [...renderings(err), ...renderings(client)]) {
        expect(text).not.to.include(wrong);
        expect(text).not.to.include(op.basic.clientSecret);
        expect(text).not.to.include(Buffer.from(`${op.basic.clientId}:${wrong}`).toString('base64'));
      }
    });
  });

  describe('with client_secret_post', () => {
    it('discovers the token endpoint and gets a token the guard accepts', async () => {
      const { fetch, sent } = recordingFetch();
      const client = tokenClient({ issuer: op.issuer, ...op.post, authMethod: 'client_secret_post', scope: 'reports:read', fetch });
      const tokenRequest = await expectWorkingClient(client, sent, op.post.clientId);
      expect(tokenRequest).to.deep.equal({
        method: 'POST', url: `${op.issuer}/token`, authorization: null,
        form: { grant_type: 'client_credentials', scope: 'reports:read', client_id: op.post.clientId, client_secret: op.post.clientSecret },
      });
    });

    it('fails fast on a wrong secret with invalid_client, one token request, the secret nowhere', async () => {
      const { fetch, sent } = recordingFetch();
      const wrong = randomBytes(32).toString('base64url');
      const client = tokenClient({
        issuer: op.issuer, clientId: op.post.clientId, clientSecret: wrong, authMethod: 'client_secret_post', scope: 'reports:read', fetch,
      });
      const err = await rejectionOf(client.getToken(), TokenRequestError);
      expect(err).to.include({ reason: 'oauth_error', error: 'invalid_client', status: 401, retryable: false });
      expect(sent.filter((r) => r.url === `${op.issuer}/token`)).to.have.length(1);
      for (const text of [...renderings(err), ...renderings(client)]) expect(text).not.to.include(wrong);
    });
  });

  for (const which of ['rs256', 'es256'] as const) {
    describe(`with private_key_jwt (${which === 'rs256' ? 'RS256' : 'ES256'})`, () => {
      for (const form of KEY_FORMS) {
        it(`discovers the token endpoint and gets a token the guard accepts, the key given as ${form.name}`, async () => {
          const { clientId, alg, privateKey } = op[which];
          const { fetch, sent } = recordingFetch();
          const now = Date.now();
          const client = tokenClient({
            issuer: op.issuer, clientId, privateKey: form.convert(privateKey), scope: 'reports:read', fetch, clock: () => now,
          });
          const tokenRequest = await expectWorkingClient(client, sent, clientId);
          expect((await client.getToken()).expiresAt.getTime()).to.equal(now + LIFETIME * 1000);
          const { client_assertion: assertion = '', ...rest } = tokenRequest.form ?? {};
          expect({ ...tokenRequest, form: rest }).to.deep.equal({
            method: 'POST', url: `${op.issuer}/token`, authorization: null,
            form: { grant_type: 'client_credentials', scope: 'reports:read', client_id: clientId, client_assertion_type: ASSERTION_TYPE },
          });
          const { header, payload } = decodeJwt(assertion);
          expect(header).to.deep.equal({ alg, typ: 'JWT' });
          expect(payload).to.deep.equal({
            iss: clientId, sub: clientId, aud: `${op.issuer}/token`, jti: payload.jti, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 60,
          });
          expect(payload.jti).to.be.a('string').with.length.greaterThan(15);
        });
      }

      it('puts iat (from the injected clock) in the assertion', async () => {
        const { clientId, privateKey } = op[which];
        const { fetch, sent } = recordingFetch();
        const now = Date.now();
        await tokenClient({ issuer: op.issuer, clientId, privateKey, scope: 'reports:read', fetch, clock: () => now }).getToken();
        const { payload } = decodeJwt(sent[1]?.form?.client_assertion ?? '');
        const iat = Math.floor(now / 1000);
        expect(payload).to.deep.equal({ iss: clientId, sub: clientId, aud: `${op.issuer}/token`, jti: payload.jti, iat, exp: iat + 60 });
      });

      it('signs a fresh assertion for every token request (the provider refuses a replayed jti)', async () => {
        const { clientId, privateKey } = op[which];
        const { fetch, sent } = recordingFetch();
        const client = tokenClient({ issuer: op.issuer, clientId, privateKey, scope: 'reports:read', fetch });
        const first = await client.getToken();
        await client.invalidate();
        const second = await client.getToken();
        expect(second.accessToken).not.to.equal(first.accessToken);
        const assertions = sent.filter((r) => r.method === 'POST').map((r) => r.form?.client_assertion);
        expect(assertions).to.have.length(2);
        expect(new Set(assertions.map((a) => decodeJwt(a ?? '').payload.jti)).size).to.equal(2);
      });

      it('names the kid in the assertion with keyId', async () => {
        const { clientId, kid, alg, privateKey } = op[which];
        const { fetch, sent } = recordingFetch();
        const client = tokenClient({ issuer: op.issuer, clientId, privateKey, keyId: kid, scope: 'reports:read', fetch });
        await client.getToken();
        expect(decodeJwt(sent[1]?.form?.client_assertion ?? '').header).to.deep.equal({ alg, typ: 'JWT', kid });
      });

      it('is accepted with assertionAudience set to the issuer', async () => {
        const { clientId, privateKey } = op[which];
        const { fetch, sent } = recordingFetch();
        const client = tokenClient({ issuer: op.issuer, clientId, privateKey, assertionAudience: op.issuer, scope: 'reports:read', fetch });
        expect((await client.getToken()).scope).to.equal('reports:read');
        expect(decodeJwt(sent[1]?.form?.client_assertion ?? '').payload.aud).to.equal(op.issuer);
      });

      it('is refused with invalid_client when assertionAudience is neither the issuer nor the token endpoint', async () => {
        const { clientId, privateKey } = op[which];
        const client = tokenClient({ issuer: op.issuer, clientId, privateKey, assertionAudience: `${op.issuer}/elsewhere`, scope: 'reports:read' });
        const err = await rejectionOf(client.getToken(), TokenRequestError);
        expect(err).to.include({ reason: 'oauth_error', error: 'invalid_client', status: 401, retryable: false });
      });

      it('fails fast with invalid_client for a key the provider does not know, no part of the assertion anywhere', async () => {
        const { clientId, alg } = op[which];
        const { fetch, sent } = recordingFetch();
        const client = tokenClient({ issuer: op.issuer, clientId, privateKey: keyPair(alg).privateKey, scope: 'reports:read', fetch });
        const err = await rejectionOf(client.getToken(), TokenRequestError);
        expect(err).to.include({
          name: 'TokenRequestError', reason: 'oauth_error', error: 'invalid_client', status: 401, retryable: false,
          description: 'client authentication failed', tokenUrl: `${op.issuer}/token`, clientId,
        });
        const tokenRequests = sent.filter((r) => r.url === `${op.issuer}/token`);
        expect(tokenRequests).to.have.length(1);
        const assertion = tokenRequests[0]?.form?.client_assertion ?? '';
        const parts = assertion.split('.');
        expect(parts).to.have.length(3);
        for (const text of [...renderings(err), ...renderings(client)]) {
          for (const part of parts) expect(text).not.to.include(part);
        }
      });

      it('fails fast with invalid_client when another client\'s key signs the assertion', async () => {
        const other = which === 'rs256' ? op.es256 : op.rs256;
        const client = tokenClient({ issuer: op.issuer, clientId: op[which].clientId, privateKey: other.privateKey, scope: 'reports:read' });
        const err = await rejectionOf(client.getToken(), TokenRequestError);
        expect(err).to.include({ reason: 'oauth_error', error: 'invalid_client', status: 401, retryable: false });
      });
    });
  }

  it('gets its own token for each scope from the same provider', async () => {
    const base: TokenClientOptions = { issuer: op.issuer, ...op.basic };
    const read = await tokenClient({ ...base, scope: 'reports:read' }).getToken();
    const both = await tokenClient({ ...base, scope: ['reports:read', 'reports:list'] }).getToken();
    expect([read.scope, both.scope]).to.deep.equal(['reports:read', 'reports:read reports:list']);
    expect(decodeJwt(both.accessToken).payload.scope).to.equal('reports:read reports:list');
  });
});
