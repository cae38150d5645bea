import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import express, { type ErrorRequestHandler } from 'express';
import { InvalidTokenError, TemporarilyUnavailableError, TokenRequiredError } from '../../lib/errors.js';
import {
  createResourceServer, requireScope, type ResourceServer, type ResourceServerOptions,
} from '../../lib/express/resource-server.js';
import { listen, request, type Listening, type ReadResponse } from '../support/http.js';
import {
  AUDIENCE, bearer, claims, errorHeaders, makeKey, mint, rawRequest, segment, stableHeaders, startApp, startJwksServer,
  type JwksServer, type TestKey,
} from './resource-server-fixtures.js';

const REALM = AUDIENCE;

function challenge(code?: string, description?: string, scope?: string): string {
  let value = `Bearer realm="${REALM}"`;
  if (code !== undefined) value += `, error="${code}", error_description="${description}"`;
  if (scope !== undefined) value += `, scope="${scope}"`;
  return value;
}

/** Asserts a whole RFC 6750 error answer: status, headers (challenge included) and JSON body. */
function expectError(res: ReadResponse, status: number, code: string, description: string, scope?: string): void {
  expect({ status: res.status, headers: stableHeaders(res), body: res.json }).to.deep.equal({
    status,
    headers: errorHeaders(status === 503 ? undefined : challenge(code, description, scope), status === 503 ? { 'retry-after': '5' } : {}),
    body: { error: code, error_description: description },
  });
}

/** Asserts the bare 401 challenge sent when no Bearer credentials were presented. */
function expectChallengeOnly(res: ReadResponse): void {
  expect({ status: res.status, headers: stableHeaders(res), text: res.text }).to.deep.equal({
    status: 401,
    headers: { 'cache-control': 'no-store', pragma: 'no-cache', 'www-authenticate': challenge(), 'x-powered-by': 'Express' },
    text: '',
  });
}

function decode(token: string): { header: unknown; payload: unknown } {
  const [h = '', p = ''] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()) };
}

/** Asserts a 200 whose body echoes `req.auth` for `token`. */
function expectAuth(res: ReadResponse, token: string, extra: { clientId?: string | null; scopes?: string[] } = {}): void {
  const { header, payload } = decode(token);
  expect(res.status, res.text).to.equal(200);
  // JSON drops an undefined clientId.
  expect(res.json).to.deep.equal({
    auth: {
      token, header, payload,
      ...(extra.clientId === null ? {} : { clientId: extra.clientId ?? 'svc-reports' }),
      scopes: extra.scopes ?? ['reports:read', 'reports:list'],
    },
  });
}

describe('createResourceServer()', () => {
  describe('options', () => {
    const base = { issuer: 'https://auth.internal/oauth', audience: AUDIENCE, jwksUri: 'https://auth.internal/oauth/jwks.json' };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['no issuer', { audience: AUDIENCE, jwksUri: base.jwksUri }, /issuer is required/],
      ['no audience', { issuer: base.issuer, jwksUri: base.jwksUri }, /audience is required/],
      ['an empty issuer list', { ...base, issuer: [] }, /issuer is required/],
      ['an empty audience string', { ...base, audience: '' }, /audience is required/],
      ['HS256 among the algorithms', { ...base, algorithms: ['RS256', 'HS256'] }, /algorithms/],
      ['"none" among the algorithms', { ...base, algorithms: ['none'] }, /algorithms/],
      ['an empty algorithm list', { ...base, algorithms: [] }, /algorithms/],
      ['a jwksUri that is not a URL', { ...base, jwksUri: 'jwks.json' }, /jwksUri must be an absolute URL/],
      ['an http jwksUri off loopback', { ...base, jwksUri: 'http://auth.internal/jwks.json' }, /jwksUri must use https/],
      ['an issuer that cannot be discovered', { issuer: 'auth-service', audience: AUDIENCE }, /issuer "auth-service"/],
      ['a zero jwksTimeout', { ...base, jwksTimeout: 0 }, /jwksTimeout/],
      ['a negative jwksCooldown', { ...base, jwksCooldown: -1 }, /jwksCooldown/],
      ['a string jwksCacheMaxAge', { ...base, jwksCacheMaxAge: '600' }, /jwksCacheMaxAge/],
      ['a fractional tokenCacheSize', { ...base, tokenCacheSize: 1.5 }, /tokenCacheSize/],
      ['a negative clockTolerance', { ...base, clockTolerance: -5 }, /clockTolerance/],
      ['an unknown match', { ...base, match: 'some' }, /match/],
      ['an unknown errors mode', { ...base, errors: 'throw' }, /errors/],
      ['a realm with a quote', { ...base, realm: 'a"b' }, /realm/],
      ['an empty scopeClaim', { ...base, scopeClaim: '' }, /scopeClaim/],
      ['a claims check that is an object', { ...base, claims: { tenant: {} } }, /claims\.tenant/],
      ['an isRevoked that is not a function', { ...base, isRevoked: true }, /isRevoked/],
      ['a non-boolean optional', { ...base, optional: 'yes' }, /optional/],
      ['a non-boolean strict', { ...base, strict: 1 }, /strict/],
      ['a fetch that is not a function', { ...base, fetch: 'fetch' }, /fetch/],
    ];
    for (const [what, options, message] of cases) {
      it(`throws a TypeError at creation for ${what}`, () => {
        expect(() => createResourceServer(options as never)).to.throw(TypeError, message);
      });
    }

    it('throws a TypeError for an empty or malformed scope list', () => {
      const rs = createResourceServer(base);
      expect(() => rs.requireScope([])).to.throw(TypeError, /scopes/);
      expect(() => rs.requireScope('')).to.throw(TypeError, /scopes/);
      expect(() => rs.requireScope(['reports "read"'])).to.throw(TypeError, /malformed scope token/);
      expect(() => rs.requireScope('a', { match: 'most' as never })).to.throw(TypeError, /match/);
    });

    it('accepts an http jwksUri on loopback, and off loopback with allowHttp', () => {
      expect(() => createResourceServer({ ...base, jwksUri: 'http://127.0.0.1:8080/jwks.json' })).not.to.throw();
      expect(() => createResourceServer({ ...base, jwksUri: 'http://keycloak:8080/jwks', allowHttp: true })).not.to.throw();
    });
  });

  describe('a protected route', () => {
    let jwks: JwksServer;
    let rsKey: TestKey;
    let esKey: TestKey;
    let psKey: TestKey;
    let app: Listening;
    let rs: ResourceServer;
    let issuer: string;

    before(async () => {
      rsKey = makeKey('RS256');
      esKey = makeKey('ES256');
      psKey = makeKey('PS256', { fresh: true });
      jwks = await startJwksServer([rsKey, esKey, psKey]);
      issuer = jwks.issuer;
      rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri });
      app = await startApp((a, echo) => {
        a.get('/reports', rs.requireScope('reports:read'), echo);
        a.post('/reports', rs.requireScope(['reports:write']), echo);
        a.get('/both', rs.requireScope('reports:read reports:list'), echo);
        a.post('/parsed', express.urlencoded({ extended: false }), rs.requireScope('reports:read'), echo);
      });
    });
    after(async () => {
      await app.close();
      await jwks.close();
    });

    describe('with a valid token', () => {
      for (const alg of ['RS256', 'ES256', 'PS256'] as const) {
        it(`lets an ${alg} token through and sets req.auth`, async () => {
          const key = alg === 'RS256' ? rsKey : alg === 'ES256' ? esKey : psKey;
          const token = mint(key, claims(issuer));
          expectAuth(await request(`${app.url}/reports`, { headers: bearer(token) }), token);
        });
      }

      it('accepts the lowercase scheme "bearer" (RFC 9110 §11.1: schemes are case-insensitive)', async () => {
        const token = mint(rsKey, claims(issuer));
        expectAuth(await request(`${app.url}/reports`, { headers: { authorization: `bearer ${token}` } }), token);
      });

      it('requires every listed scope', async () => {
        const token = mint(rsKey, claims(issuer));
        expectAuth(await request(`${app.url}/both`, { headers: bearer(token) }), token);
      });

      it('accepts typ JWT, application/at+jwt and no typ at all', async () => {
        for (const typ of ['JWT', 'application/at+jwt', 'AT+JWT', undefined]) {
          const token = mint(rsKey, claims(issuer), { typ });
          expectAuth(await request(`${app.url}/reports`, { headers: bearer(token) }), token);
        }
      });

      it('accepts an aud array that holds the audience', async () => {
        const token = mint(esKey, claims(issuer, { aud: ['https://other.internal', AUDIENCE] }));
        expectAuth(await request(`${app.url}/reports`, { headers: bearer(token) }), token);
      });

      it('accepts a token expired less than the clock tolerance ago', async () => {
        const token = mint(esKey, claims(issuer, { exp: Math.floor(Date.now() / 1000) - 2 }));
        expectAuth(await request(`${app.url}/reports`, { headers: bearer(token) }), token);
      });

      it('accepts a scope array, and reads clientId from azp when client_id is absent', async () => {
        const token = mint(esKey, claims(issuer, { scope: ['reports:read'], client_id: undefined, azp: 'kc-client' }));
        expectAuth(await request(`${app.url}/reports`, { headers: bearer(token) }), token, { clientId: 'kc-client', scopes: ['reports:read'] });
      });

      it('leaves clientId undefined for a token that names no client', async () => {
        const token = mint(esKey, claims(issuer, { client_id: undefined }));
        expectAuth(await request(`${app.url}/reports`, { headers: bearer(token) }), token, { clientId: null });
      });
    });

    describe('without Bearer credentials', () => {
      it('answers 401 with a bare Bearer challenge and no error code', async () => {
        expectChallengeOnly(await request(`${app.url}/reports`));
      });

      it('answers the same to another authentication scheme (Basic)', async () => {
        expectChallengeOnly(await request(`${app.url}/reports`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } }));
      });

      it('ignores a token in the query string', async () => {
        const token = mint(rsKey, claims(issuer));
        expectChallengeOnly(await request(`${app.url}/reports?access_token=${token}`));
      });

      it('ignores a token in a form body', async () => {
        const token = mint(rsKey, claims(issuer));
        expectChallengeOnly(await request(`${app.url}/reports`, {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${token}`,
        }));
      });
    });

    describe('with malformed credentials', () => {
      const malformed: [string, string, string][] = [
        ['"Bearer" with no token', 'Bearer', 'the Authorization header is not a well-formed Bearer credential'],
        ['"Bearer" twice', 'Bearer Bearer abc.def.ghi', 'the request holds more than one Bearer token'],
        ['two Bearer credentials in one header', 'Bearer abc.def.ghi, Bearer jkl.mno.pqr', 'the request holds more than one Bearer token'],
        ['two tokens after one scheme', 'Bearer abc.def.ghi jkl.mno.pqr', 'the request holds more than one Bearer token'],
        ['a token with characters outside b64token', 'Bearer abc"def', 'the Authorization header is not a well-formed Bearer credential'],
        ['a tab after the scheme', 'Bearer\tabc.def.ghi', 'the Authorization header is not a well-formed Bearer credential'],
        ['10 kB of garbage', `Bearer ${'<>{}'.repeat(2560)}`, 'the Authorization header is not a well-formed Bearer credential'],
        ['10 kB of garbage without a scheme', '"'.repeat(10_240), 'the Authorization header is not a well-formed Bearer credential'],
      ];
      for (const [what, value, description] of malformed) {
        it(`rejects ${what} with 400 invalid_request`, async () => {
          const before = jwks.jwksRequests;
          expectError(await request(`${app.url}/reports`, { headers: { authorization: value } }), 400, 'invalid_request', description);
          expect(jwks.jwksRequests).to.equal(before);
        });
      }

      it('rejects a token in the header and an access_token in the query string with 400 invalid_request (RFC 6750 §2)', async () => {
        const token = mint(rsKey, claims(issuer));
        const res = await request(`${app.url}/reports?x=1&access_token=${token}`, { headers: bearer(token) });
        expectError(res, 400, 'invalid_request', 'the request presents an access token in more than one way');
      });

      it('rejects a token in the header and an access_token in a form body the host parsed with 400 invalid_request', async () => {
        const token = mint(rsKey, claims(issuer));
        const res = await request(`${app.url}/parsed`, {
          method: 'POST', headers: { ...bearer(token), 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${token}`,
        });
        expectError(res, 400, 'invalid_request', 'the request presents an access token in more than one way');
        const plain = await request(`${app.url}/parsed`, {
          method: 'POST', headers: { ...bearer(token), 'content-type': 'application/x-www-form-urlencoded' }, body: 'note=access_token',
        });
        expectAuth(plain, token);
      });

      it('rejects two Authorization headers with 400 invalid_request', async () => {
        const token = mint(rsKey, claims(issuer));
        const res = await rawRequest(app.url, ['GET /reports HTTP/1.1', `Authorization: Bearer ${token}`, `Authorization: Bearer ${token}`]);
        expectError(res, 400, 'invalid_request', 'the request has more than one Authorization header');
      });
    });

    describe('with an invalid token', () => {
      function rejects(what: string, make: () => string, description: string): void {
        it(`rejects ${what} with 401 invalid_token`, async () => {
          const token = make();
          const res = await request(`${app.url}/reports`, { headers: bearer(token) });
          expectError(res, 401, 'invalid_token', description);
          expect(res.text).not.to.include(token);
        });
      }

      rejects('an expired token', () => mint(rsKey, claims(issuer, { exp: Math.floor(Date.now() / 1000) - 60 })), 'the token has expired');
      rejects('a token without exp', () => mint(rsKey, claims(issuer, { exp: undefined })), 'the token has no expiry');
      rejects('a token whose exp is a string', () => mint(rsKey, { ...claims(issuer), exp: '9999999999' }), 'the token has no expiry');
      rejects('a token issued a day in the future', () => {
        const iat = Math.floor(Date.now() / 1000) + 86_400;
        return mint(rsKey, claims(issuer, { iat, exp: iat + 300 }));
      }, 'the token was issued in the future');
      rejects('a token not valid yet', () => mint(rsKey, claims(issuer, { nbf: Math.floor(Date.now() / 1000) + 60 })), 'the token is not valid yet');
      rejects('a token from another issuer', () => mint(rsKey, claims('https://evil.example')), 'the token issuer is not accepted');
      rejects('a token without iss', () => mint(rsKey, claims(issuer, { iss: undefined })), 'the token issuer is not accepted');
      rejects('a token for another audience', () => mint(rsKey, claims(issuer, { aud: 'https://billing.internal' })), 'the token audience is not accepted');
      rejects('a token without aud', () => mint(rsKey, claims(issuer, { aud: undefined })), 'the token audience is not accepted');
      rejects('a token typed as something else', () => mint(rsKey, claims(issuer), { typ: 'dpop+jwt' }), 'the token type is not accepted');
      rejects('a token with critical header extensions', () => mint(rsKey, claims(issuer), { crit: ['b64'], b64: false }), 'the token header has critical extensions');
      rejects('a token with a tampered payload', () => {
        const [h, , s] = mint(rsKey, claims(issuer)).split('.');
        return `${h}.${segment(claims(issuer, { scope: 'reports:read reports:write' }))}.${s}`;
      }, 'the token signature or claims are invalid');
      rejects('an ES256 token whose signature is one byte short', () => {
        const [h, p, sig = ''] = mint(esKey, claims(issuer)).split('.');
        return `${h}.${p}.${Buffer.from(sig, 'base64url').subarray(1).toString('base64url')}`;
      }, 'the token signature or claims are invalid');
      rejects('an RS256 token with a 4096-bit signature under a 2048-bit key', () => {
        const [h, p] = mint(rsKey, claims(issuer)).split('.');
        return `${h}.${p}.${Buffer.alloc(512, 7).toString('base64url')}`;
      }, 'the token signature or claims are invalid');
      rejects('a token signed by a key that is not published under its kid', () => {
        const stranger = makeKey('RS256', { kid: rsKey.kid, fresh: true });
        return mint(stranger, claims(issuer));
      }, 'the token signature or claims are invalid');
      rejects('a token naming an unknown kid', () => mint(rsKey, claims(issuer), { kid: 'no-such-key' }), 'no key matches the token kid');
      rejects('a token without kid when the key set holds several keys', () => mint(rsKey, claims(issuer), { kid: undefined }),
        'the token names no key and the key set holds several');
      rejects('a token whose alg differs from its JWK alg (PS256 under an RS256 key)', () =>
        mint({ ...rsKey, alg: 'PS256' }, claims(issuer)), 'the token algorithm does not match its key');
      rejects('an ES256 token naming an RSA key', () => mint(esKey, claims(issuer), { kid: rsKey.kid }), 'the token algorithm does not match its key');
      rejects('a token whose kid is a number', () => mint(rsKey, claims(issuer), { kid: 7 }), 'the token kid is malformed');
      rejects('a token with a malformed scope claim', () => mint(rsKey, claims(issuer, { scope: { read: true } })), 'the token scope claim is malformed');
      rejects('a token with an array of numbers as scope', () => mint(rsKey, claims(issuer, { scope: [1, 2] })), 'the token scope claim is malformed');

      describe('whose algorithm is not allowed, without any JWKS request', () => {
        const cases: [string, () => string][] = [
          ['alg none with an empty signature', () => `${segment({ alg: 'none', typ: 'at+jwt' })}.${segment(claims(issuer))}.`],
          ['alg none with a signature', () => `${segment({ alg: 'none' })}.${segment(claims(issuer))}.${segment('sig')}`],
          ['alg NONE', () => `${segment({ alg: 'NONE' })}.${segment(claims(issuer))}.${segment('sig')}`],
          ['HS256 with a guessed secret', () => {
            const input = `${segment({ alg: 'HS256', typ: 'at+jwt', kid: rsKey.kid })}.${segment(claims(issuer))}`;
            return `${input}.${createHmac('sha256', 'secret').update(input).digest('base64url')}`;
          }],
          ['HS256 keyed with the published RSA public key (algorithm confusion)', () => {
            const input = `${segment({ alg: 'HS256', typ: 'at+jwt', kid: rsKey.kid })}.${segment(claims(issuer))}`;
            const pem = rsKey.publicKey.export({ format: 'pem', type: 'spki' });
            return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
          }],
          ['RS512, not in the allow-list', () => mint(makeKey('RS512', { kid: rsKey.kid }), claims(issuer))],
          ['an alg that is not a string', () => `${segment({ alg: ['RS256'] })}.${segment(claims(issuer))}.${segment('sig')}`],
        ];
        for (const [what, make] of cases) {
          it(`rejects ${what} with 401 invalid_token`, async () => {
            const before = jwks.jwksRequests;
            const token = make();
            const expected = what.includes('empty signature') ? 'the token is not a signed JWT' : 'the token signing algorithm is not accepted';
            expectError(await request(`${app.url}/reports`, { headers: bearer(token) }), 401, 'invalid_token', expected);
            expect(jwks.jwksRequests).to.equal(before);
          });
        }
      });
    });

    describe('with a token that lacks the scope', () => {
      it('answers 403 insufficient_scope naming the required scope', async () => {
        const token = mint(rsKey, claims(issuer));
        const res = await request(`${app.url}/reports`, { method: 'POST', headers: bearer(token) });
        expectError(res, 403, 'insufficient_scope', 'the token lacks a required scope', 'reports:write');
      });

      it('matches whole scope tokens, never substrings or prefixes', async () => {
        for (const scope of ['reports:readonly', 'reports', 'xreports:read', 'REPORTS:READ']) {
          const token = mint(rsKey, claims(issuer, { scope }));
          const res = await request(`${app.url}/reports`, { headers: bearer(token) });
          expectError(res, 403, 'insufficient_scope', 'the token lacks a required scope', 'reports:read');
        }
      });

      it('answers 403 for a token with no scope claim at all', async () => {
        const token = mint(rsKey, claims(issuer, { scope: undefined }));
        const res = await request(`${app.url}/both`, { headers: bearer(token) });
        expectError(res, 403, 'insufficient_scope', 'the token lacks a required scope', 'reports:read reports:list');
      });
    });

    it('fetches the JWKS once for all the routes of one resource server', async () => {
      const shared = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri });
      const routes = await startApp((a, echo) => {
        a.get('/a', shared.requireScope('reports:read'), echo);
        a.get('/b', shared.requireScope('reports:list'), echo);
        a.get('/c', shared.authenticate(), echo);
      });
      try {
        const before = jwks.jwksRequests;
        for (const path of ['/a', '/b', '/c', '/a']) {
          const token = mint(path === '/b' ? esKey : rsKey, claims(issuer));
          expectAuth(await request(`${routes.url}${path}`, { headers: bearer(token) }), token);
        }
        expect(jwks.jwksRequests - before).to.equal(1);
      } finally {
        await routes.close();
      }
    });
  });

  describe('option variants', () => {
    let jwks: JwksServer;
    let key: TestKey;
    let issuer: string;
    const apps: Listening[] = [];

    before(async () => {
      key = makeKey('ES256');
      jwks = await startJwksServer([key]);
      issuer = jwks.issuer;
    });
    after(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await jwks.close();
    });

    async function serve(options: Partial<ResourceServerOptions>, scopes: string | string[] = 'reports:read',
      route: { match?: 'all' | 'any'; optional?: boolean } = {}): Promise<string> {
      const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, ...options });
      const app = await startApp((a, echo) => {
        a.get('/r', rs.requireScope(scopes, route), echo);
        a.get('/any', rs.authenticate(), echo);
      });
      apps.push(app);
      return app.url;
    }

    describe('with "scopeClaim" option', () => {
      const variants: [string, unknown][] = [['scp', ['reports:read', 'x']], ['scp', 'reports:read x'], ['roles', ['reports:read']], ['permissions', ['reports:read']]];
      for (const [claim, value] of variants) {
        it(`reads scopes from ${claim} given as ${Array.isArray(value) ? 'an array' : 'a string'}`, async () => {
          const url = await serve({ scopeClaim: claim });
          const token = mint(key, claims(issuer, { scope: undefined, [claim]: value }));
          const scopes = Array.isArray(value) ? value as string[] : (value as string).split(' ');
          expectAuth(await request(`${url}/r`, { headers: bearer(token) }), token, { scopes });
        });
      }

      it('ignores the scope claim when another claim is configured', async () => {
        const url = await serve({ scopeClaim: 'scp' });
        const token = mint(key, claims(issuer));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 403, 'insufficient_scope', 'the token lacks a required scope', 'reports:read');
      });
    });

    describe('with "match" option', () => {
      it('lets a token with any one of the scopes through with "any"', async () => {
        const url = await serve({ match: 'any' }, ['reports:write', 'reports:list']);
        const token = mint(key, claims(issuer));
        expectAuth(await request(`${url}/r`, { headers: bearer(token) }), token);
      });

      it('rejects a token with none of them with 403 insufficient_scope', async () => {
        const url = await serve({}, ['reports:write', 'reports:admin'], { match: 'any' });
        const token = mint(key, claims(issuer));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 403, 'insufficient_scope',
          'the token has none of the accepted scopes', 'reports:write reports:admin');
      });

      it('requires all of them by default', async () => {
        const url = await serve({}, ['reports:read', 'reports:write']);
        const token = mint(key, claims(issuer));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 403, 'insufficient_scope',
          'the token lacks a required scope', 'reports:read reports:write');
      });
    });

    describe('with "optional" option', () => {
      it('lets a request without credentials through without req.auth', async () => {
        const url = await serve({ optional: true });
        const res = await request(`${url}/r`);
        expect({ status: res.status, body: res.json }).to.deep.equal({ status: 200, body: { auth: null } });
      });

      it('still rejects a bad token with 401 invalid_token', async () => {
        const url = await serve({ optional: true });
        const token = mint(key, claims(issuer, { aud: 'https://billing.internal' }));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 401, 'invalid_token', 'the token audience is not accepted');
      });

      it('still rejects malformed credentials with 400 invalid_request', async () => {
        const url = await serve({}, 'reports:read', { optional: true });
        expectError(await request(`${url}/r`, { headers: { authorization: 'Bearer' } }), 400, 'invalid_request',
          'the Authorization header is not a well-formed Bearer credential');
      });
    });

    describe('with "strict" option', () => {
      it('accepts a full RFC 9068 token', async () => {
        const url = await serve({ strict: true });
        const token = mint(key, claims(issuer));
        expectAuth(await request(`${url}/r`, { headers: bearer(token) }), token);
      });

      const failures: [string, Record<string, unknown>, Record<string, unknown>, string][] = [
        ['typ JWT', {}, { typ: 'JWT' }, 'the token type is not at+jwt'],
        ['no typ', {}, { typ: undefined }, 'the token type is not at+jwt'],
        ['no sub', { sub: undefined }, {}, 'the token has no sub claim'],
        ['no client_id', { client_id: undefined }, {}, 'the token has no client_id claim'],
        ['no jti', { jti: undefined }, {}, 'the token has no jti claim'],
        ['no iat', { iat: undefined }, {}, 'the token has no iat claim'],
      ];
      for (const [what, claimChanges, headerChanges, description] of failures) {
        it(`rejects a token with ${what} with 401 invalid_token`, async () => {
          const url = await serve({ strict: true });
          const token = mint(key, claims(issuer, claimChanges), headerChanges);
          expectError(await request(`${url}/r`, { headers: bearer(token) }), 401, 'invalid_token', description);
        });
      }
    });

    describe('with "claims" option', () => {
      it('accepts a token whose claims match values and predicates', async () => {
        const url = await serve({ claims: { tenant: 'acme', groups: 'ops', level: (v) => typeof v === 'number' && v >= 2 } });
        const token = mint(key, claims(issuer, { tenant: 'acme', groups: ['dev', 'ops'], level: 3 }));
        expectAuth(await request(`${url}/r`, { headers: bearer(token) }), token);
      });

      const failures: [string, Record<string, unknown>, string][] = [
        ['a different value', { tenant: 'other', level: 3 }, 'tenant'],
        ['a missing claim', { level: 3 }, 'tenant'],
        ['a failing predicate', { tenant: 'acme', level: 1 }, 'level'],
      ];
      for (const [what, extra, claim] of failures) {
        it(`rejects a token with ${what} with 401 invalid_token`, async () => {
          const url = await serve({ claims: { tenant: 'acme', level: (v) => typeof v === 'number' && v >= 2 } });
          const token = mint(key, claims(issuer, extra));
          expectError(await request(`${url}/r`, { headers: bearer(token) }), 401, 'invalid_token', `the token ${claim} claim is not accepted`);
        });
      }

      it('treats a throwing predicate as a refusal, not a 500', async () => {
        const url = await serve({ claims: { tenant: () => { throw new Error('bug'); } } });
        const token = mint(key, claims(issuer));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 401, 'invalid_token', 'the token tenant claim is not accepted');
      });
    });

    describe('with "isRevoked" option', () => {
      it('asks on every request, cached tokens included, and refuses a revoked token with 401 invalid_token', async () => {
        const revoked = new Set<string>();
        const asked: string[] = [];
        const url = await serve({
          isRevoked: async (auth) => {
            asked.push(String(auth.payload.jti));
            return revoked.has(String(auth.payload.jti));
          },
        });
        const payload = claims(issuer);
        const token = mint(key, payload);
        expectAuth(await request(`${url}/r`, { headers: bearer(token) }), token);
        expectAuth(await request(`${url}/r`, { headers: bearer(token) }), token);
        revoked.add(String(payload.jti));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 401, 'invalid_token', 'the token has been revoked');
        expect(asked).to.deep.equal([payload.jti, payload.jti, payload.jti]);
      });

      it('answers 503 with Retry-After when the hook fails', async () => {
        const url = await serve({ isRevoked: () => Promise.reject(new Error('denylist down')) });
        const token = mint(key, claims(issuer));
        expectError(await request(`${url}/r`, { headers: bearer(token) }), 503, 'temporarily_unavailable', 'the revocation check is unavailable');
      });
    });

    describe('with "realm" option', () => {
      it('names the realm in every challenge', async () => {
        const url = await serve({ realm: 'reports-api' });
        const res = await request(`${url}/r`);
        expect(res.headers['www-authenticate']).to.equal('Bearer realm="reports-api"');
        const bad = await request(`${url}/r`, { headers: bearer(mint(key, claims('https://evil.example'))) });
        expect(bad.headers['www-authenticate']).to.equal('Bearer realm="reports-api", error="invalid_token", error_description="the token issuer is not accepted"');
      });

      it('defaults to "api" when the first audience cannot be quoted as a realm', async () => {
        const url = await serve({ audience: ['urn:"reports"', AUDIENCE] });
        expect((await request(`${url}/r`)).headers['www-authenticate']).to.equal('Bearer realm="api"');
      });
    });

    describe('with "algorithms" option', () => {
      it('rejects an ES256 token when only RS256 is allowed, without fetching the JWKS', async () => {
        const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, algorithms: ['RS256'] });
        const before = jwks.jwksRequests;
        const err = await rs.verify(mint(key, claims(issuer))).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(InvalidTokenError);
        expect((err as InvalidTokenError).description).to.equal('the token signing algorithm is not accepted');
        expect(jwks.jwksRequests).to.equal(before);
      });
    });

    describe('with "errors: next" option', () => {
      it('hands every error to the host error handler with status, code and headers', async () => {
        const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri, errors: 'next' });
        const seen: unknown[] = [];
        const handler: ErrorRequestHandler = (err: { status: number; code: string; headers: Record<string, string>; description: string }, _req, res, _next) => {
          seen.push(err);
          res.status(err.status).set(err.headers).json({ problem: err.code, detail: err.description });
        };
        const app = express();
        app.get('/r', rs.requireScope('reports:write'), (_req, res) => { res.json({}); });
        app.use(handler);
        const server = await listen(app);
        apps.push(server);

        const none = await request(`${server.url}/r`);
        expect({ status: none.status, challenge: none.headers['www-authenticate'], body: none.json }).to.deep.equal({
          status: 401, challenge: challenge(), body: { problem: 'invalid_token', detail: 'an access token is required' },
        });
        expect(seen[0]).to.be.instanceOf(TokenRequiredError);

        const bad = await request(`${server.url}/r`, { headers: bearer(mint(key, claims(issuer, { aud: 'x' }))) });
        expect({ status: bad.status, challenge: bad.headers['www-authenticate'], body: bad.json }).to.deep.equal({
          status: 401, challenge: challenge('invalid_token', 'the token audience is not accepted'),
          body: { problem: 'invalid_token', detail: 'the token audience is not accepted' },
        });

        const scope = await request(`${server.url}/r`, { headers: bearer(mint(key, claims(issuer))) });
        expect({ status: scope.status, challenge: scope.headers['www-authenticate'], body: scope.json }).to.deep.equal({
          status: 403, challenge: challenge('insufficient_scope', 'the token lacks a required scope', 'reports:write'),
          body: { problem: 'insufficient_scope', detail: 'the token lacks a required scope' },
        });

        const malformed = await request(`${server.url}/r`, { headers: { authorization: 'Bearer a b' } });
        expect({ status: malformed.status, body: malformed.json }).to.deep.equal({
          status: 400, body: { problem: 'invalid_request', detail: 'the request holds more than one Bearer token' },
        });
        expect(seen).to.have.length(4);
      });
    });

    describe('authenticate()', () => {
      it('lets any valid token through whatever its scopes', async () => {
        const url = await serve({});
        const token = mint(key, claims(issuer, { scope: undefined }));
        expectAuth(await request(`${url}/any`, { headers: bearer(token) }), token, { scopes: [] });
      });

      it('answers 401 with a bare challenge without credentials', async () => {
        const url = await serve({});
        expectChallengeOnly(await request(`${url}/any`));
      });
    });

    describe('verify()', () => {
      it('verifies a token outside Express', async () => {
        const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri });
        const token = mint(key, claims(issuer));
        const auth = await rs.verify(token);
        expect(JSON.parse(JSON.stringify(auth))).to.deep.equal({ token, ...decode(token), clientId: 'svc-reports', scopes: ['reports:read', 'reports:list'] });
        expect(Object.isFrozen(auth) && Object.isFrozen(auth.payload) && Object.isFrozen(auth.scopes)).to.equal(true);
      });

      it('rejects with InvalidTokenError, whose description never holds the token', async () => {
        const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri });
        const token = mint(key, claims(issuer, { exp: 1 }));
        const err = await rs.verify(token).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(InvalidTokenError);
        expect({ status: (err as InvalidTokenError).status, code: (err as InvalidTokenError).code, message: (err as Error).message })
          .to.deep.equal({ status: 401, code: 'invalid_token', message: 'the token has expired' });
      });

      it('rejects with TemporarilyUnavailableError when the JWKS cannot be reached', async () => {
        const rs = createResourceServer({ issuer, audience: AUDIENCE, jwksUri: 'http://127.0.0.1:9/jwks.json' });
        const err = await rs.verify(mint(key, claims(issuer))).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(TemporarilyUnavailableError);
        expect({ status: (err as TemporarilyUnavailableError).status, headers: (err as TemporarilyUnavailableError).headers })
          .to.deep.equal({ status: 503, headers: { 'Retry-After': '5' } });
      });
    });
  });
});

describe('requireScope()', () => {
  let jwks: JwksServer;
  let key: TestKey;
  let app: Listening;

  before(async () => {
    key = makeKey('RS256');
    jwks = await startJwksServer([key]);
    const options = { issuer: jwks.issuer, audience: AUDIENCE, jwksUri: jwks.jwksUri };
    app = await startApp((a, echo) => {
      a.get('/read', requireScope('reports:read', options), echo);
      a.get('/write', requireScope(['reports:write'], options), echo);
    });
  });
  after(async () => {
    await app.close();
    await jwks.close();
  });

  it('protects a route on its own, with issuer and audience only', async () => {
    const token = mint(key, claims(jwks.issuer));
    expectAuth(await request(`${app.url}/read`, { headers: bearer(token) }), token);
    expectError(await request(`${app.url}/write`, { headers: bearer(token) }), 403, 'insufficient_scope', 'the token lacks a required scope', 'reports:write');
    expectChallengeOnly(await request(`${app.url}/read`));
  });

  it('throws a TypeError without issuer or audience', () => {
    expect(() => requireScope('reports:read', { audience: AUDIENCE } as never)).to.throw(TypeError, /issuer is required/);
    expect(() => requireScope('reports:read', { issuer: 'https://a.b' } as never)).to.throw(TypeError, /audience is required/);
    expect(() => requireScope('reports:read', undefined as never)).to.throw(TypeError, /options object/);
  });
});
