import type { Client } from '../core/client.js';
import type { ScopePolicy } from '../core/grant.js';
import { isSigningAlgorithm, type SigningAlgorithm } from '../core/keys.js';
import {
  checkOptions, choiceOption, functionOption, InvalidOptionError, numberOption,
} from '../core/options.js';
import type { FetchFunction } from '../core/jwks.js';
import type { IssuerStore } from '../core/store.js';
import { checkIssuerUrl } from '../core/urls.js';
import { ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS, type AsymmetricAlgorithm } from '../core/verify.js';
import { checkRateLimit, type RateLimitOptions, type RateLimitSettings } from './rate-limit.js';

/** What the claims hook is told about the token being issued. */
export interface ClaimsContext {
  client: Client;
  scopes: readonly string[];
  audience: readonly string[];
}

/**
 * How `private_key_jwt` client assertions (RFC 7523 §2.2) are checked. A client's `jwks_uri` is
 * fetched as the resource server fetches a JWKS: cached, refetched at most once per cooldown for
 * an unknown `kid`, an outage answered with 503.
 */
export interface ClientAssertionOptions {
  /**
   * Accepted `alg` values, asymmetric only (never `none` or `HS*`). Default RS256, PS256, ES256.
   * Published as `token_endpoint_auth_signing_alg_values_supported`.
   */
  algorithms?: readonly AsymmetricAlgorithm[];
  /** Longest time from now to an assertion's `exp`, in seconds, 1 to 3600. Default 300. */
  maxLifetime?: number;
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds, 0 to 300. Default 30. */
  clockTolerance?: number;
  /** Deadline of one fetch of a client's `jwks_uri`, in seconds. Default 5. */
  jwksTimeout?: number;
  /** How long a client's fetched key set is used, in seconds. Default 600. */
  jwksCacheMaxAge?: number;
  /** Least time between two fetches of a client's `jwks_uri` for unknown `kid`s or after a failure, in seconds. Default 30. */
  jwksCooldown?: number;
  /** The `fetch` used for clients' `jwks_uri`s (a proxy, mTLS). Default: jwks-rsa's client through the platform's fetch. */
  fetch?: FetchFunction;
}

/** {@link ClientAssertionOptions} checked, with defaults. Times in seconds. */
export interface ClientAssertionSettings {
  algorithms: readonly AsymmetricAlgorithm[];
  maxLifetime: number;
  clockTolerance: number;
  jwksTimeout: number;
  jwksCacheMaxAge: number;
  jwksCooldown: number;
  fetch: FetchFunction | undefined;
}

const ASSERTION_OPTION_NAMES: readonly (keyof ClientAssertionOptions)[] = [
  'algorithms', 'maxLifetime', 'clockTolerance', 'jwksTimeout', 'jwksCacheMaxAge', 'jwksCooldown', 'fetch',
];

function checkAssertionAlgorithms(value: unknown): AsymmetricAlgorithm[] {
  if (value === undefined) return [...DEFAULT_ALGORITHMS];
  if (!Array.isArray(value) || value.length === 0 || !value.every((alg) => (ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(alg))) {
    throw new InvalidOptionError('clientAssertion.algorithms',
      `clientAssertion.algorithms must be a non-empty array of ${ASYMMETRIC_ALGORITHMS.join(', ')} (never none or HS*)`);
  }
  return [...new Set(value as AsymmetricAlgorithm[])];
}

function checkClientAssertion(value: unknown): ClientAssertionSettings {
  const options = value === undefined ? {} : checkOptions<ClientAssertionOptions>(value, 'clientAssertion', ASSERTION_OPTION_NAMES, 'clientAssertion');
  const within = (name: keyof ClientAssertionOptions, fallback: number, min: number, max: number): number =>
    numberOption(options[name], `clientAssertion.${name}`, { fallback, min, max, unit: 'seconds' });
  return {
    algorithms: checkAssertionAlgorithms(options.algorithms),
    maxLifetime: numberOption(options.maxLifetime, 'clientAssertion.maxLifetime', { fallback: 300, min: 1, max: 3600, integer: true, unit: 'seconds' }),
    clockTolerance: within('clockTolerance', 30, 0, 300),
    jwksTimeout: within('jwksTimeout', 5, 0.001, 60),
    jwksCacheMaxAge: within('jwksCacheMaxAge', 600, 1, 86_400),
    jwksCooldown: within('jwksCooldown', 30, 0, 86_400),
    fetch: functionOption(options.fetch, 'clientAssertion.fetch'),
  };
}

/** Options of {@link authorizationServer}. */
export interface AuthorizationServerOptions {
  /**
   * The issuer identifier: the absolute URL at which this router is mounted, for example
   * `https://auth.internal/oauth`. Sent as `iss` and in the metadata. https, or http on a loopback
   * host (localhost, 127.0.0.1, [::1]); no query, no fragment, no trailing slash. Required.
   */
  issuer: string;
  /** Where clients and keys live, usually `createKnexStore(knex)`. Required. */
  store: IssuerStore;
  /** Access-token lifetime in seconds when the client sets none. Default 300. */
  tokenLifetime?: number;
  /**
   * Upper bound of any token lifetime, per-client overrides included, in seconds. Default 3600.
   * A retired signing key stays in the JWKS at least this long plus one minute of clock skew (longer
   * if its stored `retention` says so); this retention is recorded with the keys the issuer signs
   * with, which is what `express-m2m keys list` reads.
   */
  maxTokenLifetime?: number;
  /**
   * `reject` (default): a request for a scope the client may not have fails with `invalid_scope`.
   * `downscope`: such a request gets the allowed part, echoed in the response's `scope`.
   */
  scopePolicy?: ScopePolicy;
  /**
   * Adds claims to each token. May be async. Reserved claims (`iss`, `sub`, `aud`, `exp`, `iat`,
   * `jti`, `client_id`, `scope`, ...) returned by the hook are ignored: they can never be overridden.
   */
  claims?: (context: ClaimsContext) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Algorithm of the key generated when the store holds none. ES256 (default), RS256 or PS256. */
  signingAlgorithm?: SigningAlgorithm;
  /** How long this instance keeps the key list before reading the store again, in seconds. Default 30. */
  keyCacheTtl?: number;
  /** `Cache-Control: max-age` of the JWKS response, in seconds. Default 300. */
  jwksMaxAge?: number;
  /** Brute-force protection for client authentication; false to switch off. Default: in memory. */
  rateLimit?: RateLimitOptions | false;
  /**
   * How `private_key_jwt` client assertions are checked. That method is offered when the store
   * keeps used assertions (`store.usedAssertions`, which `createKnexStore` has).
   */
  clientAssertion?: ClientAssertionOptions;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
}

const OPTION_NAMES: readonly (keyof AuthorizationServerOptions)[] = [
  'issuer', 'store', 'tokenLifetime', 'maxTokenLifetime', 'scopePolicy', 'claims', 'signingAlgorithm', 'keyCacheTtl',
  'jwksMaxAge', 'rateLimit', 'clientAssertion', 'clock',
];

/** {@link AuthorizationServerOptions} checked, with defaults. Times in seconds. */
export interface IssuerSettings {
  issuer: string;
  store: IssuerStore;
  tokenLifetime: number;
  maxTokenLifetime: number;
  scopePolicy: ScopePolicy;
  claims: AuthorizationServerOptions['claims'];
  signingAlgorithm: SigningAlgorithm;
  keyCacheTtl: number;
  jwksMaxAge: number;
  rateLimit: RateLimitSettings | false;
  clientAssertion: ClientAssertionSettings;
  clock: () => number;
}

const seconds = (value: unknown, name: string, fallback: number, max: number): number =>
  numberOption(value, name, { fallback, min: 1, max, integer: true, unit: 'seconds' });

/**
 * Checks the options of `authorizationServer()` once, at creation.
 *
 * @throws {@link InvalidOptionError} (a TypeError) naming the option.
 */
export function resolveIssuerOptions(options: AuthorizationServerOptions): IssuerSettings {
  checkOptions<AuthorizationServerOptions>(options, 'authorizationServer()', OPTION_NAMES);
  const store = options.store as unknown;
  if (store === null || typeof store !== 'object' || !(store as IssuerStore).clients || !(store as IssuerStore).keys) {
    throw new InvalidOptionError('store', 'store is required: use createKnexStore(knex) or an object implementing IssuerStore');
  }
  const maxTokenLifetime = seconds(options.maxTokenLifetime, 'maxTokenLifetime', 3600, 86_400);
  const signingAlgorithm = options.signingAlgorithm === undefined ? 'ES256' : options.signingAlgorithm;
  if (!isSigningAlgorithm(signingAlgorithm)) throw new InvalidOptionError('signingAlgorithm', 'signingAlgorithm must be ES256, RS256 or PS256');
  return {
    issuer: checkIssuerUrl(options.issuer),
    store: store as IssuerStore,
    maxTokenLifetime,
    tokenLifetime: seconds(options.tokenLifetime, 'tokenLifetime', Math.min(300, maxTokenLifetime), maxTokenLifetime),
    keyCacheTtl: seconds(options.keyCacheTtl, 'keyCacheTtl', 30, 3600),
    jwksMaxAge: seconds(options.jwksMaxAge, 'jwksMaxAge', 300, 86_400),
    scopePolicy: choiceOption(options.scopePolicy, 'scopePolicy', ['reject', 'downscope'] as const, 'reject'),
    claims: functionOption(options.claims, 'claims'),
    signingAlgorithm,
    rateLimit: checkRateLimit(options.rateLimit),
    clientAssertion: checkClientAssertion(options.clientAssertion),
    clock: functionOption(options.clock, 'clock', Date.now),
  };
}
