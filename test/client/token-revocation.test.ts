import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import express from 'express';
import { memoryTokenCache, TokenRequestError, tokenClient, type TokenClient, type TokenClientOptions } from '../../lib/index.js';
import { basic, listen, postForm } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { rejectionOf } from '../support/rejection.js';

const REPORTS = 'https://reports.internal';

describe('tokenClient().revoke()', () => {
  let issuer: TestIssuer;
  const secrets: Record<string, string> = {};
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let requests: string[];

  before(async () => {
    issuer = await startIssuer({ rateLimit: false });
    const { clients } = issuer.store;
    for (const [clientId, method] of [['basic', 'client_secret_basic'], ['post', 'client_secret_post']] as const) {
      secrets[clientId] = (await clients.create({ clientId, name: clientId, scopes: ['reports:read'], audiences: [REPORTS], tokenEndpointAuthMethod: method })).clientSecret;
    }
    secrets.inspector = (await clients.create({ clientId: 'inspector', name: 'inspector', scopes: ['m2m:introspect'], audiences: [REPORTS] })).clientSecret;
    await clients.create({
      clientId: 'keyed', name: 'keyed', scopes: ['reports:read'], audiences: [REPORTS],
      jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'keyed-1' }] },
    });
  });
  after(() => issuer.close());
  beforeEach(() => { requests = []; });

  /** A client of the test issuer that records the URLs it requests. */
  function create(options: Partial<TokenClientOptions> = {}): TokenClient {
    const credentials = options.privateKey ? {} : { clientSecret: secrets[options.clientId ?? 'basic'] as string };
    return tokenClient({
      issuer: issuer.issuer, clientId: 'basic', ...credentials, scope: 'reports:read', retry: false,
      fetch: (input, init) => { requests.push(String(input)); return fetch(input, init); },
      ...options,
    } as TokenClientOptions);
  }

  /** What the issuer's introspection endpoint says of `token`. */
  async function isActive(token: string): Promise<boolean> {
    const res = await postForm(`${issuer.issuer}/introspect`, { token }, { authorization: basic('inspector', secrets.inspector as string) });
    return (res.json as { active: boolean }).active;
  }

  it('revokes the current token at the revocation_endpoint of the issuer\'s metadata, and gets a new one next', async () => {
    const client = create();
    const { accessToken } = await client.getToken();
    expect(await isActive(accessToken)).to.equal(true);
    await client.revoke();
    expect(await isActive(accessToken)).to.equal(false);
    expect(requests.filter((url) => !url.includes('/.well-known/'))).to.deep.equal([issuer.tokenUrl, `${issuer.issuer}/revoke`]);
    const next = await client.getToken();
    expect(next.accessToken).not.to.equal(accessToken);
    expect(await isActive(next.accessToken)).to.equal(true);
  });

  it('posts to revocationUrl, authenticated with client_secret_post or private_key_jwt as token requests are', async () => {
    const posted = create({ issuer: undefined, tokenUrl: issuer.tokenUrl, revocationUrl: `${issuer.issuer}/revoke`, clientId: 'post', authMethod: 'client_secret_post' });
    const keyed = create({ issuer: undefined, tokenUrl: issuer.tokenUrl, revocationUrl: `${issuer.issuer}/revoke`, clientId: 'keyed', privateKey, keyId: 'keyed-1' });
    for (const client of [posted, keyed]) {
      const { accessToken } = await client.getToken();
      await client.revoke();
      expect(await isActive(accessToken), client.clientId).to.equal(false);
    }
  });

  it('drops the token from a shared cache, so that no other client sharing it is handed the token', async () => {
    const cache = memoryTokenCache();
    const [first, second] = [create({ cache }), create({ cache })];
    const { accessToken } = await first.getToken();
    await first.revoke();
    expect((await second.getToken()).accessToken).not.to.equal(accessToken);
  });

  it('does nothing when the client holds no token', async () => {
    await create().revoke();
    expect(requests).to.deep.equal([]);
  });

  it('drops an expired token without asking the issuer', async () => {
    let now = Date.now();
    const client = create({ issuer: undefined, tokenUrl: issuer.tokenUrl, revocationUrl: `${issuer.issuer}/revoke`, clock: () => now });
    const { accessToken } = await client.getToken();
    now += 400_000;
    await client.revoke();
    expect(requests).to.deep.equal([issuer.tokenUrl]);
    now = Date.now();
    expect((await client.getToken()).accessToken).not.to.equal(accessToken);
  });

  it('rejects with discovery_failed when no revocation endpoint is known, the token dropped all the same', async () => {
    const client = create({ issuer: undefined, tokenUrl: issuer.tokenUrl });
    const { accessToken } = await client.getToken();
    const err = await rejectionOf(client.revoke(), TokenRequestError);
    expect(err).to.deep.include({
      code: 'ERR_M2M_TOKEN_REQUEST', reason: 'discovery_failed', tokenUrl: issuer.tokenUrl, clientId: 'basic', retryable: false,
      message: 'no revocation endpoint is known: give revocationUrl, or an issuer whose metadata names one',
    });
    expect(await isActive(accessToken)).to.equal(true);
    expect((await client.getToken()).accessToken).not.to.equal(accessToken);
  });

  it('rejects with the issuer\'s refusal, never holding the token or the secret', async () => {
    const created = await issuer.store.clients.create({ clientId: 'fading', name: 'fading', scopes: ['reports:read'], audiences: [REPORTS] });
    secrets.fading = created.clientSecret;
    const client = create({ issuer: undefined, tokenUrl: issuer.tokenUrl, revocationUrl: `${issuer.issuer}/revoke`, clientId: 'fading' });
    const { accessToken } = await client.getToken();
    // The secret stops working at once: the issuer answers 401 invalid_client.
    await issuer.store.clients.rotateSecret('fading', { gracePeriod: 0 });
    const refused = await rejectionOf(client.revoke(), TokenRequestError);
    expect(refused).to.deep.include({
      reason: 'oauth_error', error: 'invalid_client', status: 401, tokenUrl: `${issuer.issuer}/revoke`, clientId: 'fading', retryable: false,
      message: `revocation request to ${issuer.issuer}/revoke failed (HTTP 401): invalid_client: client authentication failed`,
    });
    expect(JSON.stringify({ ...refused, message: refused.message })).not.to.include(accessToken).and.not.to.include(created.clientSecret);
  });

  it('rejects with http_error for an answer that is no OAuth error', async () => {
    const client = create({ issuer: undefined, tokenUrl: issuer.tokenUrl, revocationUrl: `${issuer.issuer}/nowhere` });
    await client.getToken();
    const err = await rejectionOf(client.revoke(), TokenRequestError);
    expect(err).to.deep.include({ reason: 'http_error', status: 404, retryable: false });
    expect(err.message).to.equal(`revocation request to ${issuer.issuer}/nowhere failed (HTTP 404): the revocation endpoint answered without an OAuth error`);
  });

  it('redacts the token and the secret from what a server says back', async () => {
    const echo = express();
    echo.use(express.urlencoded({ extended: false }));
    echo.post('/revoke', (req, res) => {
      const { token } = req.body as { token: string };
      res.status(400).json({ error: 'invalid_request', error_description: `cannot revoke ${token} for ${req.headers.authorization ?? ''}` });
    });
    const server = await listen(echo);
    try {
      const client = create({ issuer: undefined, tokenUrl: issuer.tokenUrl, revocationUrl: `${server.url}/revoke` });
      const { accessToken } = await client.getToken();
      const err = await rejectionOf(client.revoke(), TokenRequestError);
      expect(err).to.deep.include({ reason: 'oauth_error', error: 'invalid_request', status: 400, description: 'cannot revoke [redacted] for Basic [redacted]' });
      expect(err.message).to.equal(`revocation request to ${server.url}/revoke failed (HTTP 400): invalid_request: cannot revoke [redacted] for Basic [redacted]`);
      expect(err.message).not.to.include(accessToken);
    } finally {
      await server.close();
    }
  });
});
