import { randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { TokenRequestError, type TokenRequestFailure } from '../errors.js';
import type { FetchFunction } from '../core/jwks.js';
import type { CachedToken } from './cache.js';

/** How the caller authenticates to the token endpoint (RFC 6749 §2.3.1, RFC 7523 §2.2). */
export type CallerAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** Algorithms a `private_key_jwt` assertion may be signed with (what jsonwebtoken signs with a private key). */
export type AssertionAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

/** Everything one token request needs, validated and defaulted by the client. Times in milliseconds. */
export interface TokenRequestConfig {
  /** Where the request goes: the token endpoint, or the revocation endpoint for a revocation request. */
  tokenUrl: string;
  /** Which endpoint `tokenUrl` is, for errors. Default `token`. */
  endpoint?: 'token' | 'revocation';
  clientId: string;
  authMethod: CallerAuthMethod;
  clientSecret: string | undefined;
  privateKey: KeyObject | undefined;
  assertionAlgorithm: AssertionAlgorithm | undefined;
  keyId: string | undefined;
  assertionAudience: string | undefined;
  scope: string;
  audience: readonly string[];
  resource: readonly string[];
  params: Readonly<Record<string, string>>;
  timeout: number;
  defaultLifetime: number;
  fetch: FetchFunction;
  clock: () => number;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_RESPONSE_BYTES = 256 * 1024;
const MAX_LIFETIME_SECONDS = 366 * 24 * 3600;

/** RFC 6749 Appendix B: the application/x-www-form-urlencoded serialisation of one value. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * The `Retry-After` header (RFC 9110 §10.2.3) in whole seconds, from delta-seconds or an HTTP date.
 * `undefined` when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function failure(
  config: TokenRequestConfig, reason: TokenRequestFailure, message: string,
  details: { status?: number; error?: string; description?: string; retryAfter?: number; retryable: boolean; cause?: unknown },
): TokenRequestError {
  const status = details.status === undefined ? '' : ` (HTTP ${details.status})`;
  return new TokenRequestError(`${config.endpoint ?? 'token'} request to ${config.tokenUrl} failed${status}: ${message}`, {
    reason, tokenUrl: config.tokenUrl, clientId: config.clientId, ...details,
  });
}

/**
 * Every form in which the credential may come back in a server's text: the secret as is,
 * percent- and form-encoded, and the Basic credential (`id:secret` form-encoded, then base64 or
 * base64url); the assertion and anything else sent that must stay private (a token being
 * revoked). Longest first, so that a form holding another is removed whole.
 */
function credentialForms(config: TokenRequestConfig, hidden: readonly (string | undefined)[]): string[] {
  const forms = [...hidden];
  const secret = config.clientSecret;
  if (secret !== undefined && secret.length > 0) {
    const pair = Buffer.from(`${formEncode(config.clientId)}:${formEncode(secret)}`);
    forms.push(secret, formEncode(secret), encodeURIComponent(secret), pair.toString('base64'), pair.toString('base64url'));
  }
  return [...new Set(forms.filter((f): f is string => f !== undefined && f.length > 0))].sort((a, b) => b.length - a.length);
}

/** Keeps what a server echoes of the credential (and of `hidden`) out of the text that reaches errors and logs. */
function redact(config: TokenRequestConfig, text: string, hidden: readonly (string | undefined)[]): string {
  let clean = text;
  for (const form of credentialForms(config, hidden)) clean = clean.split(form).join('[redacted]');
  return clean;
}

function createAssertion(config: TokenRequestConfig): string {
  const now = Math.floor(config.clock() / 1000);
  // RFC 7523 §3: iss and sub are the client id, aud the token endpoint, a short exp and a fresh jti
  // so that a captured assertion cannot be replayed (servers remember jti until exp).
  return jwt.sign({
    iss: config.clientId,
    sub: config.clientId,
    aud: config.assertionAudience ?? config.tokenUrl,
    jti: randomUUID(),
    iat: now,
    exp: now + 60,
  }, config.privateKey as KeyObject, {
    algorithm: config.assertionAlgorithm ?? 'RS256',
    ...(config.keyId === undefined ? {} : { keyid: config.keyId }),
  });
}

async function readBody(res: Response, limit: number): Promise<string | undefined> {
  const length = Number(res.headers.get('content-length'));
  if (Number.isFinite(length) && length > limit) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `expires_in` as seconds: a positive number, or a numeric string as some servers send. */
function lifetimeSeconds(value: unknown): number | 'absent' | 'invalid' {
  if (value === undefined || value === null) return 'absent';
  const n = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) return 'invalid';
  return Math.min(n, MAX_LIFETIME_SECONDS);
}

/**
 * Adds the client's authentication (RFC 6749 §2.3.1, RFC 7523 §2.2) to a request's `form` and
 * `headers`, the same for every endpoint it calls.
 *
 * @returns The assertion, when one was signed, so that it is kept out of errors.
 */
export function addClientAuthentication(config: TokenRequestConfig, form: URLSearchParams, headers: Record<string, string>): string | undefined {
  switch (config.authMethod) {
    case 'client_secret_basic':
      headers.authorization = `Basic ${Buffer.from(`${formEncode(config.clientId)}:${formEncode(config.clientSecret ?? '')}`).toString('base64')}`;
      return undefined;
    case 'client_secret_post':
      form.set('client_id', config.clientId);
      form.set('client_secret', config.clientSecret ?? '');
      return undefined;
    case 'private_key_jwt': {
      const assertion = createAssertion(config);
      form.set('client_id', config.clientId);
      form.set('client_assertion_type', ASSERTION_TYPE);
      form.set('client_assertion', assertion);
      return assertion;
    }
  }
}

/** The headers every request of the client sends: a form, answered in JSON. */
export const formHeaders = (): Record<string, string> => ({ accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' });

/** The request's headers and form, with the client's authentication, and the assertion when one was signed. */
function buildRequest(config: TokenRequestConfig): { headers: Record<string, string>; form: URLSearchParams; assertion: string | undefined } {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (config.scope !== '') form.set('scope', config.scope);
  for (const audience of config.audience) form.append('audience', audience);
  for (const resource of config.resource) form.append('resource', resource);
  for (const [name, value] of Object.entries(config.params)) form.append(name, value);
  const headers = formHeaders();
  const assertion = addClientAuthentication(config, form, headers);
  return { headers, form, assertion };
}

/**
 * Sends the request and reads the answer's body (`undefined` when over the limit).
 *
 * @throws TokenRequestError for a timeout, a redirect or a network failure.
 */
export async function send(config: TokenRequestConfig, headers: Record<string, string>, form: URLSearchParams): Promise<{ res: Response; text: string | undefined }> {
  try {
    const res = await config.fetch(config.tokenUrl, {
      method: 'POST',
      headers,
      body: form.toString(),
      redirect: 'error',
      signal: AbortSignal.timeout(config.timeout),
    });
    return { res, text: await readBody(res, MAX_RESPONSE_BYTES) };
  } catch (err) {
    const name = (err as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw failure(config, 'timeout', `no answer within ${config.timeout} ms`, { retryable: true });
    }
    const cause = (err as { cause?: { message?: unknown } }).cause;
    if (typeof cause?.message === 'string' && cause.message.includes('redirect')) {
      // A token request is never sent on to another location: the credentials would go with it.
      throw failure(config, 'http_error', `the ${config.endpoint ?? 'token'} endpoint answered with a redirect, which is not followed`, { retryable: false });
    }
    // The cause (an undici error) names the host and the system error; it holds no request body.
    throw failure(config, 'network_error', `the ${config.endpoint ?? 'token'} endpoint could not be reached`, { retryable: true, cause: err });
  }
}

/** The error for an answer other than 200 (RFC 6749 §5.2), the server's description redacted of `hidden` and the credential. */
export function refusal(config: TokenRequestConfig, res: Response, body: Record<string, unknown> | undefined, hidden: readonly (string | undefined)[]): TokenRequestError {
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'), config.clock());
  const code = body?.error;
  const retryable = isRetryableStatus(res.status)
    || code === 'temporarily_unavailable' || code === 'server_error';
  const extra = { status: res.status, retryable, ...(retryAfter === undefined ? {} : { retryAfter }) };
  if (typeof code === 'string' && /^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,100}$/.test(code)) {
    const description = typeof body?.error_description === 'string'
      ? redact(config, body.error_description, hidden) : undefined;
    return failure(config, 'oauth_error', description === undefined ? code : `${code}: ${description}`, {
      ...extra, error: code, ...(description === undefined ? {} : { description }),
    });
  }
  return failure(config, 'http_error', `the ${config.endpoint ?? 'token'} endpoint answered without an OAuth error`, extra);
}

/**
 * The token in a 200 answer (RFC 6749 §5.1), its lifetime counted from `started`.
 *
 * @throws TokenRequestError (`invalid_response`) when the answer is not a usable Bearer token.
 */
function readToken(config: TokenRequestConfig, body: Record<string, unknown> | undefined, text: string | undefined, started: number): CachedToken {
  const invalid = (message: string) => failure(config, 'invalid_response', message, { status: 200, retryable: false });
  if (body === undefined) throw invalid(text === undefined ? 'the answer is too large' : 'the answer is not a JSON object');
  const accessToken = body.access_token;
  if (typeof accessToken !== 'string' || accessToken.length === 0) throw invalid('the answer holds no access_token');
  const tokenType = body.token_type;
  // RFC 6749 §7.1: only a Bearer token can be attached as this client attaches it.
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') throw invalid('the token_type is not Bearer');
  const lifetime = lifetimeSeconds(body.expires_in);
  if (lifetime === 'invalid') throw invalid('expires_in is not a positive number');
  // RFC 6749 §5.1: an absent scope means the scope requested.
  const scope = typeof body.scope === 'string' ? body.scope : config.scope;
  // The lifetime counts from when the request was sent: the server's clock started no earlier.
  return {
    accessToken,
    tokenType: 'Bearer',
    scope,
    issuedAt: started,
    expiresAt: started + (lifetime === 'absent' ? config.defaultLifetime : lifetime * 1000),
  };
}

/**
 * Makes one client credentials token request (RFC 6749 §4.4.2) and reads the answer (§5.1, §5.2).
 * No retries: the client decides those from the error's `retryable`.
 *
 * @throws TokenRequestError for every failure, never holding the secret, an assertion or a token.
 */
export async function requestToken(config: TokenRequestConfig): Promise<CachedToken> {
  const { headers, form, assertion } = buildRequest(config);
  const started = config.clock();
  const { res, text } = await send(config, headers, form);
  const body = parseJsonObject(text);
  if (res.status !== 200) throw refusal(config, res, body, [assertion]);
  return readToken(config, body, text, started);
}
