import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import type { AuthenticationFailedEvent } from '../../lib/index.js';
import { basic, postForm, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import {
  assertion, assertionClaims, collect, expectInvalidClient, JSON_NO_STORE, postAssertion, stableHeaders,
} from './private-key-jwt-fixtures.js';
import { makeKey, mint, nowSeconds, segment } from './resource-server-fixtures.js';

const REGISTRATION = { name: 'archiver', scopes: ['reports:read'], audiences: ['https://reports.internal'] };
const ID = 'archiver';

describe('POST /token with a bad client assertion', () => {
  let issuer: TestIssuer;
  const failed: AuthenticationFailedEvent[] = [];
  let secretClient: { clientId: string; clientSecret: string };
  let before_: unknown;
  const es = makeKey('ES256', { kid: 'es-1' });
  const rs = makeKey('RS256', { kid: 'rs-1', publishAlg: false });

  /** What a refused request must leave as it was: every client, secret and used jti. */
  async function snapshot(): Promise<unknown> {
    const { knex, prefix } = issuer.db;
    return {
      clients: await knex(`${prefix}clients`).select('*').orderBy('client_id'),
      secrets: await knex(`${prefix}client_secrets`).select('id', 'secret_hash', 'expires_at').orderBy('id'),
      used: await knex(`${prefix}used_assertions`).select('*').orderBy('id'),
    };
  }

  before(async () => {
    issuer = await startIssuer({ rateLimit: false });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: ID, jwks: { keys: [es.jwk, rs.jwk] } });
    secretClient = await issuer.store.clients.create({ ...REGISTRATION, clientId: 'reporter' });
    await issuer.as.ready();
    issuer.as.events.on('client.authentication_failed', (event) => failed.push(event));
    before_ = await snapshot();
  });
  beforeEach(() => {
    failed.length = 0;
  });
  after(async () => {
    // No refused request may have recorded a jti or changed a row.
    expect(await snapshot()).to.deep.equal(before_);
    await issuer.close();
  });

  /** Asserts 401 invalid_client and the one event that says why, never holding the assertion. */
  function expectRefusal(res: ReadResponse, reason: string, detail: string | undefined, sent: string, clientId: string | undefined): void {
    expectInvalidClient(res);
    const last = failed.at(-1);
    expect(last).to.deep.equal({ clientId, reason, method: 'private_key_jwt', address: '127.0.0.1', ...(detail === undefined ? {} : { detail }) });
    const text = JSON.stringify(failed);
    for (const part of sent.split('.')) if (part.length >= 8) expect(text).not.to.include(part);
  }

  /** Asserts an RFC 6749 §5.2 400 invalid_request. */
  function expectInvalidRequest(res: ReadResponse, description: string): void {
    expect([res.status, stableHeaders(res), res.json]).to.deep.equal([400, JSON_NO_STORE, { error: 'invalid_request', error_description: description }]);
    expect(failed).to.deep.equal([]);
  }

  const tokenUrl = (): string => issuer.tokenUrl;

  describe('the request', () => {
    it('refuses a repeated client_assertion with 400 invalid_request', async () => {
      const one = assertion(es, ID, tokenUrl());
      expectInvalidRequest(await postAssertion(tokenUrl(), one, { client_assertion: [one, one] }), 'the client_assertion parameter is repeated');
    });

    it('refuses a repeated client_assertion_type with 400 invalid_request', async () => {
      const type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
      expectInvalidRequest(await postAssertion(tokenUrl(), assertion(es, ID, tokenUrl()), { client_assertion_type: [type, type] }),
        'the client_assertion_type parameter is repeated');
    });

    it('refuses an assertion without client_assertion_type, and the type without an assertion, with 400', async () => {
      const res = await postAssertion(tokenUrl(), assertion(es, ID, tokenUrl()), { client_assertion_type: [] });
      expectInvalidRequest(res, 'client_assertion was sent without client_assertion_type');
      expectInvalidRequest(await postForm(tokenUrl(), { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }),
        'client_assertion_type was sent without client_assertion');
    });

    it('refuses an assertion sent with a client_secret, or with a Basic header, with 400', async () => {
      const one = assertion(es, ID, tokenUrl());
      expectInvalidRequest(await postAssertion(tokenUrl(), one, { client_id: ID, client_secret: secretClient.clientSecret }),
        'client authentication must use exactly one method, not both client_secret and client_assertion');
      expectInvalidRequest(await postAssertion(tokenUrl(), one, {}, { authorization: basic(secretClient.clientId, secretClient.clientSecret) }),
        'client authentication must use exactly one method, not both the Authorization header and client_assertion');
    });

    it('refuses a client_id that is not the assertion\'s sub with 400', async () => {
      expectInvalidRequest(await postAssertion(tokenUrl(), assertion(es, ID, tokenUrl()), { client_id: 'reporter' }),
        'client_id in the body differs from the sub of the client assertion');
    });

    it('refuses another assertion type with 401 invalid_client and a Basic challenge, as an unsupported method', async () => {
      const res = await postAssertion(tokenUrl(), assertion(es, ID, tokenUrl()), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' });
      expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401,
        { 'www-authenticate': `Basic realm="${new URL(issuer.url).host}"`, ...JSON_NO_STORE },
        { error: 'invalid_client', error_description: 'client authentication failed' }]);
      expect(failed).to.deep.equal([{ clientId: ID, reason: 'unsupported_method', method: undefined, address: '127.0.0.1' }]);
    });

    it('answers an assertion over the body limit with 413 before reading it', async () => {
      const res = await postAssertion(tokenUrl(), `${assertion(es, ID, tokenUrl())}${'A'.repeat(5000)}`);
      expect([res.status, res.json]).to.deep.equal([413, { error: 'invalid_request', error_description: 'the request body exceeds 4096 bytes' }]);
    });
  });

  describe('the assertion', () => {
    it('refuses something that is not a JWT, naming the client_id given beside it', async () => {
      const res = await postAssertion(tokenUrl(), 'not-a-jwt', { client_id: ID });
      expectRefusal(res, 'malformed_credentials', 'the client assertion is not a signed JWT in compact form', 'not-a-jwt', ID);
    });

    it('refuses segments that are not JSON objects', async () => {
      const sent = `${segment('not json')}.${segment([1, 2])}.${segment('sig')}`;
      expectRefusal(await postAssertion(tokenUrl(), sent), 'malformed_credentials', 'the client assertion header or claims are not JSON objects', sent, undefined);
    });

    it('refuses an assertion longer than 3072 characters that fits in the body', async () => {
      const sent = assertion(es, ID, tokenUrl(), { padding: 'x'.repeat(2600) });
      expect(sent.length).to.be.within(3073, 3900);
      expectRefusal(await postAssertion(tokenUrl(), sent), 'malformed_credentials', 'the client assertion is longer than 3072 characters', sent, undefined);
    });

    it('refuses alg none without a signature', async () => {
      const sent = `${segment({ alg: 'none' })}.${segment(assertionClaims(ID, tokenUrl()))}.`;
      expectRefusal(await postAssertion(tokenUrl(), sent), 'malformed_credentials', 'the client assertion is not a signed JWT in compact form', sent, undefined);
    });

    it('refuses alg none with something in the signature place', async () => {
      const sent = `${segment({ alg: 'none' })}.${segment(assertionClaims(ID, tokenUrl()))}.AAAA`;
      expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion signing algorithm is not accepted', sent, ID);
    });

    it('refuses HS256 signed with the client\'s public key as the HMAC secret (algorithm confusion)', async () => {
      const input = `${segment({ alg: 'HS256', kid: 'rs-1' })}.${segment(assertionClaims(ID, tokenUrl()))}`;
      for (const secret of [rs.publicKey.export({ format: 'pem', type: 'spki' }), rs.publicKey.export({ format: 'der', type: 'spki' })]) {
        const sent = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
        expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion signing algorithm is not accepted', sent, ID);
      }
    });

    it('refuses an assertion with critical header extensions', async () => {
      const sent = assertion(es, ID, tokenUrl(), {}, { crit: ['exp'] });
      expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion header has critical extensions', sent, ID);
    });

    // Times are read when each test runs, not when the file loads: the suite may run for minutes.
    const claimCases: [string, () => Record<string, unknown>, string, string][] = [
      ['an expired assertion', () => ({ exp: nowSeconds() - 120, iat: nowSeconds() - 180 }), 'expired_assertion', 'the client assertion has expired'],
      ['an assertion expiring more than 300 seconds ahead', () => ({ exp: nowSeconds() + 3600 }), 'invalid_assertion', 'the client assertion expires more than 300 seconds ahead'],
      ['an assertion without exp', () => ({ exp: undefined }), 'invalid_assertion', 'the client assertion has no exp'],
      ['an assertion with a string exp', () => ({ exp: String(nowSeconds() + 60) }), 'invalid_assertion', 'the client assertion has no exp'],
      ['an assertion not valid yet', () => ({ nbf: nowSeconds() + 120 }), 'invalid_assertion', 'the client assertion is not valid yet'],
      ['an assertion issued in the future', () => ({ iat: nowSeconds() + 120 }), 'invalid_assertion', 'the client assertion was issued in the future'],
      ['an assertion without jti', () => ({ jti: undefined }), 'invalid_assertion', 'the client assertion has no jti of 1 to 256 characters'],
      ['an assertion with a 257-character jti', () => ({ jti: 'j'.repeat(257) }), 'invalid_assertion', 'the client assertion has no jti of 1 to 256 characters'],
      ['an assertion whose iss is not its sub', () => ({ iss: 'reporter' }), 'invalid_assertion', 'the client assertion iss differs from its sub'],
      ['an assertion without iss', () => ({ iss: undefined }), 'invalid_assertion', 'the client assertion iss differs from its sub'],
    ];
    for (const [what, extra, reason, detail] of claimCases) {
      it(`refuses ${what}`, async () => {
        const sent = assertion(es, ID, tokenUrl(), extra());
        expectRefusal(await postAssertion(tokenUrl(), sent), reason, detail, sent, ID);
      });
    }

    it('refuses an assertion for another audience: another server, the resource, the JWKS', async () => {
      for (const aud of ['https://other.example/token', 'https://reports.internal', `${issuer.issuer}/jwks.json`, [], undefined]) {
        const sent = assertion(es, ID, aud);
        expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion aud is neither the issuer nor its token endpoint', sent, ID);
      }
    });

    it('refuses an assertion whose sub is no client id', async () => {
      const sent = assertion(es, 'not a client id', tokenUrl());
      expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion sub is not a client id', sent, undefined);
    });

    it('refuses an assertion of an unknown client, naming it', async () => {
      const sent = assertion(es, 'nobody', tokenUrl());
      expectRefusal(await postAssertion(tokenUrl(), sent), 'unknown_client', 'no client has the id the assertion names', sent, 'nobody');
    });

    it('refuses an unknown kid, and no kid when the client has several keys', async () => {
      const unknown = assertion(es, ID, tokenUrl(), {}, { kid: 'es-2' });
      expectRefusal(await postAssertion(tokenUrl(), unknown), 'unknown_key', 'no key of the client matches the assertion kid', unknown, ID);
      const none = assertion(es, ID, tokenUrl(), {}, { kid: undefined });
      expectRefusal(await postAssertion(tokenUrl(), none), 'unknown_key', 'the assertion names no key and the client has several', none, ID);
    });

    it('refuses an assertion signed by another key under a registered kid', async () => {
      const impostor = makeKey('ES256', { kid: 'es-1', fresh: true });
      const sent = assertion(impostor, ID, tokenUrl());
      expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion signature is invalid', sent, ID);
    });

    it('refuses an assertion whose claims were changed after signing', async () => {
      const [header, , signature] = assertion(es, ID, tokenUrl()).split('.');
      const sent = `${header}.${segment(assertionClaims(ID, tokenUrl(), { scope: 'admin' }))}.${signature}`;
      expectRefusal(await postAssertion(tokenUrl(), sent), 'invalid_assertion', 'the client assertion signature is invalid', sent, ID);
    });

    it('refuses an algorithm outside the allow-list, one its key does not declare, and one that does not fit the key', async () => {
      const declared = mint({ ...es, alg: 'ES256' }, assertionClaims(ID, tokenUrl()), { typ: undefined, alg: 'ES384' });
      expectRefusal(await postAssertion(tokenUrl(), declared), 'invalid_assertion', 'the client assertion signing algorithm is not accepted', declared, ID);
      const rsaKeyAsEs = mint({ ...rs, alg: 'RS256' }, assertionClaims(ID, tokenUrl()), { typ: undefined, alg: 'ES256', kid: 'rs-1' });
      expectRefusal(await postAssertion(tokenUrl(), rsaKeyAsEs), 'invalid_assertion', 'the client assertion algorithm does not fit its key', rsaKeyAsEs, ID);
      const psOnRs = mint({ ...rs, alg: 'PS256' }, assertionClaims(ID, tokenUrl()), { typ: undefined, kid: 'es-1' });
      expectRefusal(await postAssertion(tokenUrl(), psOnRs), 'invalid_assertion', 'the client assertion algorithm does not match its key', psOnRs, ID);
    });

    it('refuses an assertion for a client that authenticates with a secret, and counts it as no guess', async () => {
      const sent = assertion(es, 'reporter', tokenUrl());
      expectRefusal(await postAssertion(tokenUrl(), sent), 'method_not_allowed', 'the client authenticates with a secret, not private_key_jwt', sent, 'reporter');
    });
  });
});

describe('POST /token with client assertions and the failure limiter', () => {
  let issuer: TestIssuer;
  const key = makeKey('ES256', { kid: 'limited' });

  before(async () => {
    issuer = await startIssuer({ rateLimit: { perClient: { points: 2, duration: 600 }, perAddress: false } });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: ID, jwks: { keys: [key.jwk] } });
    await issuer.store.clients.create({ ...REGISTRATION, clientId: 'reporter' });
  });
  after(() => issuer.close());

  it('counts refused assertions as failed authentications: 429 once the client\'s budget is spent', async () => {
    const limited = collect(issuer, 'rate_limited');
    const bad = () => postAssertion(issuer.tokenUrl, assertion(key, ID, issuer.tokenUrl, { exp: nowSeconds() - 600 }));
    expectInvalidClient(await bad());
    expectInvalidClient(await bad());
    const res = await bad();
    expect([res.status, res.json]).to.deep.equal([429, { error: 'temporarily_unavailable', error_description: 'too many failed client authentications; retry later' }]);
    expect(Number(res.headers['retry-after'])).to.be.within(1, 600);
    expect(limited.map((e) => e.clientId)).to.deep.equal([ID]);
    // The right credentials still get a token: client ids are public.
    expect((await postAssertion(issuer.tokenUrl, assertion(key, ID, issuer.tokenUrl))).status).to.equal(200);
  });

  it('does not count assertions of a client that authenticates with a secret', async () => {
    for (let i = 0; i < 4; i++) expectInvalidClient(await postAssertion(issuer.tokenUrl, assertion(key, 'reporter', issuer.tokenUrl)));
  });
});
