import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { AuthorizationServerOptions } from '../../lib/index.js';
import { basic, postForm, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { assertion, ASSERTION_TYPE, stableHeaders } from './private-key-jwt-fixtures.js';
import { makeKey, type TestKey } from './resource-server-fixtures.js';

// Shared by the revocation and introspection endpoint tests: an issuer on a clock the test moves,
// with one client per authentication method and one that may introspect.

export const REPORTS = 'https://reports.internal';
export const AUDIT = 'https://audit.internal';

/** The headers of the revocation endpoint's 200: no body, not to be cached. */
export const EMPTY_NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache', 'x-powered-by': 'Express' };

/** An issuer with its clients' credentials and a clock the test sets. */
export interface RevocationIssuer {
  issuer: TestIssuer;
  /** `owner` (client_secret_basic), `other`, `poster` (client_secret_post), `inspector` (may introspect). */
  secrets: Record<'owner' | 'other' | 'poster' | 'inspector', string>;
  /** The key of `keyed`, a private_key_jwt client. */
  key: TestKey;
  clock: { now: number };
  close(): Promise<void>;
}

/** Starts the issuer with its clients; `options` go to authorizationServer(). */
export async function startRevocationIssuer(options: Partial<Omit<AuthorizationServerOptions, 'store' | 'issuer' | 'clock'>> = {}): Promise<RevocationIssuer> {
  const clock = { now: Date.now() };
  const issuer = await startIssuer({ rateLimit: false, ...options, clock: () => clock.now });
  const { clients } = issuer.store;
  const base = { scopes: ['reports:read', 'reports:list'], audiences: [REPORTS, AUDIT] };
  const key = makeKey('ES256', { kid: 'keyed-1' });
  const created = {
    owner: await clients.create({ ...base, clientId: 'owner', name: 'owner', tokenEndpointAuthMethod: 'client_secret_basic' }),
    other: await clients.create({ ...base, clientId: 'other', name: 'other' }),
    poster: await clients.create({ ...base, clientId: 'poster', name: 'poster', tokenEndpointAuthMethod: 'client_secret_post' }),
    inspector: await clients.create({ clientId: 'inspector', name: 'inspector', scopes: ['m2m:introspect'], audiences: [REPORTS] }),
  };
  await clients.create({ ...base, clientId: 'keyed', name: 'keyed', jwks: { keys: [key.jwk] } });
  await issuer.as.ready();
  const secrets = Object.fromEntries(Object.entries(created).map(([id, c]) => [id, c.clientSecret])) as RevocationIssuer['secrets'];
  return { issuer, secrets, key, clock, close: () => issuer.close() };
}

/** A token for `clientId` from the issuer's /token, client_secret_basic. */
export async function tokenFor(ctx: RevocationIssuer, clientId: 'owner' | 'other' | 'inspector', form: Record<string, string> = {}): Promise<string> {
  const res = await postForm(ctx.issuer.tokenUrl, { grant_type: 'client_credentials', ...form }, { authorization: basic(clientId, ctx.secrets[clientId]) });
  expect(res.status, res.text).to.equal(200);
  return (res.json as { access_token: string }).access_token;
}

/** The `jti` of a token (not verified). */
export const jtiOf = (token: string): string => (jwt.decode(token) as { jti: string }).jti;

/** POSTs `form` to `/revoke` or `/introspect` as `clientId` with client_secret_basic. */
export function postAs(ctx: RevocationIssuer, path: 'revoke' | 'introspect', clientId: keyof RevocationIssuer['secrets'], form: Record<string, string | string[]> | string): Promise<ReadResponse> {
  return postForm(`${ctx.issuer.issuer}/${path}`, form, { authorization: basic(clientId, ctx.secrets[clientId]) });
}

/** POSTs `form` to `/revoke` or `/introspect` as the private_key_jwt client `keyed`. */
export function postAsKeyed(ctx: RevocationIssuer, path: 'revoke' | 'introspect', form: Record<string, string>): Promise<ReadResponse> {
  const clientAssertion = assertion(ctx.key, 'keyed', ctx.issuer.issuer);
  return postForm(`${ctx.issuer.issuer}/${path}`, { ...form, client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion });
}

/** What introspection says of `token`, asked by `inspector`. */
export async function activeness(ctx: RevocationIssuer, token: string): Promise<boolean> {
  const res = await postAs(ctx, 'introspect', 'inspector', { token });
  expect(res.status, res.text).to.equal(200);
  return (res.json as { active: boolean }).active;
}

/** Asserts the revocation endpoint's answer to any token it was given: 200, no body, no-store. */
export function expectRevocationAnswer(res: ReadResponse): void {
  expect([res.status, stableHeaders(res), res.headers['content-length'], res.text]).to.deep.equal([200, EMPTY_NO_STORE, '0', '']);
}

/** Asserts an RFC 6749 §5.2 error answer: status, the no-store JSON headers, exact body, no leak. */
export function expectError(res: ReadResponse, status: number, error: string, description: string, extra: Record<string, string> = {}): void {
  expect([res.status, stableHeaders(res), res.json]).to.deep.equal([status, {
    'cache-control': 'no-store', pragma: 'no-cache', 'content-type': 'application/json; charset=utf-8', 'x-powered-by': 'Express', ...extra,
  }, { error, error_description: description }]);
  expect(res.text).not.to.match(/at \w+ \(|select |insert |sqlite|node_modules|m2m_cs_|eyJ/i);
}
