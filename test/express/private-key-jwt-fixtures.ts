import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import express from 'express';
import type { AuthorizationServerEventMap } from '../../lib/index.js';
import { listen, postForm, type Listening, type ReadResponse } from '../support/http.js';
import type { TestIssuer } from '../support/issuer.js';
import { mint, nowSeconds, type TestKey } from './resource-server-fixtures.js';

// Shared by the private_key_jwt tests: client assertions minted with node:crypto (any header and
// claim set, signed as is), the token request that carries one, and the answers to expect.

/** RFC 7523 §2.2's client_assertion_type. */
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The answer to every failed client authentication. */
export const INVALID_CLIENT = { error: 'invalid_client', error_description: 'client authentication failed' };

/** The headers of every JSON answer of the token endpoint. */
export const JSON_NO_STORE = {
  'cache-control': 'no-store', pragma: 'no-cache', 'content-type': 'application/json; charset=utf-8', 'x-powered-by': 'Express',
};

/** The headers of an answer but those that vary (`date`, `connection`, `keep-alive`, `content-length`). */
export function stableHeaders(res: ReadResponse): Record<string, string> {
  const { date: _d, connection: _c, 'keep-alive': _k, 'content-length': _l, ...rest } = res.headers;
  return rest;
}

/** RFC 7523 §3 claims of `clientId` for `aud`, expiring in a minute; `undefined` values remove a claim. */
export function assertionClaims(clientId: string, aud: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  const claims: Record<string, unknown> = { iss: clientId, sub: clientId, aud, jti: randomUUID(), iat, exp: iat + 60, ...extra };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return claims;
}

/** A client assertion signed with `key`, header `{ alg, kid }` unless overridden (undefined removes). */
export function assertion(key: TestKey, clientId: string, aud: unknown, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  return mint(key, assertionClaims(clientId, aud, extra), { typ: undefined, ...header });
}

/** A client credentials request authenticated by `clientAssertion`. */
export function postAssertion(tokenUrl: string, clientAssertion: string, extra: Record<string, string | string[]> = {}, headers: Record<string, string> = {}): Promise<ReadResponse> {
  return postForm(tokenUrl, { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion, ...extra }, headers);
}

/** Asserts the 401 invalid_client answer of a body-authenticated client: no challenge. */
export function expectInvalidClient(res: ReadResponse): void {
  expect([res.status, stableHeaders(res), res.json]).to.deep.equal([401, JSON_NO_STORE, INVALID_CLIENT]);
}

/** Collects an issuer's events of one kind. */
export function collect<K extends keyof AuthorizationServerEventMap>(issuer: TestIssuer, name: K): AuthorizationServerEventMap[K][] {
  const seen: AuthorizationServerEventMap[K][] = [];
  issuer.as.events.on(name, (payload) => seen.push(payload));
  return seen;
}

/** A client's own JWKS server on a loopback port: its keys can change, and it counts its requests. */
export interface ClientJwksServer {
  url: string;
  keys: Record<string, unknown>[];
  requests: number;
  server: Listening;
}

/** Starts a JWKS server publishing `keys`. */
export async function startClientJwks(keys: Record<string, unknown>[]): Promise<ClientJwksServer> {
  const app = express();
  const state = { keys, requests: 0 } as ClientJwksServer;
  app.get('/jwks.json', (_req, res) => {
    state.requests++;
    res.type('application/jwk-set+json').send(JSON.stringify({ keys: state.keys }));
  });
  state.server = await listen(app);
  state.url = `${state.server.url}/jwks.json`;
  return state;
}
