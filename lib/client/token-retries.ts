/**
 * The retry loop of a token request ({@link fetchWithRetries}): what may pass by itself (5xx, 429,
 * 408, network errors, timeouts, discovery failures) is tried again after an exponential backoff
 * with full jitter and at least the server's `Retry-After`; the rest fails at once.
 */
import { TokenRequestError } from '../errors.js';
import type { ClientContext } from './client-context.js';
import type { CachedToken } from './cache.js';
import type { ResolvedOptions } from './options.js';
import { requestToken, type TokenRequestConfig } from './token-request.js';
import { tracedFetch } from './token-telemetry.js';

// Referenced on purpose: a job that awaits a token must stay alive through the backoff and end with
// the error, not exit quietly with an unsettled await (exit code 13). Retries are bounded.
/** Resolves after `ms` milliseconds, on a referenced timer. */
export const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms); });

/** A token from the endpoint, with the requests it took (retries included) and the time since the first. */
export interface FetchedToken {
  token: CachedToken;
  attempts: number;
  durationMs: number;
}

/** The configuration of one request of the client with `opts` to `url`. */
export function requestConfig(opts: ResolvedOptions, url: string): TokenRequestConfig {
  return {
    tokenUrl: url, clientId: opts.clientId, authMethod: opts.authMethod, clientSecret: opts.clientSecret, privateKey: opts.privateKey,
    assertionAlgorithm: opts.assertionAlgorithm, keyId: opts.keyId, assertionAudience: opts.assertionAudience,
    scope: opts.scope, audience: opts.audience, resource: opts.resource, params: opts.params,
    timeout: opts.timeout, defaultLifetime: opts.defaultLifetime, fetch: opts.fetch, clock: opts.clock,
  };
}

/** The wait before retry `attempt + 1` after `error`, or `undefined` when `error` gets no retry. */
function retryDelay(opts: ResolvedOptions, error: TokenRequestError, attempt: number): number | undefined {
  if (!error.retryable || attempt >= opts.retries) return undefined;
  let delay = Math.random() * Math.min(opts.maxDelay, opts.minDelay * 2 ** attempt);
  if (error.retryAfter !== undefined) {
    // A server asking for more patience than allowed gets no retry now: the caller hears at once.
    if (error.retryAfter * 1000 > opts.maxDelay) return undefined;
    delay = Math.max(delay, error.retryAfter * 1000);
  }
  return delay;
}

/**
 * One token from the endpoint, retrying what may pass by itself; `token.retry_scheduled` before
 * each wait.
 *
 * @throws TokenRequestError the last failure, when it is not retryable or the retries are spent.
 */
export function fetchWithRetries(ctx: ClientContext): Promise<FetchedToken> {
  const { opts, clientId } = ctx;
  return tracedFetch(clientId, async (span) => {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const url = await ctx.tokenUrl.resolve();
        span.setAttribute('url.full', url);
        const token = await requestToken(requestConfig(opts, url));
        span.setAttribute('m2m.attempts', attempt + 1);
        return { token, attempts: attempt + 1, durationMs: Date.now() - started };
      } catch (err) {
        const error = err instanceof TokenRequestError ? err : new TokenRequestError('the token request failed', {
          reason: 'network_error', tokenUrl: ctx.tokenUrl.known() ?? opts.issuer ?? '', clientId, retryable: false, cause: err,
        });
        const delay = retryDelay(opts, error, attempt);
        if (delay === undefined) {
          span.setAttribute('m2m.attempts', attempt + 1);
          throw error;
        }
        ctx.emit('token.retry_scheduled', { clientId, tokenUrl: ctx.tokenUrl.known(), error, attempt: attempt + 1, delayMs: Math.round(delay) });
        await sleep(delay);
      }
    }
  });
}
