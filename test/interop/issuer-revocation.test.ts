import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { tokenClient, type TokenRevokedEvent } from '../../lib/index.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

// Interoperability of revocation (RFC 7009) and introspection (RFC 7662): openid-client (v6's
// tokenRevocation and tokenIntrospection, found through discovery) and oauth4webapi revoke and
// introspect our issuer's tokens with client_secret_basic, client_secret_post and private_key_jwt;
// what one library revokes, the other's introspection calls inactive.

const REPORTS = 'https://reports.internal';
type Method = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
const METHODS: readonly Method[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];

describe('authorizationServer() revocation and introspection with openid-client and oauth4webapi', () => {
  let issuer: TestIssuer;
  const secrets: Record<string, string> = {};
  let cryptoKey: webcrypto.CryptoKey;
  const revoked: TokenRevokedEvent[] = [];

  const metadataUrl = () => new URL(`${issuer.issuer}/.well-known/oauth-authorization-server`);

  before(async () => {
    issuer = await startIssuer({ rateLimit: false });
    issuer.as.events.on('token.revoked', (e) => revoked.push(e));
    const { clients } = issuer.store;
    const base = { scopes: ['reports:read', 'm2m:introspect'], audiences: [REPORTS], defaultScopes: ['reports:read'] };
    secrets.client_secret_basic = (await clients.create({ ...base, clientId: 'basic', name: 'basic', tokenEndpointAuthMethod: 'client_secret_basic' })).clientSecret;
    secrets.client_secret_post = (await clients.create({ ...base, clientId: 'post', name: 'post', tokenEndpointAuthMethod: 'client_secret_post' })).clientSecret;
    secrets.plain = (await clients.create({ clientId: 'plain', name: 'plain', scopes: ['reports:read'], audiences: [REPORTS] })).clientSecret;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    cryptoKey = await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    await clients.create({ ...base, clientId: 'keyed', name: 'keyed', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'keyed-1', use: 'sig' }] } });
  });
  after(() => issuer.close());

  const idOf = (method: Method): string => ({ client_secret_basic: 'basic', client_secret_post: 'post', private_key_jwt: 'keyed' })[method];

  /** openid-client's configuration for `method`'s client, from the issuer's metadata. */
  function openidConfig(method: Method | 'plain'): Promise<client.Configuration> {
    const auth = method === 'private_key_jwt' ? client.PrivateKeyJwt({ key: cryptoKey, kid: 'keyed-1' })
      : method === 'client_secret_post' ? client.ClientSecretPost(secrets[method])
        : client.ClientSecretBasic(secrets[method === 'plain' ? 'plain' : 'client_secret_basic']);
    return client.discovery(metadataUrl(), method === 'plain' ? 'plain' : idOf(method), undefined, auth, { execute: [client.allowInsecureRequests] });
  }

  /** oauth4webapi's pieces for `method`'s client. */
  async function oauthParts(method: Method): Promise<{ as: oauth.AuthorizationServer; oauthClient: oauth.Client; auth: oauth.ClientAuth }> {
    const as = await oauth.processDiscoveryResponse(new URL(issuer.issuer), await fetch(metadataUrl()));
    const auth = method === 'private_key_jwt' ? oauth.PrivateKeyJwt({ key: cryptoKey, kid: 'keyed-1' })
      : method === 'client_secret_post' ? oauth.ClientSecretPost(secrets[method] as string) : oauth.ClientSecretBasic(secrets[method] as string);
    return { as, oauthClient: { client_id: idOf(method) }, auth };
  }

  const options = { [oauth.allowInsecureRequests]: true };

  it('finds both endpoints, and the methods they take, through openid-client\'s discovery', async () => {
    const metadata = (await openidConfig('client_secret_basic')).serverMetadata();
    expect({
      revocation_endpoint: metadata.revocation_endpoint, introspection_endpoint: metadata.introspection_endpoint,
      revocation_endpoint_auth_methods_supported: metadata.revocation_endpoint_auth_methods_supported,
      introspection_endpoint_auth_methods_supported: metadata.introspection_endpoint_auth_methods_supported,
    }).to.deep.equal({
      revocation_endpoint: `${issuer.issuer}/revoke`, introspection_endpoint: `${issuer.issuer}/introspect`,
      revocation_endpoint_auth_methods_supported: [...METHODS], introspection_endpoint_auth_methods_supported: [...METHODS],
    });
  });

  for (const method of METHODS) {
    describe(`with ${method}`, () => {
      it('openid-client introspects an active token and gets its claims, then revokes it; oauth4webapi then calls it inactive', async () => {
        const config = await openidConfig(method);
        const { access_token: token } = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
        const claims = jwt.decode(token) as Record<string, unknown>;
        expect({ ...await client.tokenIntrospection(config, token) }).to.deep.equal({
          active: true, scope: 'reports:read', client_id: idOf(method), sub: idOf(method), aud: REPORTS, iss: issuer.issuer,
          exp: claims.exp, iat: claims.iat, jti: claims.jti, token_type: 'Bearer',
        });
        await client.tokenRevocation(config, token);
        expect(revoked.at(-1)).to.deep.include({ clientId: idOf(method), jti: claims.jti });
        const { as, oauthClient, auth } = await oauthParts(method);
        const response = await oauth.introspectionRequest(as, oauthClient, auth, token, options);
        expect(await oauth.processIntrospectionResponse(as, oauthClient, response)).to.deep.equal({ active: false });
      });

      it('oauth4webapi revokes a token with token_type_hint; openid-client then calls it inactive', async () => {
        const { as, oauthClient, auth } = await oauthParts(method);
        const grant = await oauth.clientCredentialsGrantRequest(as, oauthClient, auth, new URLSearchParams({ scope: 'reports:read' }), options);
        const { access_token: token } = await oauth.processClientCredentialsResponse(as, oauthClient, grant);
        const response = await oauth.revocationRequest(as, oauthClient, auth, token, { ...options, additionalParameters: { token_type_hint: 'access_token' } });
        expect(await oauth.processRevocationResponse(response)).to.equal(undefined);
        expect({ ...await client.tokenIntrospection(await openidConfig(method), token) }).to.deep.equal({ active: false });
      });
    });
  }

  it('answers openid-client\'s revocation of someone else\'s token with success, and revokes nothing', async () => {
    const owner = await openidConfig('client_secret_post');
    const { access_token: token } = await client.clientCredentialsGrant(owner, { scope: 'reports:read' });
    await client.tokenRevocation(await openidConfig('client_secret_basic'), token, { token_type_hint: 'refresh_token' });
    expect((await client.tokenIntrospection(owner, token)).active).to.equal(true);
  });

  it('calls a token our own tokenClient().revoke() gave back inactive in openid-client', async () => {
    const caller = tokenClient({ issuer: issuer.issuer, clientId: 'plain', clientSecret: secrets.plain as string, scope: 'reports:read' });
    const { accessToken } = await caller.getToken();
    const inspector = await openidConfig('client_secret_basic');
    expect((await client.tokenIntrospection(inspector, accessToken)).active).to.equal(true);
    await caller.revoke();
    expect({ ...await client.tokenIntrospection(inspector, accessToken) }).to.deep.equal({ active: false });
  });

  it('refuses openid-client\'s introspection by a client without the permission with 403 unauthorized_client', async () => {
    const plain = await openidConfig('plain');
    const { access_token: token } = await client.clientCredentialsGrant(plain, { scope: 'reports:read' });
    const err = await client.tokenIntrospection(plain, token).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(client.ResponseBodyError);
    expect(err).to.deep.include({
      error: 'unauthorized_client', status: 403, error_description: 'the client may not introspect tokens: it lacks the m2m:introspect scope',
    });
  });

  it('refuses openid-client\'s revocation with a wrong secret with 401 invalid_client', async () => {
    const wrong = await client.discovery(metadataUrl(), 'basic', undefined, client.ClientSecretBasic('m2m_cs_wrong'), { execute: [client.allowInsecureRequests] });
    const err = await client.tokenRevocation(wrong, 'whatever').then(() => undefined, (e: unknown) => e);
    // The Basic challenge comes first in openid-client's error; the body is the issuer's invalid_client.
    expect(err).to.be.instanceOf(client.WWWAuthenticateChallengeError);
    const challenge = err as client.WWWAuthenticateChallengeError;
    expect([challenge.status, challenge.cause.map((c) => [c.scheme, c.parameters.realm])]).to.deep.equal([401, [['basic', new URL(issuer.issuer).host]]]);
    expect(await challenge.response.json()).to.deep.equal({ error: 'invalid_client', error_description: 'client authentication failed' });
  });
});
