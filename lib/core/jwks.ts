import { createPublicKey } from 'node:crypto';
import jwksRsa from 'jwks-rsa';
import { InvalidTokenError, type TemporarilyUnavailableError } from '../errors.js';
import { discoverMetadata, fetchJson } from './metadata.js';
import { errorTypeOf, inSpan, instruments } from './telemetry.js';
import { unavailable } from './unavailable.js';
import { checkRemoteUrl } from './urls.js';
import type { KeyRequest, VerificationKey } from './verify.js';

/** A `fetch` as the platform provides it; hosts may pass their own (proxy, mTLS, instrumentation). */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

/** Options of {@link createKeySource}. Times are in milliseconds. */
export interface KeySourceOptions {
  /** Accepted issuers, used for discovery when `jwksUri` is absent. */
  issuers: readonly string[];
  /** The JWKS location for every issuer. Absent: discovered per issuer (RFC 8414, OpenID Connect Discovery). */
  jwksUri?: string | undefined;
  /** Deadline of one JWKS or metadata request. */
  timeout: number;
  /** How long a fetched key set is used before it is fetched again. */
  cacheMaxAge: number;
  /** Least time between two refetches caused by an unknown `kid`. */
  cooldown: number;
  /** How long past `cacheMaxAge` the last key set may still be used while the JWKS is unreachable. 0: never. */
  serveStale: number;
  /** Also allow http (not only https) for the JWKS and metadata off loopback hosts. */
  allowHttp: boolean;
  /** Used for metadata, and for the JWKS instead of jwks-rsa's own client when given. */
  fetch: FetchFunction | undefined;
  /** Current time in milliseconds since the epoch. */
  clock: () => number;
  /** Told of every JWKS fetch and failed metadata discovery, for events and metrics. */
  onFetch?: ((outcome: KeyFetchOutcome) => void) | undefined;
}

/** A JWKS fetch that imported `kids`, or a JWKS or metadata fetch (`url`) that failed. */
export type KeyFetchOutcome =
  | { ok: true; url: string; kids: string[]; durationMs: number }
  | { ok: false; url: string; error: unknown; durationMs: number };

/** Finds verification keys for tokens; see {@link createKeySource}. */
export interface KeySource {
  getKey(request: KeyRequest): Promise<VerificationKey>;
  /**
   * False once a refetched key set no longer holds `key` (the issuer withdrew or replaced it), so
   * that tokens verified with it earlier stop being trusted from a cache.
   */
  isCurrent(key: VerificationKey): boolean;
  /** Fetches every key set in use again now, whatever its age or a recent failure. */
  refresh(): Promise<void>;
}

interface KeySet {
  byKid: Map<string, VerificationKey>;
  all: VerificationKey[];
  /** Each key by its PEM, so that a refetch keeps the same object for an unchanged key. */
  byPem: Map<string, VerificationKey>;
  fetchedAt: number;
  /** When the set must be fetched again: `cacheMaxAge`, or the JWKS's own `max-age` when lower. */
  expiresAt: number;
}

/** What a remote key set shares with its source: withdrawn keys, and the set each key came from. */
interface KeyRegistry {
  withdrawn: WeakSet<VerificationKey>;
  setOf: WeakMap<VerificationKey, KeySet>;
  fetch: FetchFunction;
}

/**
 * The keys jwks-rsa made of a key set, by kid and by PEM. Each is imported once per fetch, never
 * per verification, and an unchanged key keeps its object from `previous`, which the
 * verified-token cache checks with `isCurrent()`.
 */
function indexKeys(signingKeys: readonly jwksRsa.SigningKey[], previous: KeySet | undefined): Pick<KeySet, 'byKid' | 'byPem' | 'all'> {
  const byKid = new Map<string, VerificationKey>();
  const byPem = new Map<string, VerificationKey>();
  const all: VerificationKey[] = [];
  for (const signingKey of signingKeys) {
    const pem = signingKey.getPublicKey();
    const alg = signingKey.alg || undefined;
    const known = previous?.byPem.get(pem);
    const key: VerificationKey = known !== undefined && known.alg === alg ? known : { key: createPublicKey(pem), alg };
    all.push(key);
    byPem.set(pem, key);
    if (typeof signingKey.kid === 'string' && !byKid.has(signingKey.kid)) byKid.set(signingKey.kid, key);
  }
  return { byKid, byPem, all };
}

function find(set: KeySet, kid: string | undefined): VerificationKey | undefined {
  if (kid !== undefined) return set.byKid.get(kid);
  // RFC 7515 §4.1.4: kid is optional; without it only a set of one key is unambiguous.
  return set.all.length === 1 ? set.all[0] : undefined;
}

function unknownKey(kid: string | undefined): InvalidTokenError {
  return new InvalidTokenError(kid === undefined ? 'the token names no key and the key set holds several' : 'no key matches the token kid');
}

function keysUnavailable(cause: unknown): TemporarilyUnavailableError {
  return unavailable('the signing keys are unavailable', cause);
}

/** One remote JWKS: one jwks-rsa client, its keys imported once, refetches bounded. */
function createRemoteKeySet(jwksUri: string, options: KeySourceOptions, registry: KeyRegistry) {
  const { timeout, cacheMaxAge, cooldown, serveStale, clock } = options;
  /** The JWKS response's Cache-Control max-age, in seconds, from the last fetch. */
  let servedMaxAge: number | undefined;
  // jwks-rsa fetches (through its fetcher hook, with the host's fetch or the platform's, so that
  // the response's Cache-Control can be read) and turns JWKs into keys. Its own per-kid cache and
  // token-bucket rate limit are off: the cache fetches the whole set again for every unknown kid,
  // and a flood of unknown kids drains the bucket that a valid kid needs when its entry expires.
  // The key set is held here instead, whole, with a cooldown on unknown-kid refetches that valid
  // kids never wait for.
  const client = new jwksRsa.JwksClient({
    jwksUri,
    cache: false,
    rateLimit: false,
    timeout,
    fetcher: async (uri: string) => {
      const { body, maxAge } = await fetchJson(registry.fetch, uri, timeout, 'application/jwk-set+json, application/json');
      servedMaxAge = maxAge;
      return body as { keys: unknown };
    },
  });
  let current: KeySet | undefined;
  let inflight: Promise<KeySet> | undefined;
  /** When the last fetch failed and why; undefined once a fetch succeeds. */
  let lastFailure: { at: number; cause: unknown } | undefined;
  /** When the last refetch for an unknown kid started. */
  let lastUnknownKidFetch = Number.NEGATIVE_INFINITY;

  async function load(): Promise<KeySet> {
    servedMaxAge = undefined;
    const signingKeys = await inSpan('m2m.jwks.fetch', { 'url.full': jwksUri }, errorTypeOf, () => withDeadline(client.getSigningKeys(), timeout));
    const fetchedAt = clock();
    const maxAge = servedMaxAge === undefined ? cacheMaxAge : Math.min(cacheMaxAge, servedMaxAge * 1000);
    return { ...indexKeys(signingKeys, current), fetchedAt, expiresAt: fetchedAt + maxAge };
  }

  /**
   * Fetches the set; concurrent callers share one request. A failure is remembered: until
   * `cooldown` has passed, callers get it again without a request, so a failing JWKS sees one
   * request per cooldown however many tokens arrive.
   */
  function refresh(now: number, force = false): Promise<KeySet> {
    if (inflight) return inflight;
    if (!force && lastFailure !== undefined && now - lastFailure.at < cooldown) return Promise.reject(keysUnavailable(lastFailure.cause));
    const started = performance.now();
    const took = (): number => performance.now() - started;
    inflight = load().then(
      (set) => {
        instruments().jwksFetches.add(1, { 'm2m.outcome': 'success' });
        options.onFetch?.({ ok: true, url: jwksUri, kids: [...set.byKid.keys()], durationMs: took() });
        const kept = new Set(set.all);
        for (const key of current?.all ?? []) if (!kept.has(key)) registry.withdrawn.add(key);
        for (const key of set.all) registry.setOf.set(key, set);
        current = set;
        lastFailure = undefined;
        return set;
      },
      (err: unknown) => {
        lastFailure = { at: now, cause: err };
        instruments().jwksFetches.add(1, { 'm2m.outcome': 'failure', 'error.type': errorTypeOf(err) });
        options.onFetch?.({ ok: false, url: jwksUri, error: err, durationMs: took() });
        throw keysUnavailable(err);
      },
    ).finally(() => { inflight = undefined; });
    return inflight;
  }

  async function getKey(kid: string | undefined): Promise<VerificationKey> {
    const now = clock();
    let set = current;
    if (set === undefined || now >= set.expiresAt) {
      try {
        set = await refresh(now);
      } catch (err) {
        // Opt-in only: a key withdrawn during the outage would go on being trusted.
        if (set !== undefined && serveStale > 0 && now < set.expiresAt + serveStale) {
          const stale = find(set, kid);
          if (stale) return stale;
        }
        throw err;
      }
      return find(set, kid) ?? Promise.reject(unknownKey(kid));
    }
    const key = find(set, kid);
    if (key) return key;
    // Without a kid nothing new can be looked for: a refetch would not help.
    if (kid === undefined) throw unknownKey(kid);
    // An unknown kid may be a key published since the last fetch (rotation), or a forgery: fetch
    // again, but at most once per cooldown, whatever the number of distinct kids presented.
    if (now - lastUnknownKidFetch < cooldown) {
      if (lastFailure !== undefined) throw keysUnavailable(lastFailure.cause);
      throw unknownKey(kid);
    }
    lastUnknownKidFetch = now;
    set = await refresh(now);
    return find(set, kid) ?? Promise.reject(unknownKey(kid));
  }

  return { getKey, refresh: async () => { await refresh(clock(), true); } };
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  // jwks-rsa's timeout is a socket idle timeout: a server trickling bytes would never trip it.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Creates the key source of a resource server: one remote key set (one jwks-rsa client) per JWKS
 * URI, whether given or discovered, shared by every token and route that uses it.
 *
 * Discovery (when no `jwksUri` is given) reads the issuer's metadata (OpenID Connect Discovery 1.0
 * §4, RFC 8414 §3), whose `issuer` must equal the configured issuer exactly (RFC 8414 §3.3,
 * OpenID Connect Discovery §4.3), and keeps the result for the life of the source. A failed
 * discovery is remembered for `cooldown`: the metadata endpoint sees one request per cooldown
 * while it fails.
 *
 * Key sets are cached for `cacheMaxAge`. A token whose `kid` is not in the cached set causes a
 * refetch at most once per `cooldown`, so new keys after a rotation are picked up without a
 * restart while a flood of random kids costs a bounded number of requests; cached kids keep
 * working meanwhile. A fetch that fails or times out fails closed with
 * {@link TemporarilyUnavailableError} (503), unless `serveStale` allows the last set, and is
 * remembered for `cooldown`: a failing JWKS sees one request per cooldown, not one per token.
 */
export function createKeySource(options: KeySourceOptions): KeySource {
  const sets = new Map<string, ReturnType<typeof createRemoteKeySet>>();
  const discovered = new Map<string, string>();
  const discovering = new Map<string, Promise<string>>();
  const fetchFn: FetchFunction = options.fetch ?? ((input, init) => fetch(input, init));
  const registry: KeyRegistry = { withdrawn: new WeakSet(), setOf: new WeakMap(), fetch: fetchFn };

  function keySetFor(uri: string) {
    let set = sets.get(uri);
    if (!set) {
      set = createRemoteKeySet(uri, options, registry);
      sets.set(uri, set);
    }
    return set;
  }

  async function discover(issuer: string): Promise<string> {
    const { metadata, url } = await discoverMetadata(fetchFn, issuer, options.timeout);
    return checkRemoteUrl(metadata.jwks_uri, `jwks_uri in the metadata at ${url}`, options.allowHttp);
  }

  /** Failed discoveries by issuer: each is asked again only after the cooldown. */
  const failedDiscovery = new Map<string, { at: number; cause: unknown }>();

  function jwksUriFor(issuer: string): Promise<string> {
    const known = discovered.get(issuer);
    if (known !== undefined) return Promise.resolve(known);
    let pending = discovering.get(issuer);
    if (pending) return pending;
    const now = options.clock();
    const failed = failedDiscovery.get(issuer);
    if (failed !== undefined && now - failed.at < options.cooldown) return Promise.reject(failed.cause);
    const started = performance.now();
    pending = discover(issuer).then(
      (uri) => { discovered.set(issuer, uri); failedDiscovery.delete(issuer); return uri; },
      (err: unknown) => {
        failedDiscovery.set(issuer, { at: now, cause: err });
        options.onFetch?.({ ok: false, url: issuer, error: err, durationMs: performance.now() - started });
        throw err;
      },
    ).finally(() => discovering.delete(issuer));
    discovering.set(issuer, pending);
    return pending;
  }

  const fixed = options.jwksUri === undefined ? undefined : keySetFor(options.jwksUri);

  async function getKey(request: KeyRequest): Promise<VerificationKey> {
    if (fixed) return fixed.getKey(request.kid);
    let uri: string;
    try {
      uri = await jwksUriFor(request.issuer);
    } catch (err) {
      throw unavailable('the issuer metadata is unavailable', err);
    }
    return keySetFor(uri).getKey(request.kid);
  }

  /**
   * A key is current while it was in its set at the last fetch and that set is younger than its
   * max-age: a verified token cached under it is then checked again, which refetches the set and
   * refuses the token if its key has gone.
   */
  function isCurrent(key: VerificationKey): boolean {
    return !registry.withdrawn.has(key) && options.clock() < (registry.setOf.get(key)?.expiresAt ?? Number.POSITIVE_INFINITY);
  }

  async function refresh(): Promise<void> {
    failedDiscovery.clear();
    await Promise.all([...sets.values()].map((set) => set.refresh()));
  }

  return { getKey, isCurrent, refresh };
}
