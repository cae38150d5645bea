/**
 * The caller's metrics, read off its events (so that what a host counts from `events` and what
 * OpenTelemetry counts agree), and the span of a token request with its retries.
 */
import type { Span } from '@opentelemetry/api';
import { TokenRequestError } from '../errors.js';
import { errorTypeOf, inSpan, instruments } from '../core/telemetry.js';
import type { TokenClientEventMap } from './token-events.js';

/**
 * `error.type` of a caller failure: the server's RFC 6749 §5.2 code (`invalid_client`) when it sent
 * a plausible one, else the {@link TokenRequestError} reason (`timeout`, `http_error`, ...).
 */
function callerErrorType(err: unknown): string {
  if (!(err instanceof TokenRequestError)) return errorTypeOf(err);
  // The server's code is remote input: only a short lower-case word is a label, not a cardinality bomb.
  return err.reason === 'oauth_error' && err.error !== undefined && /^[a-z_]{1,40}$/.test(err.error) ? err.error : err.reason;
}

/** Records the metrics of one caller event. */
export function recordTokenEvent<K extends keyof TokenClientEventMap>(name: K, payload: TokenClientEventMap[K]): void {
  const m = instruments();
  if (name === 'token.fetched') {
    const fetched = payload as TokenClientEventMap['token.fetched'];
    m.callerFetches.add(1, { 'm2m.source': fetched.source, 'm2m.outcome': 'success' });
    if (fetched.refresh) m.callerRefreshes.add(1, { 'm2m.outcome': 'success' });
  } else if (name === 'token.refresh_failed') {
    const failed = payload as TokenClientEventMap['token.refresh_failed'];
    m.callerRefreshes.add(1, { 'm2m.outcome': 'failure', 'error.type': callerErrorType(failed.error) });
  } else if (name === 'token.retry_scheduled') {
    const retry = payload as TokenClientEventMap['token.retry_scheduled'];
    m.callerRetries.add(1, { 'error.type': callerErrorType(retry.error) });
  }
}

/**
 * Runs a token request (retries included) in a `m2m.caller.token_fetch` span, recording its
 * duration, and a failed fetch in `m2m.caller.token_fetches`.
 */
export function tracedFetch<T>(clientId: string, run: (span: Span) => Promise<T>): Promise<T> {
  const started = performance.now();
  return inSpan('m2m.caller.token_fetch', { 'm2m.client_id': clientId }, callerErrorType, run).then(
    (result) => {
      instruments().callerFetchDuration.record((performance.now() - started) / 1000, { 'm2m.outcome': 'success' });
      return result;
    },
    (err: unknown) => {
      const m = instruments();
      m.callerFetchDuration.record((performance.now() - started) / 1000, { 'm2m.outcome': 'failure' });
      m.callerFetches.add(1, { 'm2m.source': 'endpoint', 'm2m.outcome': 'failure', 'error.type': callerErrorType(err) });
      throw err;
    },
  );
}
