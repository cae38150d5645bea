/**
 * What a resource server records of each check: its event (`token.accepted`, `token.refused`), a
 * `m2m.guard.check` span with the key lookup nested under it, the decision counter, cache hits and
 * the verification latency. One {@link GuardCheck} per request or `verify()` call.
 */
import type { Request } from 'express';
import { context, SpanKind, trace, type Span } from '@opentelemetry/api';
import { endWithError, instruments, tracer } from '../core/telemetry.js';
import type { VerifiedAccessToken } from '../core/verify.js';
import { refusalOf, type GuardEmitter } from './guard-events.js';

/** One check of one request: ends in exactly one of `accepted`, `refused` and `anonymous`. */
export interface GuardCheck {
  accepted(auth: VerifiedAccessToken, cached: boolean): void;
  refused(err: unknown, clientId?: string): void;
  /** An `optional` route let a request without credentials through (no event: there is no token). */
  anonymous(): void;
  /** The token was found in the verified-token cache. */
  cacheHit(): void;
  /** Runs a verification under the check's span, timing it. */
  verify(run: () => Promise<VerifiedAccessToken>): Promise<VerifiedAccessToken>;
}

function startSpan(req: Request | undefined): Span {
  return tracer().startSpan('m2m.guard.check', {
    kind: SpanKind.INTERNAL,
    attributes: req === undefined ? {} : { 'http.request.method': req.method },
  });
}

/** Starts a {@link GuardCheck} for `req` (undefined for `verify()`), reporting through `emitter`. */
export function startGuardCheck(emitter: GuardEmitter, req: Request | undefined): GuardCheck {
  const span = startSpan(req);
  return {
    accepted(auth, cached) {
      emitter.accepted(auth, req, cached);
      instruments().guardDecisions.add(1, { 'm2m.outcome': 'accepted' });
      span.setAttributes({ 'm2m.outcome': 'accepted', 'm2m.token.cached': cached });
      if (auth.clientId !== undefined) span.setAttribute('m2m.client_id', auth.clientId);
      span.end();
    },
    refused(err, clientId) {
      emitter.refused(err, req, clientId);
      const { reason } = refusalOf(err);
      instruments().guardDecisions.add(1, { 'm2m.outcome': reason });
      span.setAttribute('m2m.outcome', reason);
      endWithError(span, reason);
    },
    cacheHit() {
      instruments().tokenCacheHits.add(1);
    },
    anonymous() {
      instruments().guardDecisions.add(1, { 'm2m.outcome': 'anonymous' });
      span.setAttribute('m2m.outcome', 'anonymous');
      span.end();
    },
    verify(run) {
      const started = performance.now();
      const record = () => instruments().verificationDuration.record((performance.now() - started) / 1000);
      const pending = context.with(trace.setSpan(context.active(), span), run);
      pending.then(record, record);
      return pending;
    },
  };
}
