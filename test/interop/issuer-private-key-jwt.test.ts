import { generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import express, { type ErrorRequestHandler } from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import {
  authorizationServer, createKnexStore, tokenClient, type AuthenticationFailedEvent, type AuthorizationServer, type TokenIssuedEvent,
} from '../../lib/index.js';
import { postgresDatabase, type TestDatabase } from '../support/db.js';
import { listen, request, type Listening } from '../support/http.js';

// Interoperability of private_key_jwt (RFC 7523 §2.2): three independent client libraries sign
// their own assertions (RS256 and ES256) for clients registered with public keys, at two issuer
// instances sharing PostgreSQL behind one issuer identifier; auth0's express-oauth2-jwt-bearer, in
// strict RFC 9068 mode, accepts the tokens; an assertion replayed to the other instance is refused.

const REPORTS = 'https://reports.internal';
const LIFETIME = 300;
type Alg = 'RS256' | 'ES256';

/** What one library sent to the token endpoint (its form), and its access token. */
interface Obtained {
  accessToken: string;
  reported: unknown;
  /** The token request's body as sent, for replaying it. */
  sentBody: string;
}

interface Signer {
  clientId: string;
  privateKey: KeyObject;
  cryptoKey: webcrypto.CryptoKey;
  kid: string;
}

interface Library {
  name: string;
  /** The issuer's token endpoint is what the metadata names: the first instance. */
  getToken(issuerId: string, signer: Signer, alg: Alg): Promise<Obtained>;
  /** The `aud` this library puts in its assertions. */
  audience(issuerId: string): string;
}

/** A fetch that records the body of each POST it sends. */
function recordingFetch(bodies: string[]) {
  return (input: string | URL | Request, init?: { method?: string; body?: unknown }): Promise<Response> => {
    if (init?.method === 'POST') bodies.push(String(init.body));
    return fetch(input, init as RequestInit);
  };
}

const metadataUrl = (issuerId: string): string => `${issuerId}/.well-known/oauth-authorization-server`;

const ours: Library = {
  name: 'tokenClient (express-m2m)',
  async getToken(issuerId, signer) {
    const bodies: string[] = [];
    const caller = tokenClient({ tokenUrl: `${issuerId}/token`, clientId: signer.clientId, privateKey: signer.privateKey, keyId: signer.kid,
      scope: 'reports:read', allowHttp: true, fetch: recordingFetch(bodies) });
    const token = await caller.getToken();
    return { accessToken: token.accessToken, reported: { scope: token.scope }, sentBody: bodies[0] as string };
  },
  audience: (issuerId) => `${issuerId}/token`,
};

const openidClient: Library = {
  name: 'openid-client',
  async getToken(issuerId, signer) {
    const bodies: string[] = [];
    const config = await client.discovery(new URL(metadataUrl(issuerId)), signer.clientId, undefined,
      client.PrivateKeyJwt({ key: signer.cryptoKey, kid: signer.kid }), { execute: [client.allowInsecureRequests] });
    config[client.customFetch] = recordingFetch(bodies);
    const response = await client.clientCredentialsGrant(config, new URLSearchParams({ scope: 'reports:read' }));
    return { accessToken: response.access_token, reported: { ...response }, sentBody: bodies[0] as string };
  },
  audience: (issuerId) => issuerId,
};

const oauth4webapiLibrary: Library = {
  name: 'oauth4webapi',
  async getToken(issuerId, signer) {
    const bodies: string[] = [];
    const as = await oauth.processDiscoveryResponse(new URL(issuerId), await fetch(metadataUrl(issuerId)));
    const oauthClient: oauth.Client = { client_id: signer.clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.PrivateKeyJwt({ key: signer.cryptoKey, kid: signer.kid }),
      new URLSearchParams({ scope: 'reports:read' }), { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: recordingFetch(bodies) });
    const result = await oauth.processClientCredentialsResponse(as, oauthClient, response);
    return { accessToken: result.access_token, reported: { ...result }, sentBody: bodies[0] as string };
  },
  audience: (issuerId) => issuerId,
};

const LIBRARIES: readonly Library[] = [ours, openidClient, oauth4webapiLibrary];

async function makeSigner(clientId: string, alg: Alg): Promise<Signer & { jwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const algorithm = alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const cryptoKey = await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']);
  const kid = `${clientId}-key`;
  return { clientId, privateKey, cryptoKey, kid, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig' } };
}

/** The header and claims of a compact JWS, unverified. */
function decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>);
  return { header: header ?? {}, payload: payload ?? {} };
}

const renderError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
  const e = err as { status?: number; code?: string; message?: string };
  res.status(e.status ?? 500).json({ error: e.code ?? 'server_error', error_description: e.message ?? '' });
};

describe('private_key_jwt interoperability (RFC 7523 §2.2)', function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let servers: Listening[];
  let routers: AuthorizationServer[];
  let api: Listening;
  let issuerId: string;
  const issued: TokenIssuedEvent[][] = [[], []];
  const failed: AuthenticationFailedEvent[][] = [[], []];
  const signers = new Map<string, Signer>();

  before(async () => {
    db = postgresDatabase();
    servers = [];
    routers = [];
    const mounted: express.Router[] = [express.Router(), express.Router()];
    for (const i of [0, 1]) {
      const app = express();
      app.use('/oauth', (req, res, next) => (mounted[i] as express.Router)(req, res, next));
      servers.push(await listen(app));
    }
    // Two instances behind one issuer identifier, as behind a load balancer: the first's URL.
    issuerId = `${(servers[0] as Listening).url}/oauth`;
    for (const i of [0, 1]) {
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix });
      await store.migrate();
      const router = authorizationServer({ issuer: issuerId, store, rateLimit: false });
      router.events.on('token.issued', (e) => issued[i]?.push(e));
      router.events.on('client.authentication_failed', (e) => failed[i]?.push(e));
      await router.ready();
      routers.push(router);
      mounted[i] = router;
    }
    const registry = createKnexStore(db.knex, { tablePrefix: db.prefix });
    for (const library of LIBRARIES) {
      for (const alg of ['RS256', 'ES256'] as const) {
        const signer = await makeSigner(`${library.name.split(' ')[0]}-${alg}`, alg);
        await registry.clients.create({ clientId: signer.clientId, name: signer.clientId, scopes: ['reports:read'], audiences: [REPORTS],
          jwks: { keys: [signer.jwk] } });
        signers.set(`${library.name}/${alg}`, signer);
      }
    }
    const app = express();
    app.get('/reports', auth({ issuer: issuerId, jwksUri: `${issuerId}/jwks.json`, audience: REPORTS, tokenSigningAlg: 'ES256', strict: true,
      dpop: { enabled: false } }), requiredScopes('reports:read'), (req, res) => {
      res.json((req as unknown as { auth: { payload: unknown } }).auth.payload);
    });
    app.use(renderError);
    api = await listen(app);
  });

  after(async () => {
    await api?.close();
    for (const server of servers) await server.close();
    await db.destroy();
  });

  for (const library of LIBRARIES) {
    for (const alg of ['RS256', 'ES256'] as const) {
      describe(`${library.name} with an ${alg} assertion`, () => {
        let obtained: Obtained;
        let signer: Signer;

        before(async () => {
          signer = signers.get(`${library.name}/${alg}`) as Signer;
          obtained = await library.getToken(issuerId, signer, alg);
        });

        it('sends an RFC 7523 assertion the issuer accepts, and gets a token', () => {
          const form = new URLSearchParams(obtained.sentBody);
          expect(form.get('client_assertion_type')).to.equal('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
          const { header, payload } = decode(form.get('client_assertion') ?? '');
          expect([header.alg, header.kid]).to.deep.equal([alg, signer.kid]);
          expect([payload.iss, payload.sub, payload.aud]).to.deep.equal([signer.clientId, signer.clientId, library.audience(issuerId)]);
          const event = issued[0]?.find((e) => e.jti === decode(obtained.accessToken).payload.jti);
          expect([event?.clientId, event?.method, event?.scopes]).to.deep.equal([signer.clientId, 'private_key_jwt', ['reports:read']]);
          // oauth4webapi (and openid-client on it) lower-cases token_type; tokenClient hands back an AccessToken.
          expect(obtained.reported).to.deep.equal(library === ours ? { scope: 'reports:read' }
            : { access_token: obtained.accessToken, token_type: 'bearer', expires_in: LIFETIME, scope: 'reports:read' });
        });

        it('gets an access token that express-oauth2-jwt-bearer accepts in strict mode', async () => {
          const res = await request(`${api.url}/reports`, { headers: { authorization: `Bearer ${obtained.accessToken}` } });
          const { payload } = decode(obtained.accessToken);
          expect([res.status, res.json]).to.deep.equal([200, payload]);
          expect([payload.iss, payload.sub, payload.client_id, payload.aud]).to.deep.equal([issuerId, signer.clientId, signer.clientId, REPORTS]);
        });

        it('cannot replay its assertion to the second instance sharing PostgreSQL', async () => {
          const before = failed[1]?.length ?? 0;
          const res = await request(`${(servers[1] as Listening).url}/oauth/token`, {
            method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: obtained.sentBody });
          expect([res.status, res.headers['www-authenticate'], res.json]).to.deep.equal([401, undefined,
            { error: 'invalid_client', error_description: 'client authentication failed' }]);
          expect(failed[1]?.slice(before)).to.deep.equal([{ clientId: signer.clientId, reason: 'replayed_assertion', method: 'private_key_jwt',
            address: '127.0.0.1', detail: 'the client assertion jti was used before' }]);
        });
      });
    }
  }

  it('issues on the second instance for a fresh assertion of the same client: the refusals there are replays', async () => {
    const signer = signers.get(`${ours.name}/ES256`) as Signer;
    const caller = tokenClient({ tokenUrl: `${(servers[1] as Listening).url}/oauth/token`, clientId: signer.clientId, privateKey: signer.privateKey,
      keyId: signer.kid, assertionAudience: issuerId, allowHttp: true });
    const token = await caller.getToken();
    expect(issued[1]?.map((e) => e.jti)).to.deep.equal([decode(token.accessToken).payload.jti]);
  });
});
