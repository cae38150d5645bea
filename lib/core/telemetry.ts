/**
 * Traces and metrics through `@opentelemetry/api` only: a no-op until the host installs an
 * OpenTelemetry SDK, and no SDK or exporter in this package. One tracer and one meter, named
 * `express-m2m`; the instruments are created once per meter provider, so an SDK registered after
 * this module loaded is picked up. No attribute ever holds a secret, an assertion or a token.
 */
import {
  metrics, SpanKind, SpanStatusCode, trace, type Attributes, type Counter, type Histogram, type MeterProvider, type Span, type Tracer,
} from '@opentelemetry/api';

/** The instrumentation scope of every span and metric. */
export const INSTRUMENTATION_SCOPE = 'express-m2m';

/** The metrics this package records. Durations are in seconds, as OpenTelemetry's conventions ask. */
export interface Instruments {
  /** `m2m.issuer.token_requests`: answered, by `m2m.outcome` (`issued`, `refused` for a 4xx, `failed` for a 5xx) and `error.type` (the OAuth error code). */
  issuerRequests: Counter;
  /** `m2m.issuer.client_authentication.failures`: by `m2m.reason` (the `client.authentication_failed` event's) and `m2m.auth_method`. */
  clientAuthFailures: Counter;
  /** `m2m.issuer.rate_limited`: token requests refused with 429. */
  rateLimited: Counter;
  /** `m2m.issuer.token_request.duration`: from a token request's arrival to its answer, by `m2m.outcome`. */
  issuerRequestDuration: Histogram;
  /** `m2m.guard.decisions`: by `m2m.outcome` (`accepted`, `no_token`, `invalid_request`, `invalid_token`, `insufficient_scope`, `unavailable`, and `anonymous` for an `optional` route without credentials). */
  guardDecisions: Counter;
  /** `m2m.guard.token_cache.hits`: requests answered from the verified-token cache. */
  tokenCacheHits: Counter;
  /** `m2m.guard.verification.duration`: a token's check when not answered from the cache. */
  verificationDuration: Histogram;
  /** `m2m.jwks.fetches`: JWKS fetches by `m2m.outcome` (`success`, `failure`). */
  jwksFetches: Counter;
  /** `m2m.caller.token_fetches`: tokens obtained by the caller, by `m2m.source` (`endpoint`, `cache`) and `m2m.outcome`. */
  callerFetches: Counter;
  /** `m2m.caller.refreshes`: tokens replaced ahead of expiry, by `m2m.outcome`. */
  callerRefreshes: Counter;
  /** `m2m.caller.retries`: token requests scheduled again, by `error.type`. */
  callerRetries: Counter;
  /** `m2m.caller.token_fetch.duration`: a token request, retries included. */
  callerFetchDuration: Histogram;
}

/** Histogram buckets for latencies from a cached check (well under a millisecond) to a timeout. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function createInstruments(provider: MeterProvider): Instruments {
  const meter = provider.getMeter(INSTRUMENTATION_SCOPE);
  const counter = (name: string, description: string) => meter.createCounter(name, { description, unit: '{request}' });
  const histogram = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: LATENCY_BUCKETS } });
  return {
    issuerRequests: counter('m2m.issuer.token_requests', 'Token requests answered by the issuer'),
    clientAuthFailures: counter('m2m.issuer.client_authentication.failures', 'Failed client authentications at the token endpoint'),
    rateLimited: counter('m2m.issuer.rate_limited', 'Token requests refused with 429'),
    issuerRequestDuration: histogram('m2m.issuer.token_request.duration', 'Time to answer a token request'),
    guardDecisions: counter('m2m.guard.decisions', 'Requests decided by the resource-server guard'),
    tokenCacheHits: counter('m2m.guard.token_cache.hits', 'Guarded requests answered from the verified-token cache'),
    verificationDuration: histogram('m2m.guard.verification.duration', 'Time to check a token not in the cache'),
    jwksFetches: counter('m2m.jwks.fetches', 'JWKS fetches'),
    callerFetches: counter('m2m.caller.token_fetches', 'Tokens obtained by the caller'),
    callerRefreshes: counter('m2m.caller.refreshes', 'Tokens the caller replaced ahead of expiry'),
    callerRetries: counter('m2m.caller.retries', 'Token requests the caller scheduled again'),
    callerFetchDuration: histogram('m2m.caller.token_fetch.duration', 'Time of a token request, retries included'),
  };
}

let current: { provider: MeterProvider; instruments: Instruments } | undefined;

/** The instruments of the global meter provider (no-op ones until an SDK is registered). */
export function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (current?.provider !== provider) current = { provider, instruments: createInstruments(provider) };
  return current.instruments;
}

/** The package's tracer from the global tracer provider (a no-op until an SDK is registered). */
export const tracer = (): Tracer => trace.getTracer(INSTRUMENTATION_SCOPE);

/** Ends `span` as failed, with `error.type` (a stable code, never a message that could hold input). */
export function endWithError(span: Span, errorType: string): void {
  span.setAttribute('error.type', errorType);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/**
 * Runs `run` in an internal span named `name`, active for what `run` starts (child spans nest);
 * the span ends when `run` settles, marked failed with `error.type` from `errorType` on a rejection.
 */
export function inSpan<T>(name: string, attributes: Attributes, errorType: (err: unknown) => string, run: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
    try {
      const result = await run(span);
      span.end();
      return result;
    } catch (err) {
      endWithError(span, errorType(err));
      throw err;
    }
  });
}

/** A stable `error.type` for `err`: its `code` when it has a string one, else its class name. */
export function errorTypeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(code)) return code;
  return err instanceof Error ? err.constructor.name : 'unknown';
}
