import type { Request, Response } from 'express';
import { isClientId } from '../core/client.js';
import { resolveAudience, resolveScopes } from '../core/grant.js';
import type { SigningAlgorithm } from '../core/keys.js';
import { buildAccessTokenClaims, type TokenSigner } from '../core/token.js';
import { RETRY_AFTER_SECONDS } from '../core/urls.js';
import {
  InvalidRequestError, OAuthError, TemporarilyUnavailableError, UnauthorizedClientError, UnsupportedGrantTypeError,
} from '../errors.js';
import { clientAuthenticationError, createClientAuthenticator, detectClientCredentials } from './client-auth.js';
import { createFormReader, type Form } from './form.js';
import type { IssuerEmitter } from './issuer-events.js';
import { startTokenRequest, type TokenRequestObserver } from './issuer-observer.js';
import type { IssuerSettings } from './issuer-options.js';
import { createAssertionCheck } from './private-key-jwt.js';
import { createFailureLimiter } from './rate-limit.js';
import { sendJson, sendOAuthError } from './render.js';
import type { LoadedKeys, SigningKeys } from './signing-keys.js';

interface TokenRequest {
  grantType: string;
  scope: string | undefined;
  resources: string[];
  audience: string | undefined;
}

/** Parameters that may appear once only (RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once"). */
const SINGLE_PARAMETERS = ['grant_type', 'scope', 'audience', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const;

/**
 * Failures that are no guess, so not counted by the limiter: the right secret of a disabled
 * client, a secret past its expiry, or credentials of a client registered with another method.
 * Counting those let a misconfigured caller lock every client on its address out.
 */
const NOT_GUESSES: ReadonlySet<string> = new Set(['client_disabled', 'expired_secret', 'method_not_allowed']);

function readTokenRequest(form: Form): TokenRequest {
  for (const name of SINGLE_PARAMETERS) {
    const values = form.get(name);
    if (values !== undefined && values.length > 1) throw new InvalidRequestError(`the ${name} parameter is repeated`);
  }
  const grantType = form.get('grant_type')?.[0];
  if (grantType === undefined || grantType === '') throw new InvalidRequestError('the grant_type parameter is missing');
  if (grantType !== 'client_credentials') throw new UnsupportedGrantTypeError('only the client_credentials grant is supported');
  return { grantType, scope: form.get('scope')?.[0], resources: form.get('resource') ?? [], audience: form.get('audience')?.[0] };
}

function signingKeyOf(keys: LoadedKeys): { signer: TokenSigner; kid: string; alg: SigningAlgorithm } {
  if (keys.signer && keys.kid !== undefined && keys.alg !== undefined) return { signer: keys.signer, kid: keys.kid, alg: keys.alg };
  const headers = { 'Retry-After': String(RETRY_AFTER_SECONDS) };
  if (keys.signerError !== undefined) throw new TemporarilyUnavailableError('signing keys are unavailable', { cause: keys.signerError, headers });
  throw new TemporarilyUnavailableError('no signing key is active', { headers });
}

/**
 * Creates the handler of `POST /token` (RFC 6749 §4.4), as an ordered list of small steps: read
 * the form (body-parser), check the grant, find the one client authentication method (RFC 6749
 * §2.3), consult the brute-force limiter, authenticate the client through passport, resolve
 * scopes and audience, sign with jsonwebtoken, answer with `Cache-Control: no-store`. Each request
 * is traced and counted through OpenTelemetry ({@link startTokenRequest}); the authentication and
 * the signature are its child spans.
 */
export function createTokenEndpoint(settings: IssuerSettings, keys: SigningKeys, emitter: IssuerEmitter): (req: Request, res: Response) => void {
  const { issuer, store, clock, claims: claimsHook } = settings;
  const limiter = settings.rateLimit === false ? undefined : createFailureLimiter(settings.rateLimit);
  const realm = new URL(issuer).host;
  const readForm = createFormReader({ maxBytes: 4096, maxParameters: 32 });
  const authenticateClient = createClientAuthenticator(store.clients, createAssertionCheck(settings));
  const { emit } = emitter;

  function tooMany(clientId: string | undefined, address: string, wait: number): TemporarilyUnavailableError {
    emit('rate_limited', { clientId, address, retryAfter: wait });
    return new TemporarilyUnavailableError('too many failed client authentications; retry later',
      { status: 429, headers: { 'Retry-After': String(wait) } });
  }

  async function authenticate(req: Request, res: Response, form: Form, observer: TokenRequestObserver) {
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
    const outcome = await observer.authenticate(presented.method, () => authenticateClient(req, res, presented)).catch((err: unknown) => {
      // The store failed (a database outage): the request may pass in a moment, so 503, not 500.
      throw new TemporarilyUnavailableError('client authentication is temporarily unavailable', {
        cause: err, headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } });
    });
    if (outcome.ok) return outcome;
    const { reason, method, detail } = outcome;
    emit('client.authentication_failed', { clientId: claimedId, reason, method, address, ...(detail === undefined ? {} : { detail }) });
    // Counted after the failure, atomically: a spent budget turns this answer into 429.
    const wait = limiter && !NOT_GUESSES.has(reason) ? await limiter.recordFailure(claimedId, address) : 0;
    if (wait > 0) throw tooMany(claimedId, address, wait);
    throw clientAuthenticationError(method, realm);
  }

  async function token(req: Request, res: Response, observer: TokenRequestObserver): Promise<void> {
    const form = await readForm(req, res);
    observer.grantType(form.get('grant_type'));
    const request = readTokenRequest(form);
    const { client, method } = await authenticate(req, res, form, observer);
    if (!client.grantTypes.includes('client_credentials')) {
      throw new UnauthorizedClientError('the client is not allowed the client_credentials grant');
    }
    const scopes = resolveScopes(client, request.scope, settings.scopePolicy);
    const audience = resolveAudience(client, request.resources, request.audience);
    const lifetime = Math.min(client.tokenLifetime ?? settings.tokenLifetime, settings.maxTokenLifetime);
    // Copies: a hook that changes what it is handed must not change this token or the registry.
    const hookClaims = claimsHook ? await claimsHook({ client: structuredClone(client), scopes: [...scopes], audience: [...audience] }) : undefined;
    const { signer, kid, alg } = signingKeyOf(keys.fresh() ?? await keys.current());
    const claims = buildAccessTokenClaims({
      issuer, clientId: client.clientId, audience, scopes, lifetime, now: clock(),
      extraClaims: hookClaims === undefined ? client.claims : { ...client.claims, ...hookClaims },
    });
    const accessToken = await observer.sign(kid, alg, () => signer(claims));
    sendJson(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: lifetime, scope: claims.scope });
    if (emitter.has('token.issued')) {
      emit('token.issued', { clientId: client.clientId, scopes, audience, expiresIn: lifetime, jti: claims.jti as string, kid, method });
    }
  }

  return function tokenHandler(req, res) {
    const observer = startTokenRequest();
    observer.run(() => token(req, res, observer)).then(() => observer.issued(), (err: unknown) => {
      if (!(err instanceof OAuthError) || err.status >= 500) emit('internal_error', { error: err, endpoint: 'token' });
      sendOAuthError(res, err);
      observer.refused(err);
    });
  };
}
