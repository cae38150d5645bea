/**
 * What an issuer records of each token request: a `m2m.issuer.token_request` server span with the
 * client authentication and the signing nested under it, the request counter by outcome and the
 * request's duration (one {@link TokenRequestObserver} per request); and the counters read off the
 * issuer's events (failed client authentications, rate-limited requests), so that what a host
 * counts from `events` and what OpenTelemetry counts agree. No attribute holds a secret, an
 * assertion or a token.
 */
import { context, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import type { SigningAlgorithm } from '../core/keys.js';
import { errorTypeOf, inSpan, instruments, tracer } from '../core/telemetry.js';
import { OAuthError } from '../errors.js';
import type { ClientAuthMethod, ClientAuthOutcome } from './client-auth-outcome.js';
import type { AuthorizationServerEventMap } from './issuer-events.js';

/** One token request, from its arrival to its answer: ends in exactly one of `issued` and `refused`. */
export interface TokenRequestObserver {
  /** Runs the request's steps with its span active, so that the steps' spans nest under it. */
  run<T>(steps: () => Promise<T>): Promise<T>;
  /** The request's `grant_type` values, recorded when there is exactly one that looks like a grant type. */
  grantType(values: readonly string[] | undefined): void;
  /** Runs the client's authentication (passport) in a child span; records the client id once authenticated. */
  authenticate(method: ClientAuthMethod | undefined, run: () => Promise<ClientAuthOutcome>): Promise<ClientAuthOutcome>;
  /** Runs the signature of the access token in a child span. */
  sign(kid: string, alg: SigningAlgorithm, run: () => Promise<string>): Promise<string>;
  /** The token was sent. */
  issued(): void;
  /** `err` was answered: an {@link OAuthError} with its status, anything else as 500 `server_error`. */
  refused(err: unknown): void;
}

// Built once: metric attributes of the common outcomes cost no allocation per request.
const ISSUED: Attributes = Object.freeze({ 'm2m.outcome': 'issued' });
const REFUSED: Attributes = Object.freeze({ 'm2m.outcome': 'refused' });
const FAILED: Attributes = Object.freeze({ 'm2m.outcome': 'failed' });

/** A grant type worth an attribute: a short name or URN (RFC 6749 §4.5), not arbitrary input. */
const GRANT_TYPE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Starts observing one token request: its span starts now, unlinked to any step yet. */
export function startTokenRequest(): TokenRequestObserver {
  const started = performance.now();
  const span = tracer().startSpan('m2m.issuer.token_request', { kind: SpanKind.SERVER });
  // Nothing records (no SDK, or the request is sampled out): no child spans, no attribute objects.
  const recording = span.isRecording();
  const seconds = (): number => (performance.now() - started) / 1000;
  return {
    run: (steps) => (recording ? context.with(trace.setSpan(context.active(), span), steps) : steps()),
    grantType(values) {
      const value = values?.length === 1 ? values[0] : undefined;
      if (recording && value !== undefined && GRANT_TYPE.test(value)) span.setAttribute('m2m.grant_type', value);
    },
    authenticate(method, run) {
      if (!recording) return run();
      const attributes = method === undefined ? {} : { 'm2m.auth_method': method };
      return inSpan('m2m.issuer.client_authentication', attributes, errorTypeOf, async (child) => {
        const outcome = await run();
        if (outcome.ok) {
          child.setAttribute('m2m.outcome', 'authenticated');
          span.setAttribute('m2m.client_id', outcome.client.clientId);
        } else {
          child.setAttributes({ 'm2m.outcome': 'refused', 'm2m.reason': outcome.reason });
        }
        return outcome;
      });
    },
    sign(kid, alg, run) {
      return recording ? inSpan('m2m.issuer.sign', { 'm2m.kid': kid, 'm2m.alg': alg }, errorTypeOf, run) : run();
    },
    issued() {
      const m = instruments();
      m.issuerRequests.add(1, ISSUED);
      m.issuerRequestDuration.record(seconds(), ISSUED);
      if (recording) span.setAttributes({ 'm2m.outcome': 'issued', 'http.response.status_code': 200 });
      span.end();
    },
    refused(err) {
      const { status, code } = err instanceof OAuthError ? err : { status: 500, code: 'server_error' };
      const failed = status >= 500;
      const outcome = failed ? FAILED : REFUSED;
      const m = instruments();
      m.issuerRequests.add(1, { ...outcome, 'error.type': code });
      m.issuerRequestDuration.record(seconds(), outcome);
      if (recording) span.setAttributes({ ...outcome, 'error.type': code, 'http.response.status_code': status });
      // OpenTelemetry's conventions for server spans: a 4xx is the client's mistake, not an error
      // of this server; only a 5xx (a store outage, a hook that threw) marks the span failed.
      if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
  };
}

/** Records the metrics of one issuer event: failed client authentications and rate-limited requests. */
export function recordIssuerEvent<K extends keyof AuthorizationServerEventMap>(name: K, payload: AuthorizationServerEventMap[K]): void {
  if (name === 'client.authentication_failed') {
    const { reason, method } = payload as AuthorizationServerEventMap['client.authentication_failed'];
    instruments().clientAuthFailures.add(1, method === undefined ? { 'm2m.reason': reason } : { 'm2m.reason': reason, 'm2m.auth_method': method });
  } else if (name === 'rate_limited') {
    instruments().rateLimited.add(1);
  }
}
