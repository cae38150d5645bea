import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import express from 'express';
import { authorizationServer, createKnexStore } from '../../lib/index.js';
import { sqliteDatabase } from '../support/db.js';
import { basic, listen, postForm, request, type Listening, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

/** Everything in the database that a bad request must leave untouched. */
async function snapshot(issuer: TestIssuer): Promise<unknown> {
  const { knex, prefix } = issuer.db;
  await issuer.store.clients.flushUsage();
  return {
    clients: await knex(`${prefix}clients`).select('*').orderBy('client_id'),
    // last_used_at moves with the few requests here that succeed; everything else must stay.
    secrets: await knex(`${prefix}client_secrets`).select('id', 'client_id', 'secret_hash', 'hint', 'created_at', 'expires_at').orderBy('id'),
    keys: await knex(`${prefix}signing_keys`).select('kid', 'activates_at', 'revoked_at').orderBy('kid'),
  };
}

/** Sends raw bytes with full control over headers (fetch normalises some of them). */
function rawPost(url: string, headers: Record<string, string | string[]>, body: Buffer | string): Promise<ReadResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        const flat: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : String(v);
        resolve({ status: res.statusCode ?? 0, headers: flat, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /token with bad input', () => {
  let issuer: TestIssuer;
  let secret: string;
  let before_: unknown;
  const ID = 'svc-input';

  before(async () => {
    issuer = await startIssuer({ rateLimit: false });
    ({ clientSecret: secret } = await issuer.store.clients.create({ clientId: ID, name: 'input', scopes: ['a'], audiences: ['aud'] }));
    await issuer.as.ready();
    before_ = await snapshot(issuer);
  });
  after(async () => {
    // Nothing any of these requests did may have changed a row.
    expect(await snapshot(issuer)).to.deep.equal(before_);
    await issuer.close();
  });

  /** Asserts an RFC 6749 §5.2 error answer: status, no-store headers, exact body, no leak. */
  function expectError(res: ReadResponse, status: number, error: string, description: string): void {
    expect([res.status, res.headers['cache-control'], res.headers.pragma, res.headers['content-type'], res.json]).to.deep.equal([
      status, 'no-store', 'no-cache', 'application/json; charset=utf-8', { error, error_description: description }]);
    expect(res.text).not.to.match(/at \w+ \(|select |sqlite|node_modules|m2m_cs_/i);
  }

  describe('content and size', () => {
    it('rejects a JSON body with 400 invalid_request', async () => {
      const res = await request(issuer.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization: basic(ID, secret) },
        body: JSON.stringify({ grant_type: 'client_credentials' }) });
      expectError(res, 400, 'invalid_request', 'the token request must be sent as application/x-www-form-urlencoded');
    });

    it('rejects a body without a content type with 400 invalid_request', async () => {
      const res = await rawPost(issuer.tokenUrl, { authorization: basic(ID, secret) }, 'grant_type=client_credentials');
      expectError(res, 400, 'invalid_request', 'the token request must be sent as application/x-www-form-urlencoded');
    });

    it('rejects multipart form data with 400 invalid_request', async () => {
      const form = new FormData();
      form.set('grant_type', 'client_credentials');
      const res = await request(issuer.tokenUrl, { method: 'POST', headers: { authorization: basic(ID, secret) }, body: form });
      expectError(res, 400, 'invalid_request', 'the token request must be sent as application/x-www-form-urlencoded');
    });

    it('rejects a body over 4 kB with 413 invalid_request', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope: 'a'.repeat(5000) }, { authorization: basic(ID, secret) });
      expectError(res, 413, 'invalid_request', 'the request body exceeds 4096 bytes');
    });

    it('rejects a body with more than 32 parameters with 413 invalid_request', async () => {
      const form = Array.from({ length: 40 }, (_, i) => `p${i}=1`).join('&');
      const res = await postForm(issuer.tokenUrl, `grant_type=client_credentials&${form}`, { authorization: basic(ID, secret) });
      expectError(res, 413, 'invalid_request', 'the request has too many parameters');
    });

    it('rejects a gzip-encoded body with 415 invalid_request', async () => {
      const res = await rawPost(issuer.tokenUrl, { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip', authorization: basic(ID, secret) }, Buffer.from([0x1f, 0x8b, 0, 0]));
      expectError(res, 415, 'invalid_request', 'compressed request bodies are not accepted');
    });

    it('rejects a non-UTF-8 charset with 415 invalid_request', async () => {
      const res = await rawPost(issuer.tokenUrl, { 'content-type': 'application/x-www-form-urlencoded; charset=koi8-r', authorization: basic(ID, secret) }, 'grant_type=client_credentials');
      expectError(res, 415, 'invalid_request', 'the request body must be UTF-8');
    });

    it('ignores a query string: parameters come from the body only', async () => {
      const res = await postForm(`${issuer.tokenUrl}?grant_type=client_credentials&client_id=${ID}&client_secret=${secret}`, '');
      expectError(res, 400, 'invalid_request', 'the grant_type parameter is missing');
    });
  });

  describe('methods', () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      it(`answers ${method} with 405, Allow: POST and invalid_request`, async () => {
        const res = await request(issuer.tokenUrl, { method });
        expectError(res, 405, 'invalid_request', 'this endpoint accepts POST only');
        expect(res.headers.allow).to.equal('POST');
      });
    }

    it('answers POST on the JWKS with 405 and Allow: GET', async () => {
      const res = await request(`${issuer.issuer}/jwks.json`, { method: 'POST' });
      expectError(res, 405, 'invalid_request', 'this endpoint accepts GET only');
      expect(res.headers.allow).to.equal('GET');
    });
  });

  describe('parameters', () => {
    for (const name of ['grant_type', 'scope', 'audience', 'client_id', 'client_secret']) {
      it(`rejects a repeated ${name} with 400 invalid_request`, async () => {
        const value = name === 'grant_type' ? 'client_credentials' : name === 'client_id' ? ID : name === 'client_secret' ? secret : 'a';
        const res = await postForm(issuer.tokenUrl, `grant_type=client_credentials&${name}=${encodeURIComponent(value)}&${name}=${encodeURIComponent(value)}`,
          name.startsWith('client_') ? {} : { authorization: basic(ID, secret) });
        expectError(res, 400, 'invalid_request', `the ${name} parameter is repeated`);
      });
    }

    it('rejects a missing grant_type with 400 invalid_request', async () => {
      const res = await postForm(issuer.tokenUrl, { scope: 'a' }, { authorization: basic(ID, secret) });
      expectError(res, 400, 'invalid_request', 'the grant_type parameter is missing');
    });

    it('rejects an empty grant_type with 400 invalid_request', async () => {
      const res = await postForm(issuer.tokenUrl, 'grant_type=', { authorization: basic(ID, secret) });
      expectError(res, 400, 'invalid_request', 'the grant_type parameter is missing');
    });

    it('treats bracketed names as plain names, not nested objects', async () => {
      const res = await postForm(issuer.tokenUrl, 'grant_type[a]=client_credentials', { authorization: basic(ID, secret) });
      expectError(res, 400, 'invalid_request', 'the grant_type parameter is missing');
    });

    it('is not confused by __proto__ and constructor parameters', async () => {
      const res = await postForm(issuer.tokenUrl, '__proto__[grant_type]=x&constructor=1&grant_type=client_credentials', { authorization: basic(ID, secret) });
      expect(res.status).to.equal(200);
    });

    it('rejects both Basic and client_secret with 400 invalid_request', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: ID, client_secret: secret }, { authorization: basic(ID, secret) });
      expectError(res, 400, 'invalid_request', 'client authentication must use exactly one method, not both the Authorization header and client_secret');
    });

    it('rejects a body client_id that differs from the Basic one with 400 invalid_request', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: 'someone-else' }, { authorization: basic(ID, secret) });
      expectError(res, 400, 'invalid_request', 'client_id in the body differs from the client id in the Authorization header');
    });
  });

  describe('malformed Basic headers', () => {
    const cases: [string, string, string][] = [
      ['not base64', 'Basic %%%notbase64%%%', 'the Basic authorization header is not valid base64'],
      ['base64 of the wrong length', 'Basic YWJj=', 'the Basic authorization header is not valid base64'],
      ['no credentials at all', 'Basic ', 'the Basic authorization header is not valid base64'],
      ['two credentials', `${basic(ID, 'x')} ${basic(ID, 'y').slice(6)}`, 'the Basic authorization header is not valid base64'],
      ['no colon', `Basic ${Buffer.from(ID).toString('base64')}`, 'the Basic authorization header holds no colon between client id and secret'],
      ['an empty client id', `Basic ${Buffer.from(':secret').toString('base64')}`, 'the Basic authorization header has an empty client id or secret'],
      ['an empty secret', `Basic ${Buffer.from(`${ID}:`).toString('base64')}`, 'the Basic authorization header has an empty client id or secret'],
      ['bad percent-encoding', `Basic ${Buffer.from('svc%ZZ:secret').toString('base64')}`, 'client credentials in the Authorization header are not properly form-urlencoded'],
    ];
    for (const [what, header, description] of cases) {
      it(`rejects ${what} with 400 invalid_request`, async () => {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: header });
        expectError(res, 400, 'invalid_request', description);
      });
    }

    it('decodes RFC 6749 §2.3.1 form-encoding (%2D for -, + for space) before checking', async () => {
      const header = `Basic ${Buffer.from(`svc%2Dinput:${encodeURIComponent(secret).replace(/-/g, '%2D')}`).toString('base64')}`;
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: header });
      expect(res.status).to.equal(200);
    });

    it('accepts the scheme name in any case', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(ID, secret).replace('Basic', 'bAsIc') });
      expect(res.status).to.equal(200);
    });
  });

  describe('hostile values', () => {
    const hostile: [string, string][] = [
      ['SQL in the client id', "x' OR '1'='1"],
      ['a DROP TABLE in the client id', "'; DROP TABLE m2m_clients; --"],
      ['unicode in the client id', 'клиент-🔑'],
      ['control characters in the client id', 'svc\u0000\u001b[31m\r\nX-Injected: 1'],
      ['a 3 kB client id', 'x'.repeat(3000)],
    ];
    for (const [what, value] of hostile) {
      it(`answers ${what} with the ordinary 401 invalid_client (post)`, async () => {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: value, client_secret: secret });
        expectError(res, 401, 'invalid_client', 'client authentication failed');
        expect(res.headers['x-injected']).to.equal(undefined);
      });

      it(`answers ${what} with the ordinary 401 invalid_client (Basic)`, async () => {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(value, secret) });
        expectError(res, 401, 'invalid_client', 'client authentication failed');
      });
    }

    it('keeps a hostile client id out of the authentication-failure event', async () => {
      const seen: unknown[] = [];
      const listener = (e: unknown): void => { seen.push(e); };
      issuer.as.events.on('client.authentication_failed', listener);
      try {
        await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: 'svc\r\nforged log line', client_secret: secret });
        await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: 'x'.repeat(3000), client_secret: secret });
      } finally {
        issuer.as.events.off('client.authentication_failed', listener);
      }
      expect(seen).to.deep.equal([
        { clientId: undefined, reason: 'malformed_credentials', method: 'client_secret_post', address: '127.0.0.1' },
        { clientId: undefined, reason: 'malformed_credentials', method: 'client_secret_post', address: '127.0.0.1' },
      ]);
    });

    it('answers a 10 kB Basic header with 401 invalid_client', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('y'.repeat(5000), 'z'.repeat(5000)) });
      expectError(res, 401, 'invalid_client', 'client authentication failed');
    });

    for (const [what, scope] of [['SQL', "a' OR 1=1 --"], ['unicode', 'ä'], ['a control character', 'a\u0007']] as const) {
      it(`answers ${what} in the scope with 400 invalid_scope`, async () => {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope }, { authorization: basic(ID, secret) });
        expect(res.status).to.equal(400);
        expect((res.json as { error: string }).error).to.equal('invalid_scope');
      });
    }

    it('answers a 1 kB scope token with 400 invalid_scope', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', scope: 'a'.repeat(1000) }, { authorization: basic(ID, secret) });
      expectError(res, 400, 'invalid_scope', 'scope holds a malformed scope token');
    });

    it('answers a secret of the wrong shape with 401 and no database lookup', async () => {
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: ID, client_secret: "' OR 1=1 --" });
      expectError(res, 401, 'invalid_client', 'client authentication failed');
    });
  });
});

describe('POST /token behind a host body parser', () => {
  for (const extended of [false, true]) {
    describe(`with express.urlencoded({ extended: ${extended} }) mounted before the router`, () => {
      let db: ReturnType<typeof sqliteDatabase>;
      let server: Listening;
      let secret: string;
      let tokenUrl: string;

      before(async () => {
        db = sqliteDatabase();
        const store = createKnexStore(db.knex);
        await store.migrate();
        ({ clientSecret: secret } = await store.clients.create({ clientId: 'pre', name: 'p', scopes: ['a'], audiences: ['aud'] }));
        const app = express();
        app.use(express.urlencoded({ extended }));
        // The issuer URL holds the port: the router is made once the server listens.
        const mounted: { router?: express.Router } = {};
        app.use('/oauth', (req, res, next) => (mounted.router as express.Router)(req, res, next));
        server = await listen(app);
        mounted.router = authorizationServer({ issuer: `${server.url}/oauth`, store });
        tokenUrl = `${server.url}/oauth/token`;
      });
      after(async () => {
        await server.close();
        await db.destroy();
      });

      it('issues a token from the body the host already parsed', async () => {
        const res = await postForm(tokenUrl, { grant_type: 'client_credentials', client_id: 'pre', client_secret: secret });
        expect([res.status, (res.json as { scope: string }).scope]).to.deep.equal([200, 'a']);
      });

      it('still refuses a repeated parameter with 400 invalid_request', async () => {
        const res = await postForm(tokenUrl, 'grant_type=client_credentials&grant_type=client_credentials', { authorization: basic('pre', secret) });
        expect([res.status, res.json]).to.deep.equal([400, { error: 'invalid_request', error_description: 'the grant_type parameter is repeated' }]);
      });
    });
  }

  it('refuses a nested parameter from an extended parser with 400 invalid_request', async () => {
    const db = sqliteDatabase();
    const store = createKnexStore(db.knex);
    await store.migrate();
    const app = express();
    app.use(express.urlencoded({ extended: true }));
    let oauth: express.Router | undefined;
    app.use('/oauth', (req, res, next) => (oauth as express.Router)(req, res, next));
    const server = await listen(app);
    try {
      oauth = authorizationServer({ issuer: `${server.url}/oauth`, store });
      const res = await postForm(`${server.url}/oauth/token`, 'grant_type[x]=client_credentials');
      expect([res.status, res.json]).to.deep.equal([400, { error: 'invalid_request', error_description: 'the grant_type parameter is malformed' }]);
    } finally {
      await server.close();
      await db.destroy();
    }
  });
});

describe('POST /token with an oversized body', () => {
  it('answers a declared Content-Length over 4 kB with 413 before reading, and closes the connection', async () => {
    const issuer = await startIssuer();
    try {
      const res = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
        const req = httpRequest(issuer.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '1000000' } }, (r) => {
          let text = '';
          r.on('data', (c: Buffer) => { text += c.toString(); });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, text }));
        });
        req.on('error', reject);
        req.write('grant_type=client_credentials&'); // the rest never comes
      });
      expect([res.status, res.headers.connection, JSON.parse(res.text)]).to.deep.equal([413, 'close', {
        error: 'invalid_request', error_description: 'the request body exceeds 4096 bytes' }]);
    } finally {
      await issuer.close();
    }
  });
});
