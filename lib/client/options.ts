import { createPrivateKey, KeyObject, type JsonWebKeyInput } from 'node:crypto';
import {
  booleanOption, checkOptions, choiceOption, functionOption, InvalidOptionError, numberOption,
} from '../core/options.js';
import { checkRemoteUrl } from '../core/urls.js';
import { normalizeScopes } from '../core/scope.js';
import { memoryTokenCache, type TokenCache } from './cache.js';
import type { AssertionAlgorithm, CallerAuthMethod } from './token-request.js';

/** A private JWK as `createPrivateKey` takes it (node:crypto's `JsonWebKey` is gone from @types/node 26). */
type JsonWebKey = JsonWebKeyInput['key'];

/** A `fetch` as the platform provides it: used for token requests, discovery and the client's own `fetch`. */
export type CallerFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Which failed API requests {@link TokenClient.fetch} and the axios adapter replay once with a new
 * token after a 401 `invalid_token`: `idempotent` (default: GET, HEAD, OPTIONS, TRACE, PUT, DELETE,
 * RFC 9110 §9.2.2), `always` (any method), `never`. In every case the body must be re-readable
 * (absent, a string, bytes, a Blob, URLSearchParams or FormData; never a stream).
 */
export type ReplayPolicy = 'idempotent' | 'always' | 'never';

/** Retries of failed token requests: 5xx, 429, 408, network errors and timeouts only. Times in seconds. */
export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** Base of the exponential backoff (full jitter: a random wait up to base × 2^attempt). Default 0.2. */
  minDelay?: number;
  /**
   * Longest wait between two attempts. Default 10. A `Retry-After` longer than this ends the
   * retries at once: the error reaches the callers (and a background refresh tries again after it).
   */
  maxDelay?: number;
}

/**
 * Options of {@link tokenClient}. Exactly one of `tokenUrl` and `issuer`; exactly one of
 * `clientSecret` and `privateKey`; at most one of `audience` and `resource`. Times in seconds.
 */
export interface TokenClientOptions {
  /** The token endpoint. */
  tokenUrl?: string | undefined;
  /** The issuer whose metadata (RFC 8414, OpenID Connect Discovery) names the token endpoint; read once, when first needed. */
  issuer?: string | undefined;
  /**
   * The revocation endpoint (RFC 7009) that {@link TokenClient.revoke} posts the token to.
   * Default: the `revocation_endpoint` of the issuer's metadata when `issuer` is given, else none
   * (revoke() then drops the token without telling the issuer and rejects).
   */
  revocationUrl?: string | undefined;
  /** The client id. */
  clientId: string;
  /** The client secret, for `client_secret_basic` (the default) and `client_secret_post`. */
  clientSecret?: string | undefined;
  /** The private key for `private_key_jwt` (RFC 7523): a KeyObject, a PEM string or a private JWK. */
  privateKey?: KeyObject | string | JsonWebKey | undefined;
  /** Default: `client_secret_basic` with a secret, `private_key_jwt` with a key. */
  authMethod?: CallerAuthMethod;
  /** The assertion's `alg`. Default from the key: RS256 (RSA), PS256 (RSA-PSS), ES256/ES384/ES512 (P-256/384/521). */
  assertionAlgorithm?: AssertionAlgorithm;
  /** The assertion header's `kid`, when the server holds several keys of this client. */
  keyId?: string;
  /** The assertion's `aud`. Default: the token endpoint URL (RFC 7523 §3). Some servers want their issuer. */
  assertionAudience?: string;
  /** Scope to request, a space-delimited string or a list. Default: none (the server's default). */
  scope?: string | readonly string[];
  /** Sent as `audience` parameters (Auth0, this package's issuer). */
  audience?: string | readonly string[];
  /** Sent as RFC 8707 `resource` parameters (this package's issuer, Keycloak, Entra ID v1). */
  resource?: string | readonly string[];
  /** Extra token request parameters. Cannot override the ones this client sets. */
  params?: Readonly<Record<string, string>>;
  /** Where tokens are kept between calls. Default: a {@link memoryTokenCache} of this client's own. */
  cache?: TokenCache;
  /** Deadline of one token or metadata request. Default 10. */
  timeout?: number;
  /** Lifetime assumed for a token answered without `expires_in`. Default 300. */
  defaultLifetime?: number;
  /**
   * A token is not used within this time of its expiry, so that it reaches the API alive despite
   * latency and clock skew; capped at a tenth of the token's lifetime. Default 10.
   */
  expiryMargin?: number;
  /**
   * The background refresh starts at a random point between 65% and 85% of the token's lifetime
   * and never later than this before expiry (capped at a quarter of the lifetime). Default 60.
   */
  refreshMargin?: number;
  /** Retries of failed token requests, or `false` for none. */
  retry?: RetryOptions | false;
  /** Which requests are replayed once after a 401 `invalid_token`. Default `idempotent`. */
  replay?: ReplayPolicy;
  /**
   * With a cache that locks ({@link redisTokenCache}): how long one process may hold the lock while
   * it fetches, and how long the others wait for its token before fetching their own. Default: `timeout` + 2.
   */
  lockTimeout?: number;
  /** Allow an http (not https) token endpoint or issuer off loopback hosts. Default false. */
  allowHttp?: boolean;
  /** The `fetch` for token and metadata requests and for {@link TokenClient.fetch}. Default: the platform's. */
  fetch?: CallerFetch;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
}

/** The options, validated and converted to milliseconds. */
export interface ResolvedOptions {
  tokenUrl: string | undefined;
  issuer: string | undefined;
  revocationUrl: string | undefined;
  clientId: string;
  clientSecret: string | undefined;
  privateKey: KeyObject | undefined;
  authMethod: CallerAuthMethod;
  assertionAlgorithm: AssertionAlgorithm | undefined;
  keyId: string | undefined;
  assertionAudience: string | undefined;
  scope: string;
  audience: string[];
  resource: string[];
  params: Record<string, string>;
  cache: TokenCache;
  timeout: number;
  defaultLifetime: number;
  expiryMargin: number;
  refreshMargin: number;
  retries: number;
  minDelay: number;
  maxDelay: number;
  replay: ReplayPolicy;
  lockTimeout: number;
  allowHttp: boolean;
  fetch: CallerFetch;
  clock: () => number;
  /** What the cache key and sealing key derive from: the secret, or the private key's PKCS#8 DER. */
  credential: string;
}

const AUTH_METHODS: readonly CallerAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
const REPLAY_POLICIES: readonly ReplayPolicy[] = ['idempotent', 'always', 'never'];
const RESERVED_PARAMS = new Set([
  'grant_type', 'scope', 'audience', 'resource', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type',
]);
/** Every option of {@link TokenClientOptions}: any other name is a typo, refused at creation. */
export const TOKEN_CLIENT_OPTION_NAMES: readonly (keyof TokenClientOptions)[] = [
  'tokenUrl', 'issuer', 'revocationUrl', 'clientId', 'clientSecret', 'privateKey', 'authMethod', 'assertionAlgorithm', 'keyId',
  'assertionAudience', 'scope', 'audience', 'resource', 'params', 'cache', 'timeout', 'defaultLifetime', 'expiryMargin',
  'refreshMargin', 'retry', 'replay', 'lockTimeout', 'allowHttp', 'fetch', 'clock',
];
const RETRY_OPTION_NAMES: readonly (keyof RetryOptions)[] = ['retries', 'minDelay', 'maxDelay'];

/** Seconds within bounds (`fallback` when not given), in milliseconds. */
function seconds(value: unknown, name: string, fallback: number, min: number, max: number): number {
  return numberOption(value, name, { fallback, min, max, unit: 'seconds' }) * 1000;
}

/**
 * A non-empty string without control characters, which would end up in headers and form bodies.
 *
 * @param label - How the value is named in the message, when not by `name` (`a params name`).
 */
function text(value: unknown, name: string, max = 4096, label = name): string {
  // eslint-disable-next-line no-control-regex -- the point is to find control characters
  if (typeof value !== 'string' || value.length === 0 || value.length > max || /[\x00-\x1F\x7F]/.test(value)) {
    throw new InvalidOptionError(name, `${label} must be a non-empty string of printable characters, at most ${max} long`);
  }
  return value;
}

/** A string or a non-empty list of them, deduplicated; `[]` when not given. */
function list(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items) || items.length === 0) throw new InvalidOptionError(name, `${name} must be a string or a non-empty list of strings`);
  return [...new Set(items.map((item: unknown) => text(item, name, 2048)))];
}

/** A space-delimited string or a list of RFC 6749 §3.3 scope tokens; `[]` when not given. */
function scopes(value: unknown): string[] {
  if (value === undefined) return [];
  const tokens = typeof value === 'string' ? value.split(' ').filter((s) => s !== '') : value;
  try {
    return normalizeScopes(tokens as string[], 'scope');
  } catch (err) {
    throw new InvalidOptionError('scope', (err as Error).message);
  }
}

/** A remote URL (see {@link checkRemoteUrl}) without credentials or fragment. */
function endpoint(value: unknown, name: string, allowHttp: boolean): string {
  checkRemoteUrl(value, name, allowHttp);
  const url = new URL(value as string);
  // Errors and events name the endpoint: credentials in it would leak there.
  if (url.username !== '' || url.password !== '') throw new InvalidOptionError(name, `${name} must not hold a user name or password`);
  if (url.hash !== '') throw new InvalidOptionError(name, `${name} must not hold a fragment`);
  return value as string;
}

function importKey(value: unknown): KeyObject {
  let key: KeyObject;
  try {
    if (value instanceof KeyObject) key = value;
    else if (typeof value === 'string') key = createPrivateKey(value);
    else if (value !== null && typeof value === 'object') key = createPrivateKey({ key: value as JsonWebKey, format: 'jwk' });
    else throw new TypeError('privateKey');
  } catch {
    // Never quote the input: it is a private key.
    throw new InvalidOptionError('privateKey', 'privateKey must be a private KeyObject, a PEM private key or a private JWK');
  }
  if (key.type !== 'private') throw new InvalidOptionError('privateKey', 'privateKey must be a private key, not a public or secret one');
  return key;
}

function checkCache(value: unknown): TokenCache {
  const cache = value as Partial<TokenCache> | null;
  if (cache === null || typeof cache !== 'object' || typeof cache.get !== 'function' || typeof cache.set !== 'function'
    || typeof cache.delete !== 'function') {
    throw new InvalidOptionError('cache', 'cache must be a TokenCache (get, set, delete)');
  }
  return cache as TokenCache;
}

function checkParams(value: unknown): Record<string, string> {
  const params: Record<string, string> = {};
  if (value === undefined) return params;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError('params', 'params must be an object of strings');
  for (const [name, item] of Object.entries(value)) {
    if (RESERVED_PARAMS.has(name)) throw new InvalidOptionError(`params.${name}`, `params cannot set ${name}: it has its own option or is set by the client`);
    params[text(name, 'params', 256, 'a params name')] = text(item, `params.${name}`);
  }
  return params;
}

/** The `retry` option: `false`, or an object of {@link RetryOptions}. Times in milliseconds. */
function checkRetry(value: unknown): { retries: number; minDelay: number; maxDelay: number } {
  if (value === false) return { retries: 0, minDelay: 0, maxDelay: 0 };
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new InvalidOptionError('retry', 'retry must be an object or false');
  }
  const retry = value === undefined ? {} : checkOptions<RetryOptions>(value, 'retry', RETRY_OPTION_NAMES, 'retry');
  return {
    retries: numberOption(retry.retries, 'retry.retries', { fallback: 3, min: 0, max: 10, integer: true }),
    minDelay: seconds(retry.minDelay, 'retry.minDelay', 0.2, 0, 60),
    maxDelay: seconds(retry.maxDelay, 'retry.maxDelay', 10, 0, 600),
  };
}

function algorithmFor(key: KeyObject, wanted: unknown): AssertionAlgorithm {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const fits: AssertionAlgorithm[] = type === 'rsa' ? ['RS256', 'PS256', 'RS384', 'PS384', 'RS512', 'PS512']
    : type === 'rsa-pss' ? ['PS256', 'PS384', 'PS512']
      : type === 'ec' && curve === 'prime256v1' ? ['ES256']
        : type === 'ec' && curve === 'secp384r1' ? ['ES384']
          : type === 'ec' && curve === 'secp521r1' ? ['ES512'] : [];
  if (fits.length === 0) throw new InvalidOptionError('privateKey', 'privateKey must be an RSA key or an EC key on P-256, P-384 or P-521');
  if (wanted === undefined) return fits[0] as AssertionAlgorithm;
  if (!fits.includes(wanted as AssertionAlgorithm)) {
    throw new InvalidOptionError('assertionAlgorithm', `assertionAlgorithm must be one of ${fits.join(', ')} for this key`);
  }
  return wanted as AssertionAlgorithm;
}

// One function for every client: tokenClients() shares metadata reads per fetch function, so a
// wrapper made per client would read the issuer's metadata once per registration.
const platformFetch: CallerFetch = (input, init) => fetch(input, init);

/**
 * Validates and defaults {@link TokenClientOptions} once, at creation. Only `undefined` means
 * "not given": `null`, or `'5'` for a number, is refused, never replaced by the default.
 *
 * @throws {@link InvalidOptionError} (a TypeError) naming the bad option, never quoting a secret or a key.
 */
export function resolveOptions(options: TokenClientOptions): ResolvedOptions {
  checkOptions<TokenClientOptions>(options, 'tokenClient()', TOKEN_CLIENT_OPTION_NAMES);
  const allowHttp = booleanOption(options.allowHttp, 'allowHttp', false);
  const tokenUrl = options.tokenUrl === undefined ? undefined : endpoint(options.tokenUrl, 'tokenUrl', allowHttp);
  const issuer = options.issuer === undefined ? undefined : endpoint(options.issuer, 'issuer', allowHttp);
  if ((tokenUrl === undefined) === (issuer === undefined)) throw new InvalidOptionError('tokenUrl', 'give exactly one of tokenUrl and issuer');
  const revocationUrl = options.revocationUrl === undefined ? undefined : endpoint(options.revocationUrl, 'revocationUrl', allowHttp);
  const clientId = text(options.clientId, 'clientId', 1024);

  const clientSecret: unknown = options.clientSecret;
  if (clientSecret !== undefined && (typeof clientSecret !== 'string' || clientSecret.length === 0 || clientSecret.length > 4096)) {
    throw new InvalidOptionError('clientSecret', 'clientSecret must be a non-empty string');
  }
  const privateKey = options.privateKey === undefined ? undefined : importKey(options.privateKey);
  if ((clientSecret === undefined) === (privateKey === undefined)) {
    throw new InvalidOptionError('clientSecret', 'give exactly one of clientSecret and privateKey');
  }
  const authMethod = choiceOption(options.authMethod, 'authMethod', AUTH_METHODS, privateKey ? 'private_key_jwt' : 'client_secret_basic');
  if ((authMethod === 'private_key_jwt') !== (privateKey !== undefined)) {
    throw new InvalidOptionError('authMethod', authMethod === 'private_key_jwt' ? 'private_key_jwt needs privateKey' : `${authMethod} needs clientSecret`);
  }
  const assertionOnly = (['assertionAlgorithm', 'keyId', 'assertionAudience'] as const).find((name) => options[name] !== undefined);
  if (privateKey === undefined && assertionOnly !== undefined) {
    throw new InvalidOptionError(assertionOnly, 'assertionAlgorithm, keyId and assertionAudience apply to private_key_jwt only');
  }
  const assertionAlgorithm = privateKey === undefined ? undefined : algorithmFor(privateKey, options.assertionAlgorithm);

  const audience = list(options.audience, 'audience');
  const resource = list(options.resource, 'resource');
  if (audience.length > 0 && resource.length > 0) throw new InvalidOptionError('resource', 'give at most one of audience and resource');
  const timeout = seconds(options.timeout, 'timeout', 10, 0.001, 600);
  const retry = checkRetry(options.retry);

  return {
    tokenUrl, issuer, revocationUrl, clientId,
    clientSecret: clientSecret as string | undefined,
    privateKey,
    authMethod,
    assertionAlgorithm,
    keyId: options.keyId === undefined ? undefined : text(options.keyId, 'keyId', 256),
    assertionAudience: options.assertionAudience === undefined ? undefined : text(options.assertionAudience, 'assertionAudience', 2048),
    scope: scopes(options.scope).join(' '),
    audience,
    resource,
    params: checkParams(options.params),
    cache: options.cache === undefined ? memoryTokenCache() : checkCache(options.cache),
    timeout,
    defaultLifetime: seconds(options.defaultLifetime, 'defaultLifetime', 300, 1, 366 * 24 * 3600),
    expiryMargin: seconds(options.expiryMargin, 'expiryMargin', 10, 0, 3600),
    refreshMargin: seconds(options.refreshMargin, 'refreshMargin', 60, 0, 24 * 3600),
    ...retry,
    replay: choiceOption(options.replay, 'replay', REPLAY_POLICIES, 'idempotent'),
    lockTimeout: seconds(options.lockTimeout, 'lockTimeout', timeout / 1000 + 2, 0.01, 600),
    allowHttp,
    fetch: functionOption(options.fetch, 'fetch', platformFetch),
    clock: functionOption(options.clock, 'clock', Date.now),
    credential: privateKey === undefined
      ? clientSecret as string
      : privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
  };
}
