import { randomBytes } from 'node:crypto';
import type { TokenClient, TokenClientEventMap } from '../../lib/index.js';
import express, { type Request } from 'express';
import { listen, type Listening } from '../support/http.js';

/** One request the token server received. */
export interface SeenTokenRequest {
  form: Record<string, string[]>;
  authorization: string | undefined;
  contentType: string | undefined;
  accept: string | undefined;
  at: number;
}

/** What the token server answers to one request; `hang` never answers. */
export type TokenAnswer =
  | { status: number; body?: unknown; raw?: string; headers?: Record<string, string> }
  | 'hang';

/** A loopback token endpoint that counts requests, chooses expires_in and fails on demand. */
export interface TestTokenServer extends Listening {
  issuer: string;
  tokenUrl: string;
  requests: SeenTokenRequest[];
  /** GET requests of any path other than the token endpoint (metadata, and 404s), by path. */
  reads: Record<string, number>;
  /** Issued tokens and when they expire (ms since epoch, real time). */
  issued: Map<string, number>;
  /** expires_in of the next tokens, in seconds; `undefined` leaves it out. Default 300. */
  expiresIn: number | string | undefined;
  /** Answers to give, first in first out, before the normal behaviour resumes. */
  queue: TokenAnswer[];
  /** When set, every request gets this answer (an outage). */
  always: TokenAnswer | undefined;
  /** Delay before answering, in ms. */
  delay: number;
  /** Accepted credentials: client id → secret. */
  clients: Map<string, string>;
}

function formOf(body: string): Record<string, string[]> {
  const form: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(body)) (form[k] ??= []).push(v);
  return form;
}

function basicCredentials(req: Request): [string, string] | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ') !== true) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const dec = (v: string) => decodeURIComponent(v.replace(/\+/g, ' '));
  return [dec(decoded.slice(0, colon)), dec(decoded.slice(colon + 1))];
}

/** Starts an instrumented token server; `clients` are the accepted id → secret pairs. */
export async function startTokenServer(clients: Record<string, string> = { 'svc-a': 'secret-a' }): Promise<TestTokenServer> {
  const app = express();
  const state = {
    requests: [] as SeenTokenRequest[],
    reads: {} as Record<string, number>,
    issued: new Map<string, number>(),
    expiresIn: 300 as number | string | undefined,
    queue: [] as TokenAnswer[],
    always: undefined as TokenAnswer | undefined,
    delay: 0,
    clients: new Map(Object.entries(clients)),
  };
  let issuer = '';
  app.use((req, _res, next) => {
    if (req.method === 'GET') state.reads[req.path] = (state.reads[req.path] ?? 0) + 1;
    next();
  });
  app.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.json({ issuer, token_endpoint: `${issuer}/token`, grant_types_supported: ['client_credentials'] });
  });
  app.post('/token', express.text({ type: '*/*' }), async (req, res) => {
    const form = formOf(typeof req.body === 'string' ? req.body : '');
    state.requests.push({
      form, authorization: req.headers.authorization, contentType: req.headers['content-type'], accept: req.headers.accept, at: Date.now(),
    });
    if (state.delay > 0) await new Promise((r) => setTimeout(r, state.delay));
    const answer = state.queue.shift() ?? state.always;
    if (answer === 'hang') return;
    if (answer !== undefined) {
      res.status(answer.status).set({ 'cache-control': 'no-store', ...answer.headers });
      if (answer.raw !== undefined) res.send(answer.raw);
      else if (answer.body !== undefined) res.json(answer.body);
      else res.end();
      return;
    }
    const basic = basicCredentials(req);
    const id = basic?.[0] ?? form.client_id?.[0];
    const secret = basic?.[1] ?? form.client_secret?.[0];
    if (id === undefined || state.clients.get(id) !== secret) {
      res.status(401).set('www-authenticate', 'Basic realm="test"').json({ error: 'invalid_client', error_description: 'client authentication failed' });
      return;
    }
    const token = `tok-${state.requests.length}-${randomBytes(12).toString('base64url')}`;
    const seconds = typeof state.expiresIn === 'string' ? Number(state.expiresIn) : state.expiresIn ?? 300;
    state.issued.set(token, Date.now() + seconds * 1000);
    res.set('cache-control', 'no-store').json({
      access_token: token, token_type: 'Bearer',
      ...(state.expiresIn === undefined ? {} : { expires_in: state.expiresIn }),
      ...(form.scope ? { scope: form.scope[0] } : {}),
    });
  });
  const server = await listen(app);
  issuer = server.url;
  return Object.assign(state, server, { issuer, tokenUrl: `${server.url}/token` });
}

/** One request the API received. */
export interface SeenApiRequest {
  method: string;
  token: string | undefined;
  body: string;
  /** Whether the token was known and unexpired when it arrived. */
  valid: boolean;
}

/** A loopback API that accepts the token server's unexpired tokens and refuses the rest with 401 invalid_token. */
export interface TestApi extends Listening {
  requests: SeenApiRequest[];
  /** Tokens refused even though unexpired (as if revoked). */
  refused: Set<string>;
  /** Answer every request with 401 invalid_token. */
  refuseAll: boolean;
}

export async function startApi(tokens: TestTokenServer): Promise<TestApi> {
  const app = express();
  const state = { requests: [] as SeenApiRequest[], refused: new Set<string>(), refuseAll: false };
  app.all('/{*path}', express.text({ type: '*/*' }), (req, res) => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') === true ? header.slice(7) : undefined;
    const expiresAt = token === undefined ? undefined : tokens.issued.get(token);
    const valid = expiresAt !== undefined && Date.now() < expiresAt && !state.refused.has(token as string) && !state.refuseAll;
    state.requests.push({ method: req.method, token, body: typeof req.body === 'string' ? req.body : '', valid });
    if (!valid) {
      res.status(401).set('www-authenticate', 'Bearer realm="api", error="invalid_token", error_description="the token is not valid"')
        .json({ error: 'invalid_token' });
      return;
    }
    res.json({ ok: true, method: req.method, path: req.path, body: typeof req.body === 'string' ? req.body : '' });
  });
  const server = await listen(app);
  return Object.assign(state, server);
}

/** Every payload of `event` the client emits from now on, in order. */
export function collect<K extends keyof TokenClientEventMap>(client: TokenClient, event: K): TokenClientEventMap[K][] {
  const seen: TokenClientEventMap[K][] = [];
  client.events.on(event, (payload) => seen.push(payload));
  return seen;
}
