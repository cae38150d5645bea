import { TemporarilyUnavailableError } from '../errors.js';
import { RETRY_AFTER_SECONDS } from './urls.js';

/**
 * The 503 `temporarily_unavailable` of something this package depends on (a store, a key set, a
 * revocation list), with `Retry-After`: the request may pass in a moment, so it is never a 500
 * nor the caller's fault. `cause` keeps the underlying error for logs; it is never answered.
 */
export function unavailable(description: string, cause?: unknown): TemporarilyUnavailableError {
  return new TemporarilyUnavailableError(description, { cause, headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } });
}
