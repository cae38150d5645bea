import { constants, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { connect } from 'node:net';
import express from 'express';
import type { AsymmetricAlgorithm } from '../../lib/core/verify.js';
import { listen, type Listening, type ReadResponse } from '../support/http.js';

// Shared by the resource-server tests: a JWKS (and metadata) server on a loopback port that counts
// its requests and can be told to fail, and keys and tokens minted with node:crypto.

export const AUDIENCE = 'https://reports.internal';

/** A key pair with the JWK the test JWKS server publishes for it. */
export interface TestKey {
  kid: string;
  alg: AsymmetricAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The published JWK; `alg` is left out when created with `publishAlg: false`. */
  jwk: Record<string, unknown>;
}

const keyCache = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>();

const CURVES: Partial<Record<AsymmetricAlgorithm, string>> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** A key pair for `alg` (RSA 2048, or the algorithm's curve), generated once per test process and kind. */
export function makeKey(alg: TestKey['alg'], options: { kid?: string; publishAlg?: boolean; fresh?: boolean } = {}): TestKey {
  const kind = alg.startsWith('ES') ? alg : 'RSA';
  let pair = options.fresh ? undefined : keyCache.get(kind);
  if (!pair) {
    const namedCurve = CURVES[alg];
    pair = namedCurve !== undefined ? generateKeyPairSync('ec', { namedCurve }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    if (!options.fresh) keyCache.set(kind, pair);
  }
  const kid = options.kid ?? randomUUID();
  const jwk: Record<string, unknown> = { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig' };
  if (options.publishAlg !== false) jwk.alg = alg;
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk };
}

/** Current time in seconds. */
export const nowSeconds = (clock: () => number = Date.now): number => Math.floor(clock() / 1000);

/** Standard RFC 9068 claims for `issuer`, overridable; `undefined` values remove a claim. */
export function claims(issuer: string, extra: Record<string, unknown> = {}, clock: () => number = Date.now): Record<string, unknown> {
  const iat = nowSeconds(clock);
  const base: Record<string, unknown> = {
    iss: issuer, sub: 'svc-reports', aud: AUDIENCE, exp: iat + 300, iat, jti: randomUUID(), client_id: 'svc-reports',
    scope: 'reports:read reports:list', ...extra,
  };
  for (const [name, value] of Object.entries(base)) if (value === undefined) delete base[name];
  return base;
}

/**
 * Signs `payload` with `key` as a compact JWS (node:crypto directly, so that any claim set can be
 * signed as is); header `{ alg, typ: at+jwt, kid }` unless overridden (undefined removes).
 */
export function mint(key: TestKey, payload: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const fullHeader: Record<string, unknown> = { alg: key.alg, typ: 'at+jwt', kid: key.kid, ...header };
  for (const [name, value] of Object.entries(fullHeader)) if (value === undefined) delete fullHeader[name];
  const input = `${segment(fullHeader)}.${segment(payload)}`;
  const hash = `sha${key.alg.slice(2)}`;
  const options = key.alg.startsWith('ES') ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' as const }
    : key.alg.startsWith('PS') ? { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(key.alg.slice(2)) / 8 }
      : { key: key.privateKey };
  return `${input}.${sign(hash, Buffer.from(input), options).toString('base64url')}`;
}

/** base64url of a JSON value (or of a raw string). */
export const segment = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** What the JWKS server answers with. */
export type JwksMode = 'ok' | 'fail' | 'hang' | 'garbage' | 'empty' | 'huge' | 'huge-chunked';

/** A running JWKS and metadata server. */
export interface JwksServer {
  url: string;
  /** The issuer identifier its metadata names (default: `${url}/issuer`). */
  issuer: string;
  jwksUri: string;
  keys: TestKey[];
  mode: JwksMode;
  /** Requests to the JWKS path so far. */
  jwksRequests: number;
  /** The JWKS response's Cache-Control header; none when undefined. */
  cacheControl: string | undefined;
  /** Requests to any metadata path so far, by path. */
  metadataRequests: Record<string, number>;
  /** Which metadata documents are served: OpenID (`/.well-known/openid-configuration` appended), RFC 8414 inserted. */
  metadata: { openid: boolean; rfc8414: boolean; status: number; issuer?: string; jwksUri?: string };
  close(): Promise<void>;
}

/** Starts a JWKS server on a loopback port publishing `keys`. */
export async function startJwksServer(keys: TestKey[]): Promise<JwksServer> {
  const app = express();
  const hanging = new Set<express.Response>();
  const state = {} as JwksServer;
  app.get('/jwks.json', (_req, res) => {
    state.jwksRequests++;
    switch (state.mode) {
      case 'ok':
        if (state.cacheControl !== undefined) res.set('Cache-Control', state.cacheControl);
        res.json({ keys: state.keys.map((k) => k.jwk) });
        return;
      case 'empty': res.json({ keys: [] }); return;
      case 'fail': res.status(500).json({ error: 'boom' }); return;
      case 'garbage': res.type('application/json').send('{"keys": [ not json'); return;
      case 'hang': hanging.add(res); return;
      case 'huge': res.json({ keys: state.keys.map((k) => k.jwk), pad: 'x'.repeat(1024 * 1024) }); return;
      case 'huge-chunked':
        // No Content-Length: the limit must hold while the body streams in.
        res.type('application/json');
        for (let i = 0; i < 20; i++) res.write(i === 0 ? `{"keys":${JSON.stringify(state.keys.map((k) => k.jwk))},"pad":"` : 'x'.repeat(64 * 1024));
        res.end('"}');
        return;
    }
  });
  const metadataBody = () => ({ issuer: state.metadata.issuer ?? state.issuer, jwks_uri: state.metadata.jwksUri ?? state.jwksUri, token_endpoint: `${state.issuer}/token` });
  app.get(/^\/.*\.well-known\/.*$/, (req, res) => {
    state.metadataRequests[req.path] = (state.metadataRequests[req.path] ?? 0) + 1;
    const issuerPath = new URL(state.issuer).pathname.replace(/\/+$/, '');
    const served = (state.metadata.openid && req.path === `${issuerPath}/.well-known/openid-configuration`)
      || (state.metadata.rfc8414 && req.path === `/.well-known/oauth-authorization-server${issuerPath}`);
    if (!served) {
      res.status(404).json({ error: 'not_found' });
      return;
    }
    if (state.metadata.status !== 200) {
      res.status(state.metadata.status).json({ error: 'boom' });
      return;
    }
    res.json(metadataBody());
  });
  const server: Listening = await listen(app);
  Object.assign(state, {
    url: server.url, issuer: `${server.url}/issuer`, jwksUri: `${server.url}/jwks.json`, keys, mode: 'ok', jwksRequests: 0, cacheControl: undefined,
    metadataRequests: {}, metadata: { openid: true, rfc8414: false, status: 200 },
    async close() {
      for (const res of hanging) res.destroy();
      await server.close();
    },
  } satisfies JwksServer);
  return state;
}

/** Starts an Express app whose routes are added by `mount`, with a handler that echoes `req.auth`. */
export async function startApp(mount: (app: express.Express, echo: express.RequestHandler) => void): Promise<Listening> {
  const app = express();
  const echo: express.RequestHandler = (req, res) => {
    res.json({ auth: req.auth ?? null });
  };
  mount(app, echo);
  return listen(app);
}

/** `{ authorization: 'Bearer <token>' }`. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/**
 * Sends a raw HTTP/1.1 request over a socket (for what fetch refuses to send: two Authorization
 * headers) and reads the response. Headers are lower-cased; repeated ones are joined with ', '.
 */
export function rawRequest(url: string, lines: string[]): Promise<ReadResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.end(`${lines.join('\r\n')}\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).toLowerCase();
        const value = line.slice(i + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      const body = rest.join('\r\n\r\n');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: body, json });
    });
  });
}

/** The headers worth asserting on an error answer: everything but date, connection, keep-alive, length, etag. */
export function stableHeaders(res: ReadResponse): Record<string, string> {
  const { date: _d, connection: _c, 'keep-alive': _k, 'content-length': _l, etag: _e, ...rest } = res.headers;
  return rest;
}

/** Headers of a JSON error answer, with its challenge when given. */
export function errorHeaders(challenge: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'cache-control': 'no-store',
    pragma: 'no-cache',
    'content-type': 'application/json; charset=utf-8',
    'x-powered-by': 'Express',
    ...(challenge === undefined ? {} : { 'www-authenticate': challenge }),
    ...extra,
  };
}
