import type { Request, Response } from 'express';
import { resolveAudience, resolveScopes } from '../core/grant.js';
import type { SigningAlgorithm } from '../core/keys.js';
import { buildAccessTokenClaims, type TokenSigner } from '../core/token.js';
import {
  InvalidRequestError, OAuthError, UnauthorizedClientError, UnsupportedGrantTypeError,
} from '../errors.js';
import { CLIENT_AUTH_PARAMETERS, type AuthenticateRequest } from './endpoint-auth.js';
import { createFormReader, refuseRepeated, type Form } from './form.js';
import type { IssuerEmitter } from './issuer-events.js';
import { startTokenRequest, type TokenRequestObserver } from './issuer-observer.js';
import type { IssuerSettings } from './issuer-options.js';
import { sendJson, sendOAuthError } from './render.js';
import type { LoadedKeys, SigningKeys } from './signing-keys.js';
import { unavailable } from '../core/unavailable.js';

interface TokenRequest {
  grantType: string;
  scope: string | undefined;
  resources: string[];
  audience: string | undefined;
}

/** Parameters that may appear once only (RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once"). */
const SINGLE_PARAMETERS = ['grant_type', 'scope', 'audience', ...CLIENT_AUTH_PARAMETERS] as const;

function readTokenRequest(form: Form): TokenRequest {
  refuseRepeated(form, SINGLE_PARAMETERS);
  const grantType = form.get('grant_type')?.[0];
  if (grantType === undefined || grantType === '') throw new InvalidRequestError('the grant_type parameter is missing');
  if (grantType !== 'client_credentials') throw new UnsupportedGrantTypeError('only the client_credentials grant is supported');
  return { grantType, scope: form.get('scope')?.[0], resources: form.get('resource') ?? [], audience: form.get('audience')?.[0] };
}

function signingKeyOf(keys: LoadedKeys): { signer: TokenSigner; kid: string; alg: SigningAlgorithm } {
  if (keys.signer && keys.kid !== undefined && keys.alg !== undefined) return { signer: keys.signer, kid: keys.kid, alg: keys.alg };
  if (keys.signerError !== undefined) throw unavailable('signing keys are unavailable', keys.signerError);
  throw unavailable('no signing key is active');
}

/**
 * Creates the handler of `POST /token` (RFC 6749 §4.4), as an ordered list of small steps: read
 * the form (body-parser), check the grant, authenticate the client (`authenticate`: the one
 * method of RFC 6749 §2.3, the brute-force limiter, passport), resolve scopes and audience, sign
 * with jsonwebtoken, answer with `Cache-Control: no-store`. Each request is traced and counted
 * through OpenTelemetry ({@link startTokenRequest}); the authentication and the signature are its
 * child spans.
 */
export function createTokenEndpoint(
  settings: IssuerSettings, keys: SigningKeys, emitter: IssuerEmitter, authenticate: AuthenticateRequest,
): (req: Request, res: Response) => void {
  const { issuer, clock, claims: claimsHook } = settings;
  const readForm = createFormReader({ maxBytes: 4096, maxParameters: 32, label: 'token request' });
  const { emit } = emitter;

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
