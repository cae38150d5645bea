import { expect } from 'chai';
import express, { type ErrorRequestHandler, type Request } from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { ClientCredentials, type ClientCredentialTokenConfig } from 'simple-oauth2';
import {
  type AuthenticationFailedEvent, type ClientRegistration, type KnexStore, type SigningAlgorithm,
  type TokenIssuedEvent,
} from '../../lib/index.js';
import { generateClientSecret } from '../../lib/store.js';
import { listen, request, type Listening } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

// Interoperability: tokens from our issuer, obtained by three independent client libraries with
// both client_secret_basic and client_secret_post, then checked by auth0's
// express-oauth2-jwt-bearer in strict (RFC 9068) mode on a second Express app.

const REPORTS = 'https://reports.internal';
const AUDIT = 'https://audit.internal';
/** Unreserved URI characters that form-urlencoding (RFC 6749 §2.3.1) may still escape: `%2D %5F %2E %7E`. */
const SPECIAL_ID = 'svc-a_b.c~d';
const LIFETIME = 300;

type AuthMethod = 'client_secret_basic' | 'client_secret_post';
const METHODS: readonly AuthMethod[] = ['client_secret_basic', 'client_secret_post'];

interface Credentials {
  clientId: string;
  clientSecret: string;
}

interface TokenRequest {
  scope?: string;
  resource?: readonly string[];
}

/** A token as one library hands it back: its own result object, and the access token in it. */
interface Obtained {
  reported: unknown;
  accessToken: string;
}

/** A refused token request as the issuer sends it. */
interface ExpectedFailure {
  status: number;
  body: { error: string; error_description: string };
  /** The realm of the `WWW-Authenticate: Basic` challenge, when one is expected. */
  basicRealm: string | undefined;
}

/** One client library, driven the way its documentation shows. */
interface Library {
  name: string;
  getToken(issuer: TestIssuer, method: AuthMethod, credentials: Credentials, tokenRequest: TokenRequest): Promise<Obtained>;
  /** Asserts the library's result for a successful token response. */
  expectReported(obtained: Obtained, scope: string): void;
  /** Asserts the library's error for a refused token request, error code included. */
  expectFailure(err: unknown, expected: ExpectedFailure): Promise<void>;
}

const metadataUrl = (issuer: string): string => `${issuer}/.well-known/oauth-authorization-server`;

function tokenParameters(tokenRequest: TokenRequest): URLSearchParams {
  const params = new URLSearchParams();
  if (tokenRequest.scope !== undefined) params.set('scope', tokenRequest.scope);
  for (const resource of tokenRequest.resource ?? []) params.append('resource', resource);
  return params;
}

/** openid-client and oauth4webapi share their error classes (openid-client re-exports them). */
async function expectOauth4webapiFailure(err: unknown, expected: ExpectedFailure): Promise<void> {
  if (expected.basicRealm !== undefined) {
    // RFC 6749 §5.2 makes the issuer answer a failed Basic authentication with a Basic challenge;
    // oauth4webapi reports any challenge before it reads the body, so the error code is in the
    // unread response that the error carries.
    expect(err).to.be.instanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = err as oauth.WWWAuthenticateChallengeError;
    expect(challenge.code).to.equal(oauth.WWW_AUTHENTICATE_CHALLENGE);
    expect(challenge.status).to.equal(expected.status);
    expect(challenge.cause).to.deep.equal([{ scheme: 'basic', parameters: { realm: expected.basicRealm } }]);
    expect(challenge.response.headers.get('cache-control')).to.equal('no-store');
    expect(await challenge.response.json()).to.deep.equal(expected.body);
    return;
  }
  expect(err).to.be.instanceOf(oauth.ResponseBodyError);
  const bodyError = err as oauth.ResponseBodyError;
  expect(bodyError.code).to.equal(oauth.RESPONSE_BODY_ERROR);
  expect(bodyError.error).to.equal(expected.body.error);
  expect(bodyError.error_description).to.equal(expected.body.error_description);
  expect(bodyError.status).to.equal(expected.status);
  expect(bodyError.cause).to.deep.equal(expected.body);
  expect(bodyError.response.headers.get('www-authenticate')).to.equal(null);
}

function expectBearerResult(obtained: Obtained, scope: string): void {
  // oauth4webapi lower-cases token_type; spreading drops openid-client's non-enumerable helpers.
  expect({ ...(obtained.reported as object) }).to.deep.equal({
    access_token: obtained.accessToken, token_type: 'bearer', expires_in: LIFETIME, scope,
  });
}

const openidClient: Library = {
  name: 'openid-client',
  async getToken(issuer, method, { clientId, clientSecret }, tokenRequest) {
    const clientAuth = method === 'client_secret_basic' ? client.ClientSecretBasic(clientSecret) : client.ClientSecretPost(clientSecret);
    // discovery() given an issuer URL with a path looks for <issuer>/.well-known/openid-configuration
    // (default) or, with { algorithm: 'oauth2' }, for the RFC 8414 §3.1 location
    // <origin>/.well-known/oauth-authorization-server/oauth; our router serves neither, so it is
    // given the metadata document's own URL, which it fetches as is.
    const config = await client.discovery(new URL(metadataUrl(issuer.issuer)), clientId, undefined, clientAuth,
      { execute: [client.allowInsecureRequests] });
    const response = await client.clientCredentialsGrant(config, tokenParameters(tokenRequest));
    return { reported: response, accessToken: response.access_token };
  },
  expectReported: expectBearerResult,
  expectFailure: expectOauth4webapiFailure,
};

const oauth4webapi: Library = {
  name: 'oauth4webapi',
  async getToken(issuer, method, { clientId, clientSecret }, tokenRequest) {
    // processDiscoveryResponse() checks that the document names the issuer we expect.
    const discovered = await fetch(metadataUrl(issuer.issuer), { headers: { accept: 'application/json' } });
    const as = await oauth.processDiscoveryResponse(new URL(issuer.issuer), discovered);
    const oauthClient: oauth.Client = { client_id: clientId };
    const clientAuth = method === 'client_secret_basic' ? oauth.ClientSecretBasic(clientSecret) : oauth.ClientSecretPost(clientSecret);
    const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, clientAuth, tokenParameters(tokenRequest),
      { [oauth.allowInsecureRequests]: true });
    const result = await oauth.processClientCredentialsResponse(as, oauthClient, response);
    return { reported: result, accessToken: result.access_token };
  },
  expectReported: expectBearerResult,
  expectFailure: expectOauth4webapiFailure,
};

/** What @hapi/wreck (under simple-oauth2) throws for a 4xx answer: a Boom error. */
interface WreckResponseError {
  isBoom: boolean;
  message: string;
  output: { statusCode: number };
  data: { isResponseError: boolean; headers: Record<string, string | undefined>; payload: unknown };
}

const simpleOauth2: Library = {
  name: 'simple-oauth2',
  async getToken(issuer, method, { clientId, clientSecret }, tokenRequest) {
    const tokenUrl = new URL(issuer.tokenUrl);
    const credentials = new ClientCredentials({
      client: { id: clientId, secret: clientSecret },
      auth: { tokenHost: tokenUrl.origin, tokenPath: tokenUrl.pathname },
      options: { authorizationMethod: method === 'client_secret_basic' ? 'header' : 'body' },
    });
    const params: ClientCredentialTokenConfig = {};
    if (tokenRequest.scope !== undefined) params.scope = tokenRequest.scope;
    // An array becomes repeated resource parameters (querystring.stringify).
    if (tokenRequest.resource !== undefined) params.resource = [...tokenRequest.resource];
    const token = await credentials.getToken(params);
    return { reported: token.token, accessToken: token.token.access_token as string };
  },
  expectReported(obtained, scope) {
    // simple-oauth2 adds expires_at (now + expires_in) and keeps token_type as sent.
    const { expires_at: expiresAt, ...rest } = obtained.reported as Record<string, unknown>;
    expect(expiresAt).to.be.instanceOf(Date);
    expect(rest).to.deep.equal({ access_token: obtained.accessToken, token_type: 'Bearer', expires_in: LIFETIME, scope });
  },
  async expectFailure(err, expected) {
    const boom = err as WreckResponseError;
    expect(boom.isBoom).to.equal(true);
    expect(boom.message).to.equal(`Response Error: ${expected.status} ${expected.status === 401 ? 'Unauthorized' : 'Bad Request'}`);
    expect(boom.output.statusCode).to.equal(expected.status);
    expect(boom.data.isResponseError).to.equal(true);
    expect(boom.data.payload).to.deep.equal(expected.body);
    expect(boom.data.headers['www-authenticate']).to.equal(
      expected.basicRealm === undefined ? undefined : `Basic realm="${expected.basicRealm}"`);
    expect(boom.data.headers['cache-control']).to.equal('no-store');
  },
};

const LIBRARIES: readonly Library[] = [openidClient, oauth4webapi, simpleOauth2];

/** Decodes a compact JWS without verifying it (express-oauth2-jwt-bearer does the verifying). */
function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = token.split('.');
  const decode = (part: string | undefined): Record<string, unknown> =>
    JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  return { header: decode(header), payload: decode(payload) };
}

interface ExpectedClaims {
  issuer: TestIssuer;
  alg: SigningAlgorithm;
  clientId: string;
  audience: string | string[];
  scope: string;
}

/** RFC 9068 §2.1–2.2: header typ at+jwt with a published kid, and exactly the claims we issue. */
async function expectAccessToken(token: string, expected: ExpectedClaims): Promise<Record<string, unknown>> {
  const { header, payload } = decodeJwt(token);
  const jwks = await request(`${expected.issuer.issuer}/jwks.json`);
  const published = (jwks.json as { keys: { kid: string; alg: string }[] }).keys;
  expect(published.map((k) => [k.kid, k.alg])).to.deep.include([header.kid, expected.alg]);
  expect(header).to.deep.equal({ alg: expected.alg, typ: 'at+jwt', kid: header.kid });
  expect(payload.iat).to.be.a('number');
  expect(payload.jti).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(payload).to.deep.equal({
    iss: expected.issuer.issuer,
    sub: expected.clientId,
    aud: expected.audience,
    exp: (payload.iat as number) + LIFETIME,
    iat: payload.iat,
    jti: payload.jti,
    client_id: expected.clientId,
    scope: expected.scope,
  });
  return payload;
}

/** Flips one claim (a privilege escalation attempt) and keeps the original signature. */
function tamper(token: string, claims: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.');
  const changed = { ...decodeJwt(token).payload, ...claims };
  expect(Buffer.from(JSON.stringify(changed)).toString('base64url')).to.not.equal(payload);
  return `${header}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${signature}`;
}

/**
 * Registers a client and keeps registering it again (a bounded number of times) until the
 * generated secret holds both `-` and `_`, so every run sends a secret that form-urlencoding
 * changes (oauth4webapi escapes them as %2D and %5F in the Basic header).
 */
async function createClient(store: KnexStore, registration: ClientRegistration): Promise<Credentials> {
  for (let attempt = 0; attempt < 64; attempt++) {
    const { clientId, clientSecret } = await store.clients.create(registration);
    if (clientSecret.includes('-') && clientSecret.includes('_')) return { clientId, clientSecret };
    await store.clients.delete(clientId);
  }
  throw new Error('no generated secret held both "-" and "_" in 64 attempts');
}

/** What the issuer says about each request, to tell which authentication method a library used. */
interface IssuerLog {
  issued: TokenIssuedEvent[];
  failed: AuthenticationFailedEvent[];
}

function watch(issuer: TestIssuer): IssuerLog {
  const log: IssuerLog = { issued: [], failed: [] };
  issuer.as.events.on('token.issued', (event) => log.issued.push(event));
  issuer.as.events.on('client.authentication_failed', (event) => log.failed.push(event));
  return log;
}

function issuedFor(log: IssuerLog, jti: unknown): TokenIssuedEvent {
  const event = log.issued.find((e) => e.jti === jti);
  if (!event) throw new Error(`no token.issued event for jti ${String(jti)}`);
  return event;
}

interface ResourceServerSetup {
  issuer: string;
  audience: string;
  tokenSigningAlg: SigningAlgorithm;
  /** `metadata`: issuerBaseURL pointing at our metadata document; `jwks`: issuer plus jwksUri. */
  keys: 'metadata' | 'jwks';
  /** Path → required scope. */
  routes: Record<string, string>;
}

function verifiedPayload(req: Request): unknown {
  return (req as unknown as { auth?: { payload?: unknown } }).auth?.payload;
}

/** Renders express-oauth2-jwt-bearer's errors, which carry `status`, `code` and `headers`. */
const renderError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
  const e = err as { status?: number; code?: string; headers?: Record<string, string>; message?: string };
  res.status(e.status ?? 500).set(e.headers ?? {}).json({ error: e.code ?? 'server_error', error_description: e.message ?? '' });
};

/**
 * A resource server guarded by express-oauth2-jwt-bearer in strict mode.
 *
 * express-oauth2-jwt-bearer does not refuse http: its fetches pick http.get for http: URLs (both
 * discovery and, through jose 4, the JWKS); only its multi-issuer (mcd) mode rejects http issuers,
 * and only under NODE_ENV=production, which is not used here. With issuerBaseURL it tries
 * <issuer>/.well-known/openid-configuration and the RFC 8414 §3.1 path-inserted location, neither
 * of which our router serves; a URL that already holds /.well-known/ is fetched as is, so it is
 * given our metadata document's URL and takes `issuer` and `jwks_uri` from it. DPoP is switched
 * off: our tokens are plain bearer tokens, and its challenges then name Bearer only.
 */
async function startResourceServer(setup: ResourceServerSetup): Promise<Listening> {
  const app = express();
  const keys = setup.keys === 'metadata'
    ? { issuerBaseURL: metadataUrl(setup.issuer) }
    : { issuer: setup.issuer, jwksUri: `${setup.issuer}/jwks.json` };
  const guard = auth({ ...keys, audience: setup.audience, tokenSigningAlg: setup.tokenSigningAlg, strict: true, dpop: { enabled: false } });
  for (const [path, scope] of Object.entries(setup.routes)) {
    app.get(path, guard, requiredScopes(scope), (req, res) => {
      res.json(verifiedPayload(req));
    });
  }
  app.use(renderError);
  return listen(app);
}

function callApi(url: string, token: string) {
  return request(url, { headers: { authorization: `Bearer ${token}` } });
}

async function expectAccepted(url: string, token: string): Promise<void> {
  const res = await callApi(url, token);
  expect(res.status).to.equal(200);
  expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
  expect(res.headers['www-authenticate']).to.equal(undefined);
  expect(res.json).to.deep.equal(decodeJwt(token).payload);
}

async function expectInvalidToken(url: string, token: string, description: string): Promise<void> {
  const res = await callApi(url, token);
  expect(res.status).to.equal(401);
  expect(res.headers['www-authenticate']).to.equal(`Bearer realm="api", error="invalid_token", error_description="${description}"`);
  expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
  expect(res.json).to.deep.equal({ error: 'invalid_token', error_description: description });
}

async function expectInsufficientScope(url: string, token: string, required: string): Promise<void> {
  const res = await callApi(url, token);
  expect(res.status).to.equal(403);
  expect(res.headers['www-authenticate']).to.equal(
    `Bearer realm="api", error="insufficient_scope", error_description="Insufficient Scope", scope="${required}"`);
  expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
  expect(res.json).to.deep.equal({ error: 'insufficient_scope', error_description: 'Insufficient Scope' });
}

/** Closes what a describe block started, last first. */
function closer(): { add(close: () => Promise<void>): void; closeAll(): Promise<void> } {
  const closes: (() => Promise<void>)[] = [];
  return {
    add(close) { closes.push(close); },
    async closeAll() {
      for (const close of closes.splice(0).reverse()) await close();
    },
  };
}

describe('authorizationServer() with third-party clients and resource servers', () => {
  describe('with an ES256 issuer', () => {
    const opened = closer();
    let issuer: TestIssuer;
    let log: IssuerLog;
    let special: Credentials;
    let reportsApi: Listening;
    let auditApi: Listening;
    let realm: string;

    before(async () => {
      issuer = await startIssuer();
      opened.add(() => issuer.close());
      log = watch(issuer);
      realm = new URL(issuer.issuer).host;
      special = await createClient(issuer.store, {
        clientId: SPECIAL_ID, name: 'special characters', scopes: ['reports:read', 'reports:write', 'audit:read'],
        audiences: [REPORTS, AUDIT],
      });
      reportsApi = await startResourceServer({
        issuer: issuer.issuer, audience: REPORTS, tokenSigningAlg: 'ES256', keys: 'metadata',
        routes: { '/reports': 'reports:read', '/reports/export': 'reports:write' },
      });
      opened.add(() => reportsApi.close());
      auditApi = await startResourceServer({
        issuer: issuer.issuer, audience: AUDIT, tokenSigningAlg: 'ES256', keys: 'jwks', routes: { '/audit': 'audit:read' },
      });
      opened.add(() => auditApi.close());
    });

    after(() => opened.closeAll());

    it('serves metadata that openid-client discovery() and oauth4webapi processDiscoveryResponse() accept', async () => {
      const expected = {
        issuer: issuer.issuer,
        token_endpoint: issuer.tokenUrl,
        jwks_uri: `${issuer.issuer}/jwks.json`,
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
        revocation_endpoint: `${issuer.issuer}/revoke`,
        revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        revocation_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
        introspection_endpoint: `${issuer.issuer}/introspect`,
        introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        introspection_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
        response_types_supported: [],
        access_token_signing_alg_values_supported: ['ES256', 'RS256', 'PS256'],
      };
      const config = await client.discovery(new URL(metadataUrl(issuer.issuer)), special.clientId, undefined,
        client.ClientSecretBasic(special.clientSecret), { execute: [client.allowInsecureRequests] });
      expect(config.serverMetadata()).to.deep.equal(expected);
      const response = await fetch(metadataUrl(issuer.issuer), { headers: { accept: 'application/json' } });
      expect(await oauth.processDiscoveryResponse(new URL(issuer.issuer), response)).to.deep.equal(expected);
    });

    it('decodes the Basic credentials oauth4webapi form-urlencodes (%2D %5F %2E %7E, RFC 6749 §2.3.1)', async () => {
      const sent: (string | undefined)[] = [];
      const discovered = await fetch(metadataUrl(issuer.issuer), { headers: { accept: 'application/json' } });
      const as = await oauth.processDiscoveryResponse(new URL(issuer.issuer), discovered);
      const oauthClient: oauth.Client = { client_id: SPECIAL_ID };
      const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.ClientSecretBasic(special.clientSecret),
        new URLSearchParams({ scope: 'reports:read' }), {
          [oauth.allowInsecureRequests]: true,
          [oauth.customFetch]: (url, options) => {
            sent.push(options.headers.authorization);
            return fetch(url, options);
          },
        });
      const escape = (value: string): string =>
        value.replace(/[-_.~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
      expect(sent).to.deep.equal([`Basic ${Buffer.from(`${escape(SPECIAL_ID)}:${escape(special.clientSecret)}`).toString('base64')}`]);
      expect(escape(special.clientSecret)).to.match(/%2D/).and.match(/%5F/);
      const result = await oauth.processClientCredentialsResponse(as, oauthClient, response);
      expect(decodeJwt(result.access_token).payload.client_id).to.equal(SPECIAL_ID);
    });

    for (const library of LIBRARIES) {
      for (const method of METHODS) {
        describe(`${library.name} with ${method}`, () => {
          it(`obtains a token for ${SPECIAL_ID} that express-oauth2-jwt-bearer accepts with 200`, async () => {
            const obtained = await library.getToken(issuer, method, special, { scope: 'reports:read' });
            library.expectReported(obtained, 'reports:read');
            const payload = await expectAccessToken(obtained.accessToken, {
              issuer, alg: 'ES256', clientId: SPECIAL_ID, audience: REPORTS, scope: 'reports:read',
            });
            const event = issuedFor(log, payload.jti);
            expect(event).to.deep.equal({
              clientId: SPECIAL_ID, scopes: ['reports:read'], audience: [REPORTS], expiresIn: LIFETIME,
              jti: payload.jti, kid: decodeJwt(obtained.accessToken).header.kid, method,
            });
            await expectAccepted(`${reportsApi.url}/reports`, obtained.accessToken);
          });

          it('gets 403 insufficient_scope from express-oauth2-jwt-bearer for a scope the token lacks', async () => {
            const { accessToken } = await library.getToken(issuer, method, special, { scope: 'reports:read' });
            await expectInsufficientScope(`${reportsApi.url}/reports/export`, accessToken, 'reports:write');
          });

          it('gets 401 invalid_token from express-oauth2-jwt-bearer for a tampered token', async () => {
            const { accessToken } = await library.getToken(issuer, method, special, { scope: 'reports:read' });
            const forged = tamper(accessToken, { scope: 'reports:read reports:write' });
            await expectInvalidToken(`${reportsApi.url}/reports/export`, forged, 'signature verification failed');
          });

          it('obtains a token for a second allowed audience with the resource parameter (RFC 8707)', async () => {
            const { accessToken } = await library.getToken(issuer, method, special, { scope: 'audit:read', resource: [AUDIT] });
            await expectAccessToken(accessToken, { issuer, alg: 'ES256', clientId: SPECIAL_ID, audience: AUDIT, scope: 'audit:read' });
            await expectAccepted(`${auditApi.url}/audit`, accessToken);
            await expectInvalidToken(`${reportsApi.url}/reports`, accessToken, "Unexpected 'aud' value");
          });

          it('obtains a token for both audiences with a repeated resource parameter', async () => {
            const scope = 'reports:read audit:read';
            const obtained = await library.getToken(issuer, method, special, { scope, resource: [REPORTS, AUDIT] });
            library.expectReported(obtained, scope);
            await expectAccessToken(obtained.accessToken, {
              issuer, alg: 'ES256', clientId: SPECIAL_ID, audience: [REPORTS, AUDIT], scope,
            });
            await expectAccepted(`${reportsApi.url}/reports`, obtained.accessToken);
            await expectAccepted(`${auditApi.url}/audit`, obtained.accessToken);
          });

          it('reports 401 invalid_client for a wrong secret', async () => {
            let caught: unknown;
            try {
              await library.getToken(issuer, method, { clientId: SPECIAL_ID, clientSecret: generateClientSecret() }, { scope: 'reports:read' });
            } catch (err) {
              caught = err;
            }
            expect(caught, 'the token request should fail').to.not.equal(undefined);
            await library.expectFailure(caught, {
              status: 401,
              body: { error: 'invalid_client', error_description: 'client authentication failed' },
              basicRealm: method === 'client_secret_basic' ? realm : undefined,
            });
            // The id arrived intact (form-decoded) on the failure path too.
            const failure = log.failed.at(-1);
            expect(failure && { clientId: failure.clientId, reason: failure.reason, method: failure.method })
              .to.deep.equal({ clientId: SPECIAL_ID, reason: 'invalid_secret', method });
          });

          it('reports 400 invalid_scope for a scope the client may not have', async () => {
            let caught: unknown;
            try {
              await library.getToken(issuer, method, special, { scope: 'reports:read reports:delete' });
            } catch (err) {
              caught = err;
            }
            expect(caught, 'the token request should fail').to.not.equal(undefined);
            await library.expectFailure(caught, {
              status: 400,
              body: { error: 'invalid_scope', error_description: 'the requested scope exceeds the scope granted to the client' },
              basicRealm: undefined,
            });
          });
        });
      }
    }
  });

  describe('with "scopePolicy: downscope"', () => {
    const opened = closer();
    let issuer: TestIssuer;
    let reader: Credentials;
    let reportsApi: Listening;

    before(async () => {
      issuer = await startIssuer({ scopePolicy: 'downscope' });
      opened.add(() => issuer.close());
      reader = await createClient(issuer.store, {
        clientId: SPECIAL_ID, name: 'reader', scopes: ['reports:read'], audiences: [REPORTS],
      });
      reportsApi = await startResourceServer({
        issuer: issuer.issuer, audience: REPORTS, tokenSigningAlg: 'ES256', keys: 'jwks',
        routes: { '/reports': 'reports:read', '/reports/export': 'reports:write' },
      });
      opened.add(() => reportsApi.close());
    });

    after(() => opened.closeAll());

    for (const library of LIBRARIES) {
      for (const method of METHODS) {
        it(`gives ${library.name} with ${method} the allowed part of the scope, which express-oauth2-jwt-bearer enforces`, async () => {
          const obtained = await library.getToken(issuer, method, reader, { scope: 'reports:read reports:write' });
          library.expectReported(obtained, 'reports:read');
          await expectAccessToken(obtained.accessToken, {
            issuer, alg: 'ES256', clientId: SPECIAL_ID, audience: REPORTS, scope: 'reports:read',
          });
          await expectAccepted(`${reportsApi.url}/reports`, obtained.accessToken);
          await expectInsufficientScope(`${reportsApi.url}/reports/export`, obtained.accessToken, 'reports:write');
        });
      }
    }
  });

  for (const alg of ['RS256', 'PS256'] as const) {
    describe(`with "signingAlgorithm: ${alg}"`, () => {
      const opened = closer();
      let issuer: TestIssuer;
      let credentials: Credentials;
      let viaMetadata: Listening;
      let viaJwks: Listening;
      let expectingEs256: Listening;

      before(async () => {
        issuer = await startIssuer({ signingAlgorithm: alg });
        opened.add(() => issuer.close());
        credentials = await createClient(issuer.store, {
          clientId: SPECIAL_ID, name: 'rsa', scopes: ['reports:read'], audiences: [REPORTS],
        });
        const base = { issuer: issuer.issuer, audience: REPORTS, routes: { '/reports': 'reports:read' } };
        viaMetadata = await startResourceServer({ ...base, tokenSigningAlg: alg, keys: 'metadata' });
        opened.add(() => viaMetadata.close());
        viaJwks = await startResourceServer({ ...base, tokenSigningAlg: alg, keys: 'jwks' });
        opened.add(() => viaJwks.close());
        expectingEs256 = await startResourceServer({ ...base, tokenSigningAlg: 'ES256', keys: 'jwks' });
        opened.add(() => expectingEs256.close());
      });

      after(() => opened.closeAll());

      for (const library of LIBRARIES) {
        it(`issues ${alg} tokens to ${library.name} that express-oauth2-jwt-bearer accepts with tokenSigningAlg ${alg}`, async () => {
          const obtained = await library.getToken(issuer, 'client_secret_basic', credentials, { scope: 'reports:read' });
          library.expectReported(obtained, 'reports:read');
          await expectAccessToken(obtained.accessToken, { issuer, alg, clientId: SPECIAL_ID, audience: REPORTS, scope: 'reports:read' });
          await expectAccepted(`${viaMetadata.url}/reports`, obtained.accessToken);
          await expectAccepted(`${viaJwks.url}/reports`, obtained.accessToken);
        });
      }

      it(`has its ${alg} tokens refused with 401 invalid_token by a resource server expecting ES256`, async () => {
        const { accessToken } = await openidClient.getToken(issuer, 'client_secret_post', credentials, { scope: 'reports:read' });
        await expectInvalidToken(`${expectingEs256.url}/reports`, accessToken, "Unexpected 'alg' value");
      });

      it(`has a tampered ${alg} token refused with 401 invalid_token`, async () => {
        const { accessToken } = await oauth4webapi.getToken(issuer, 'client_secret_post', credentials, { scope: 'reports:read' });
        await expectInvalidToken(`${viaJwks.url}/reports`, tamper(accessToken, { sub: 'someone-else' }), 'signature verification failed');
      });
    });
  }
});
