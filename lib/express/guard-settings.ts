import { createKeySource, type KeyFetchOutcome, type KeySource } from '../core/jwks.js';
import {
  booleanOption, checkOptions, choiceOption, functionOption, InvalidOptionError, numberOption,
} from '../core/options.js';
import type { ScopeMatch } from '../core/scope.js';
import { errorTypeOf, inSpan } from '../core/telemetry.js';
import { checkRemoteUrl } from '../core/urls.js';
import { createRevocationView, type RevocationReadOutcome, type RevocationView } from '../core/revocation-view.js';
import { checkAlgorithms, createTokenVerifier, type TokenVerifier } from '../core/verify.js';
import type { ResourceServerOptions, RevocationListOptions } from './resource-server.js';

/** Characters allowed in a quoted `realm` value here: printable ASCII without `"` and `\`. */
const REALM = /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,200}$/;

const OPTION_NAMES: readonly (keyof ResourceServerOptions)[] = [
  'issuer', 'audience', 'jwksUri', 'algorithms', 'clockTolerance', 'maxTokenAge', 'scopeClaim', 'match', 'optional', 'strict', 'claims',
  'isRevoked', 'revocations', 'jwksTimeout', 'jwksCacheMaxAge', 'jwksCooldown', 'jwksServeStale', 'tokenCacheSize', 'realm', 'errors',
  'allowHttp', 'fetch', 'clock',
];
const MATCHES: readonly ScopeMatch[] = ['all', 'any'];

const seconds = (value: unknown, name: string, fallback: number, min: number, max: number): number =>
  numberOption(value, name, { fallback, min, max, unit: 'seconds' });

/** What a resource server is made of, from its options checked once. */
export interface GuardSettings {
  verifier: TokenVerifier;
  keySource: KeySource;
  /** The revocation views, by issuer; empty without the `revocations` option. */
  revocationViews: ReadonlyMap<string, RevocationView>;
  realm: string;
  match: ScopeMatch;
  optional: boolean;
  errors: 'respond' | 'next';
}

function checkRealm(options: ResourceServerOptions): string {
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  const firstAudience = audiences[0] as string;
  const realm = options.realm === undefined ? (REALM.test(firstAudience) ? firstAudience : 'api') : options.realm;
  if (typeof realm !== 'string' || !REALM.test(realm)) {
    throw new InvalidOptionError('realm', 'realm must be 1 to 200 printable ASCII characters without quotes or backslashes');
  }
  return realm;
}

/** The key source: one jwks-rsa client per JWKS URI, given or discovered from each issuer. */
function keySourceFor(options: ResourceServerOptions, clock: () => number, onFetch: (outcome: KeyFetchOutcome) => void): KeySource {
  const allowHttp = booleanOption(options.allowHttp, 'allowHttp', false);
  const jwksUri = options.jwksUri === undefined ? undefined : checkRemoteUrl(options.jwksUri, 'jwksUri', allowHttp);
  const issuers = typeof options.issuer === 'string' ? [options.issuer] : [...options.issuer];
  if (jwksUri === undefined) {
    for (const issuer of issuers) checkRemoteUrl(issuer, `issuer ${JSON.stringify(issuer)} (used for discovery without jwksUri)`, allowHttp);
  }
  return createKeySource({
    issuers, jwksUri, allowHttp, fetch: functionOption(options.fetch, 'fetch'), clock, onFetch,
    timeout: seconds(options.jwksTimeout, 'jwksTimeout', 5, 0.001, 60) * 1000,
    cacheMaxAge: seconds(options.jwksCacheMaxAge, 'jwksCacheMaxAge', 600, 1, 86_400) * 1000,
    cooldown: seconds(options.jwksCooldown, 'jwksCooldown', 30, 0, 86_400) * 1000,
    serveStale: seconds(options.jwksServeStale, 'jwksServeStale', 0, 0, 7 * 86_400) * 1000,
  });
}

/**
 * The revocation views of the `revocations` option: one per issuer, each reading
 * `<issuer>/revocations` unless `uri` says otherwise (only with a single issuer).
 */
function revocationViewsFor(
  options: ResourceServerOptions, clock: () => number, onRead: (outcome: RevocationReadOutcome) => void,
): Map<string, RevocationView> {
  const views = new Map<string, RevocationView>();
  if (options.revocations === undefined || options.revocations === false) return views;
  const settings = options.revocations === true ? {}
    : checkOptions<RevocationListOptions>(options.revocations, 'revocations', ['uri', 'refreshInterval', 'maxStale', 'fetch'], 'revocations');
  const allowHttp = booleanOption(options.allowHttp, 'allowHttp', false);
  const issuers = typeof options.issuer === 'string' ? [options.issuer] : [...options.issuer];
  if (settings.uri !== undefined && issuers.length > 1) {
    throw new InvalidOptionError('revocations.uri', 'revocations.uri needs a single issuer; without it each issuer\'s <issuer>/revocations is read');
  }
  const interval = seconds(settings.refreshInterval, 'revocations.refreshInterval', 10, 0.1, 3600) * 1000;
  const maxStale = seconds(settings.maxStale, 'revocations.maxStale', 60, 1, 86_400) * 1000;
  if (maxStale < interval) throw new InvalidOptionError('revocations.maxStale', 'revocations.maxStale must be at least revocations.refreshInterval');
  const fetchFn = functionOption(settings.fetch, 'revocations.fetch')
    ?? functionOption(options.fetch, 'fetch', (input: string, init: RequestInit) => fetch(input, init));
  for (const issuer of issuers) {
    const uri = settings.uri ?? `${issuer.replace(/\/+$/, '')}/revocations`;
    views.set(issuer, createRevocationView({
      uri: checkRemoteUrl(uri, 'revocations.uri', allowHttp), interval, maxStale, clock, fetch: fetchFn, onRefresh: onRead,
      timeout: seconds(options.jwksTimeout, 'jwksTimeout', 5, 0.001, 60) * 1000,
    }));
  }
  return views;
}

/**
 * Checks the options of `createResourceServer()` once and builds its parts; `onFetch` is told of
 * each key set fetch, `onRevocations` of each read of a revocation list.
 *
 * @throws {@link InvalidOptionError} (a TypeError) naming the option.
 */
export function resolveGuardOptions(
  options: ResourceServerOptions, onFetch: (outcome: KeyFetchOutcome) => void, onRevocations: (outcome: RevocationReadOutcome) => void,
): GuardSettings {
  checkOptions<ResourceServerOptions>(options, 'createResourceServer()', OPTION_NAMES);
  if (options.issuer === undefined) throw new InvalidOptionError('issuer', 'issuer is required: the iss value(s) of accepted tokens');
  if (options.audience === undefined) throw new InvalidOptionError('audience', 'audience is required: the aud value(s) this resource server answers to');
  const clock = functionOption(options.clock, 'clock', Date.now);
  checkAlgorithms(options.algorithms);
  const match = choiceOption(options.match, 'match', MATCHES, 'all');
  const optional = booleanOption(options.optional, 'optional', false);
  const errors = choiceOption(options.errors, 'errors', ['respond', 'next'] as const, 'respond');
  const keySource = keySourceFor(options, clock, onFetch);
  const revocationViews = revocationViewsFor(options, clock, onRevocations);
  // The verifier validates issuer, audience, algorithms, clock tolerance, claims and cache size.
  const verifier = createTokenVerifier({
    issuer: options.issuer,
    audience: options.audience,
    getKey: (request) => inSpan('m2m.guard.key_lookup', request.kid === undefined ? {} : { 'm2m.kid': request.kid }, errorTypeOf,
      () => keySource.getKey(request)),
    isKeyCurrent: (key) => keySource.isCurrent(key),
    ...(options.algorithms !== undefined ? { algorithms: options.algorithms } : {}),
    ...(options.clockTolerance !== undefined ? { clockTolerance: options.clockTolerance } : {}),
    ...(options.maxTokenAge !== undefined ? { maxTokenAge: options.maxTokenAge } : {}),
    ...(options.scopeClaim !== undefined ? { scopeClaim: options.scopeClaim } : {}),
    ...(options.strict !== undefined ? { strict: options.strict } : {}),
    ...(options.claims !== undefined ? { claims: options.claims } : {}),
    ...(options.isRevoked !== undefined ? { isRevoked: options.isRevoked } : {}),
    ...(revocationViews.size > 0 ? { revocationView: (issuer: string) => revocationViews.get(issuer) } : {}),
    ...(options.tokenCacheSize !== undefined ? { tokenCacheSize: options.tokenCacheSize } : {}),
    clock,
  });
  return { verifier, keySource, revocationViews, realm: checkRealm(options), match, optional, errors };
}

/** Route options of `requireScope()` and `authenticate()`: the resource server's defaults, overridden. */
export function resolveRouteOptions(value: unknown, what: string, names: readonly ('match' | 'optional')[], defaults: GuardSettings): { match: ScopeMatch; optional: boolean } {
  const route = value === undefined ? {} : checkOptions<{ match?: unknown; optional?: unknown }>(value, what, names);
  return {
    match: choiceOption(route.match, 'match', MATCHES, defaults.match),
    optional: booleanOption(route.optional, 'optional', defaults.optional),
  };
}
