import type { Request, Response } from 'express';
import type { Client } from '../core/client.js';
import { isClientId } from '../core/client.js';
import { TemporarilyUnavailableError } from '../errors.js';
import { clientAuthenticationError, createClientAuthenticator, detectClientCredentials } from './client-auth.js';
import type { ClientAuthMethod } from './client-auth-outcome.js';
import type { Form } from './form.js';
import type { IssuerEmitter } from './issuer-events.js';
import type { TokenRequestObserver } from './issuer-observer.js';
import type { IssuerSettings } from './issuer-options.js';
import { createAssertionCheck } from './private-key-jwt.js';
import { createFailureLimiter } from './rate-limit.js';
import { unavailable } from '../core/unavailable.js';

/** The client authentication parameters of a request body (RFC 6749 §2.3.1, RFC 7521 §4.2): each may appear once. */
export const CLIENT_AUTH_PARAMETERS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const;

/**
 * Failures that are no guess, so not counted by the limiter: the right secret of a disabled
 * client, a secret past its expiry, or credentials of a client registered with another method.
 * Counting those let a misconfigured caller lock every client on its address out.
 */
const NOT_GUESSES: ReadonlySet<string> = new Set(['client_disabled', 'expired_secret', 'method_not_allowed']);

/** A client that authenticated, and how. */
export interface AuthenticatedClient {
  client: Client;
  method: ClientAuthMethod;
}

/**
 * Authenticates the client of one request whose form has been read, or throws the error to
 * answer: 401 `invalid_client`, 429 or 503 `temporarily_unavailable`, 400 `invalid_request`.
 * `observer` (the token endpoint's) runs passport's part in its tracing span.
 */
export type AuthenticateRequest = (
  req: Request, res: Response, form: Form, observer?: Pick<TokenRequestObserver, 'authenticate'>,
) => Promise<AuthenticatedClient>;

/**
 * Creates the client authentication every endpoint of one issuer shares (`/token`, `/revoke`,
 * `/introspect`): the one method a request uses (RFC 6749 §2.3), the brute-force limiter (one
 * budget per address and client id across the endpoints, so that spreading guesses over them
 * buys nothing), passport's strategies, and one answer for every failure.
 */
export function createRequestAuthenticator(settings: IssuerSettings, emitter: IssuerEmitter): AuthenticateRequest {
  const { store, issuer } = settings;
  const limiter = settings.rateLimit === false ? undefined : createFailureLimiter(settings.rateLimit);
  const realm = new URL(issuer).host;
  const authenticateClient = createClientAuthenticator(store.clients, createAssertionCheck(settings));
  const { emit } = emitter;

  function tooMany(clientId: string | undefined, address: string, wait: number): TemporarilyUnavailableError {
    emit('rate_limited', { clientId, address, retryAfter: wait });
    return new TemporarilyUnavailableError('too many failed client authentications; retry later',
      { status: 429, headers: { 'Retry-After': String(wait) } });
  }

  return async function authenticate(req, res, form, observer) {
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const presented = detectClientCredentials(req.headers.authorization, {
      clientId: form.get('client_id')?.[0], clientSecret: form.get('client_secret')?.[0],
      clientAssertion: form.get('client_assertion')?.[0], clientAssertionType: form.get('client_assertion_type')?.[0],
    });
    // Only well-formed ids become counter keys or reach events: a 10 kB id must not become a
    // 10 kB Redis key, and control characters must not flow into the host's logs.
    const claimedId = isClientId(presented.clientId) ? presented.clientId : undefined;
    const blocked = limiter ? await limiter.addressBlockedFor(address) : 0;
    if (blocked > 0) throw tooMany(claimedId, address, blocked);
    const run = () => authenticateClient(req, res, presented);
    const outcome = await (observer ? observer.authenticate(presented.method, run) : run()).catch((err: unknown) => {
      // The store failed (a database outage): the request may pass in a moment, so 503, not 500.
      throw unavailable('client authentication is temporarily unavailable', err);
    });
    if (outcome.ok) return { client: outcome.client, method: outcome.method };
    const { reason, method, detail } = outcome;
    emit('client.authentication_failed', { clientId: claimedId, reason, method, address, ...(detail === undefined ? {} : { detail }) });
    // Counted after the failure, atomically: a spent budget turns this answer into 429.
    const wait = limiter && !NOT_GUESSES.has(reason) ? await limiter.recordFailure(claimedId, address) : 0;
    if (wait > 0) throw tooMany(claimedId, address, wait);
    throw clientAuthenticationError(method, realm);
  };
}
