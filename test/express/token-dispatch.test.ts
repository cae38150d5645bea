// How a token request reaches the handler and how its body is read: the shortcuts taken for the
// common case (the whole body already buffered, POST /token dispatched without the router's
// general matching) must look to the host exactly like the general path.
import { tracingChannel } from 'node:diagnostics_channel';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { expect } from 'chai';
import express, { type Request } from 'express';
import { authorizationServer, createKnexStore, type AuthorizationServer } from '../../lib/index.js';
import { sqliteDatabase, type TestDatabase } from '../support/db.js';
import { basic, listen, type Listening } from '../support/http.js';

const FORM = 'grant_type=client_credentials&scope=a';

/** What a host's middleware saw of one request once its response finished. */
interface Observed {
  route: string | undefined;
  params: unknown;
  ended: boolean;
  closed: boolean;
}

interface Host {
  url: string;
  auth: string;
  router: AuthorizationServer;
  observed: Observed[];
  close(): Promise<void>;
}

/**
 * An Express app with route-labelled metrics in front (`req.baseUrl + req.route.path` on finish,
 * as express-prom-bundle reads it) and listeners on the request's `end` and `close`.
 */
async function startHost(beforeCreate?: () => void): Promise<Host> {
  const db: TestDatabase = sqliteDatabase();
  const store = createKnexStore(db.knex, { tablePrefix: db.prefix });
  await store.migrate();
  const { clientId, clientSecret } = await store.clients.create({ name: 'dispatch', scopes: ['a'], audiences: ['aud'] });
  const app = express();
  const observed: Observed[] = [];
  app.use((req, res, next) => {
    const seen = { ended: false, closed: false };
    req.once('end', () => { seen.ended = true; });
    req.once('close', () => { seen.closed = true; });
    res.once('finish', () => {
      // close follows end by a tick or two: look once the request has settled.
      setTimeout(() => observed.push({
        route: (req as Request).route ? `${req.baseUrl}${String((req.route as { path: string }).path)}` : undefined,
        params: req.params,
        ...seen,
      }), 20);
    });
    next();
  });
  // The issuer URL holds the port: listen first, with a placeholder router.
  let mounted: express.Router = express.Router();
  app.use('/oauth', (req, res, next) => mounted(req, res, next));
  const server: Listening = await listen(app);
  beforeCreate?.();
  const router = authorizationServer({ issuer: `${server.url}/oauth`, store, rateLimit: false });
  mounted = router;
  await router.ready();
  return {
    url: server.url, auth: basic(clientId, clientSecret), router, observed,
    async close() {
      await server.close();
      await store.clients.flushUsage();
      await db.destroy();
    },
  };
}

/** A response read whole. */
interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  json: unknown;
}

function readAnswer(res: IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => { text += chunk; });
    res.on('end', () => {
      try {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(text) });
      } catch (err) {
        reject(err as Error);
      }
    });
    res.on('error', reject);
  });
}

/**
 * POSTs `parts` of a body one after the other, `gap` ms apart, the headers sent before the first
 * part; `length` false sends no Content-Length (chunked transfer encoding).
 */
function post(url: string, auth: string, parts: string[], options: { gap?: number; length?: boolean; agent?: Agent } = {}): Promise<Answer> {
  const body = parts.join('');
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', authorization: auth };
  if (options.length !== false) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers, ...(options.agent ? { agent: options.agent } : {}) }, (res) => {
      readAnswer(res).then(resolve, reject);
    });
    req.on('error', reject);
    if (parts.length === 1 && options.gap === undefined) {
      req.end(body);
      return;
    }
    req.flushHeaders();
    let i = 0;
    const next = (): void => {
      const part = parts[i++] as string;
      if (i === parts.length) req.end(part);
      else {
        req.write(part);
        setTimeout(next, options.gap ?? 20);
      }
    };
    setTimeout(next, options.gap ?? 20);
  });
}

/** Asserts a complete token response. */
function expectToken(answer: Answer): void {
  expect([answer.status, answer.headers['cache-control'], answer.headers.pragma, answer.headers['content-type']])
    .to.deep.equal([200, 'no-store', 'no-cache', 'application/json; charset=utf-8']);
  const body = answer.json as Record<string, unknown>;
  expect(Object.keys(body).sort()).to.deep.equal(['access_token', 'expires_in', 'scope', 'token_type']);
  expect([body.token_type, body.expires_in, body.scope]).to.deep.equal(['Bearer', 300, 'a']);
  expect(body.access_token).to.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
}

/** Waits until the host has recorded `count` requests. */
async function settled(host: Host, count: number): Promise<Observed[]> {
  for (let i = 0; i < 100 && host.observed.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return host.observed;
}

describe('POST /token: how the body arrives', () => {
  let host: Host;
  before(async () => { host = await startHost(); });
  after(async () => { await host.close(); });
  // A request of the test before may still be settling (its record comes 20 ms after its answer).
  beforeEach(async () => {
    await new Promise((resolve) => setTimeout(resolve, 60));
    host.observed.length = 0;
  });

  const cases: [string, string[], { gap?: number; length?: boolean }][] = [
    ['in the same packet as the headers', [FORM], {}],
    ['after the headers, in one later packet', [FORM], { gap: 30 }],
    ['in three packets 20 ms apart', [FORM.slice(0, 5), FORM.slice(5, 20), FORM.slice(20)], { gap: 20 }],
    ['with chunked transfer encoding and no Content-Length', [FORM.slice(0, 10), FORM.slice(10)], { length: false }],
  ];
  for (const [what, parts, options] of cases) {
    it(`issues a token for a body sent ${what}, and the request still ends and closes`, async () => {
      expectToken(await post(`${host.url}/oauth/token`, host.auth, parts, options));
      expect(await settled(host, 1)).to.deep.equal([{ route: '/oauth/token', params: {}, ended: true, closed: true }]);
    });
  }

  it('gives up on a body that stops short of its Content-Length when the client leaves, and serves the next request', async () => {
    const problems: unknown[] = [];
    host.router.events.on('internal_error', (event) => problems.push(event));
    // Declares 100 bytes, sends 37, then closes the connection.
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${host.url}/oauth/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: host.auth, 'content-length': '100' },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(FORM);
      setTimeout(() => req.destroy(), 50);
    });
    expectToken(await post(`${host.url}/oauth/token`, host.auth, [FORM]));
    expect(problems).to.deep.equal([]);
  });

  it('serves several token requests in turn on one keep-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set<unknown>();
      agent.on('free', (socket) => sockets.add(socket));
      for (let i = 0; i < 5; i++) expectToken(await post(`${host.url}/oauth/token`, host.auth, [FORM], { agent }));
      expect(sockets.size).to.equal(1);
      expect((await settled(host, 5)).map((o) => o.ended && o.closed)).to.deep.equal([true, true, true, true, true]);
    } finally {
      agent.destroy();
    }
  });

  it('answers 413 for a chunked body that grows past 4 kB, whether the pieces come together or apart', async () => {
    const big = `${FORM}&pad=${'x'.repeat(5000)}`;
    for (const gap of [0, 10]) {
      const answer = await post(`${host.url}/oauth/token`, host.auth, [big.slice(0, 3000), big.slice(3000)], { gap, length: false });
      expect([answer.status, answer.json]).to.deep.equal([413, { error: 'invalid_request', error_description: 'the request body exceeds 4096 bytes' }]);
    }
  });
});

describe('POST /token: dispatch', () => {
  it('shows the host the token route, whichever path the request takes through the router', async () => {
    const host = await startHost();
    try {
      for (const path of ['/oauth/token', '/oauth/token/', '/oauth/token?x=1']) {
        expectToken(await post(`${host.url}${path}`, host.auth, [FORM]));
      }
      expect(await settled(host, 3)).to.deep.equal([0, 1, 2].map(() => ({ route: '/oauth/token', params: {}, ended: true, closed: true })));
    } finally {
      await host.close();
    }
  });

  it('goes through the router when a tracer subscribes to express.router.request, which then sees the token handler', async () => {
    const host = await startHost();
    const channel = tracingChannel('express.router.request');
    const seen: string[] = [];
    const subscribers = {
      start(ctx: unknown) {
        const { route, handler } = ctx as { route?: unknown; handler?: { name?: string } };
        seen.push(`${String(route)} ${handler?.name ?? ''}`);
      },
      end() {}, asyncStart() {}, asyncEnd() {}, error() {},
    };
    channel.subscribe(subscribers);
    try {
      expectToken(await post(`${host.url}/oauth/token`, host.auth, [FORM]));
      expect(seen).to.include('/token tokenHandler');
      expect((await settled(host, 1)).map((o) => o.route)).to.deep.equal(['/oauth/token']);
    } finally {
      channel.unsubscribe(subscribers);
      await host.close();
    }
  });

  it('goes through the router when an APM agent has wrapped its layers (as OpenTelemetry does)', async () => {
    // OpenTelemetry's Express instrumentation wraps each layer's handle as the route is created,
    // through shimmer, which marks the wrapper __wrapped.
    const proto = (express.Router as unknown as { prototype: { route: (path: string) => unknown } }).prototype;
    const original = proto.route;
    let calls = 0;
    const host = await startHost(() => {
      proto.route = function route(this: { stack: { handle: (...args: unknown[]) => unknown }[] }, path: string) {
        const result = original.call(this, path);
        const layer = this.stack[this.stack.length - 1] as { handle: (...args: unknown[]) => unknown };
        const inner = layer.handle;
        const wrapper = Object.assign(function handle(this: unknown, ...args: unknown[]) {
          calls++;
          return inner.apply(this, args);
        }, { __wrapped: true });
        layer.handle = wrapper;
        return result;
      };
    });
    proto.route = original;
    try {
      expectToken(await post(`${host.url}/oauth/token`, host.auth, [FORM]));
      expect(calls).to.equal(1);
    } finally {
      await host.close();
    }
  });

  it('runs a layer the host put in front of the token route', async () => {
    const host = await startHost();
    try {
      let ran = 0;
      host.router.stack.unshift(...express.Router().use((_req, _res, next) => { ran++; next(); }).stack);
      expectToken(await post(`${host.url}/oauth/token`, host.auth, [FORM]));
      expect(ran).to.equal(1);
    } finally {
      await host.close();
    }
  });
});
