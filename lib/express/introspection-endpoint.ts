import type { Request, Response } from 'express';
import type { IssuedToken, IssuedTokenVerifier } from '../core/issued-token.js';
import type { IssuerStore } from '../core/store.js';
import { OAuthError, UnauthorizedClientError } from '../errors.js';
import type { AuthenticateRequest } from './endpoint-auth.js';
import { createFormReader } from './form.js';
import type { IssuerEmitter } from './issuer-events.js';
import { sendJson, sendOAuthError } from './render.js';
import { readTokenParameter } from './revocation-endpoint.js';
import { unavailable } from '../core/unavailable.js';

/**
 * The permission to introspect: a client whose allowed scopes (`scopes` at registration) hold it
 * may call `POST /introspect` (RFC 7662). It is a scope so that it is registered, changed, listed
 * and audited as any other (`express-m2m clients update ID --scope "... m2m:introspect"`); the
 * client does not need to request it in a token.
 */
export const INTROSPECTION_SCOPE = 'm2m:introspect';

/** The answer for every token that is not active (RFC 7662 §2.2: nothing else is said of it). */
const INACTIVE = Object.freeze({ active: false });

/** What {@link createIntrospectionEndpoint} works with. */
export interface IntrospectionEndpointParts {
  store: IssuerStore;
  verifyIssued: IssuedTokenVerifier;
  authenticate: AuthenticateRequest;
  emitter: IssuerEmitter;
}

/** The RFC 7662 §2.2 answer for an active token: its own claims, never the issuer's view of the client. */
function activeAnswer({ claims }: IssuedToken): Record<string, unknown> {
  return {
    active: true,
    scope: claims.scope ?? '',
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    ...(claims.nbf === undefined ? {} : { nbf: claims.nbf }),
    jti: claims.jti,
    token_type: 'Bearer',
  };
}

/**
 * Whether one of the issuer's own tokens is still active: its client exists and is enabled (from
 * the in-memory registry when the store has one: no query per call), and the revocation record
 * does not name it. A store failure rejects with 503 `temporarily_unavailable` described by
 * `description`, never a guess either way.
 */
export function createActivityCheck(store: IssuerStore, description: string): (issued: IssuedToken) => Promise<boolean> {
  const { clients, revocations } = store;
  return async function isActive(issued) {
    const { client_id: clientId, jti, iat } = issued.claims;
    try {
      const owner = clients.lookup ? await clients.lookup(clientId) : await clients.get(clientId);
      if (owner === undefined || !owner.enabled) return false;
      return revocations === undefined || !(await revocations.isRevoked({ jti, clientId, issuedAt: new Date(iat * 1000) }));
    } catch (err) {
      throw unavailable(description, err);
    }
  };
}

/**
 * Creates the handler of `POST /introspect` (RFC 7662): read the form and authenticate the client
 * exactly as `/revoke` does, require the {@link INTROSPECTION_SCOPE} permission, then answer
 * `{ active: false }` for any token that is not an unexpired access token of this issuer, that is
 * revoked (by `jti`, or by its client's cutoff), or whose client is disabled or deleted; and the
 * token's claims with `active: true` for the others. Every answer has `Cache-Control: no-store`
 * (RFC 7662 §4: a cached answer could call a revoked token active).
 *
 * A client that authenticates but lacks the permission gets 403 `unauthorized_client`: RFC 7662
 * §2.3 keeps 401 for credentials that are invalid, and these are not (a 401 would also tell the
 * caller to fix a secret that is right, and the failure is no guess for the limiter to count).
 */
export function createIntrospectionEndpoint(parts: IntrospectionEndpointParts): (req: Request, res: Response) => void {
  const { store, verifyIssued, authenticate, emitter } = parts;
  const isActive = createActivityCheck(store, 'token introspection is temporarily unavailable');
  const readForm = createFormReader({ maxBytes: 4096, maxParameters: 32, label: 'introspection request' });

  async function introspect(req: Request, res: Response): Promise<void> {
    const form = await readForm(req, res);
    const token = readTokenParameter(form);
    const { client } = await authenticate(req, res, form);
    if (!client.scopes.includes(INTROSPECTION_SCOPE)) {
      throw new UnauthorizedClientError(`the client may not introspect tokens: it lacks the ${INTROSPECTION_SCOPE} scope`, { status: 403 });
    }
    const issued = await verifyIssued(token);
    sendJson(res, 200, issued !== undefined && await isActive(issued) ? activeAnswer(issued) : INACTIVE);
  }

  return function introspectionHandler(req, res) {
    introspect(req, res).catch((err: unknown) => {
      if (!(err instanceof OAuthError) || err.status >= 500) emitter.emit('internal_error', { error: err, endpoint: 'introspect' });
      sendOAuthError(res, err);
    });
  };
}
