import type { Request, Response } from 'express';
import type { IssuedTokenVerifier } from '../core/issued-token.js';
import type { RevocationStore } from '../core/revocations.js';
import { InvalidRequestError, OAuthError } from '../errors.js';
import { CLIENT_AUTH_PARAMETERS, type AuthenticateRequest } from './endpoint-auth.js';
import { createFormReader, refuseRepeated, type Form } from './form.js';
import type { IssuerEmitter } from './issuer-events.js';
import { NO_STORE_HEADERS, sendOAuthError } from './render.js';
import { unavailable } from '../core/unavailable.js';

/** Parameters of a revocation or introspection request that may appear once only (RFC 7009 §2.1, RFC 7662 §2.1). */
export const TOKEN_REQUEST_PARAMETERS = ['token', 'token_type_hint', ...CLIENT_AUTH_PARAMETERS] as const;

/**
 * The `token` parameter of a revocation or introspection request, each parameter present at
 * most once. `token_type_hint` is read by nobody: RFC 7009 §2.1 and RFC 7662 §2.1 let a server
 * ignore it, and this issuer has one type of token only, so a `refresh_token` or unknown hint
 * leads to the same search as `access_token` (RFC 7009 §2.2.1's `unsupported_token_type` is never
 * needed for access tokens).
 *
 * @throws {@link InvalidRequestError} for a repeated parameter or a missing or empty `token`.
 */
export function readTokenParameter(form: Form): string {
  refuseRepeated(form, TOKEN_REQUEST_PARAMETERS);
  const token = form.get('token')?.[0];
  if (token === undefined || token === '') throw new InvalidRequestError('the token parameter is missing');
  return token;
}

/** What {@link createRevocationEndpoint} works with. */
export interface RevocationEndpointParts {
  revocations: RevocationStore;
  verifyIssued: IssuedTokenVerifier;
  authenticate: AuthenticateRequest;
  emitter: IssuerEmitter;
}


/**
 * Creates the handler of `POST /revoke` (RFC 7009): read the form as `/token` reads it (same
 * content type, size and repetition rules), authenticate the client as `/token` does (same
 * methods, same limiter, the same 401 `invalid_client`), then revoke the token when it is an
 * unexpired access token of this issuer issued to that client. Every other token (malformed,
 * expired, forged, another issuer's or another client's) is answered the same 200 with an empty
 * body and nothing is revoked (RFC 7009 §2.2: an invalid token is no error, and the answer must
 * not tell a client whether someone else's token exists).
 */
export function createRevocationEndpoint(parts: RevocationEndpointParts): (req: Request, res: Response) => void {
  const { revocations, verifyIssued, authenticate, emitter } = parts;
  const readForm = createFormReader({ maxBytes: 4096, maxParameters: 32, label: 'revocation request' });

  async function revoke(req: Request, res: Response): Promise<void> {
    const form = await readForm(req, res);
    const token = readTokenParameter(form);
    const { client } = await authenticate(req, res, form);
    const issued = await verifyIssued(token);
    if (issued !== undefined && issued.claims.client_id === client.clientId) {
      const { jti, exp } = issued.claims;
      const expiresAt = new Date(exp * 1000);
      const added = await revocations.revokeToken({ jti, clientId: client.clientId, expiresAt }).catch((err: unknown) => { throw unavailable('token revocation is temporarily unavailable', err); });
      if (added) emitter.emit('token.revoked', { clientId: client.clientId, jti, expiresAt });
    }
    res.writeHead(200, { ...NO_STORE_HEADERS, 'Content-Length': '0' }).end();
  }

  return function revocationHandler(req, res) {
    revoke(req, res).catch((err: unknown) => {
      if (!(err instanceof OAuthError) || err.status >= 500) emitter.emit('internal_error', { error: err, endpoint: 'revoke' });
      sendOAuthError(res, err);
    });
  };
}
