import express, { type Request, type Response, type Router } from 'express';
import { createIssuedTokenVerifier } from '../core/issued-token.js';
import { InvalidRequestError } from '../errors.js';
import { createRequestAuthenticator } from './endpoint-auth.js';
import { createIntrospectionEndpoint } from './introspection-endpoint.js';
import { createIssuerEmitter, type AuthorizationServerEvents } from './issuer-events.js';
import { metadataDocument } from './issuer-metadata.js';
import { resolveIssuerOptions, type AuthorizationServerOptions } from './issuer-options.js';
import { sendOAuthError } from './render.js';
import { createRevocationEndpoint } from './revocation-endpoint.js';
import { createRevocationListEndpoint } from './revocation-list-endpoint.js';
import { createSigningKeys } from './signing-keys.js';
import { createTokenEndpoint } from './token-endpoint.js';

export type { AuthorizationServerOptions, ClaimsContext, ClientAssertionOptions } from './issuer-options.js';
export type {
  AuthenticationFailedEvent, AuthorizationServerEventMap, AuthorizationServerEvents, InternalErrorEvent, PlaintextKeysEvent,
  RateLimitedEvent, TokenIssuedEvent, TokenRevokedEvent,
} from './issuer-events.js';
export { INTROSPECTION_SCOPE } from './introspection-endpoint.js';
export { REVOCATIONS_SCOPE } from './revocation-list-endpoint.js';

/** The router returned by {@link authorizationServer}, with its events and a readiness check. */
export type AuthorizationServer = Router & {
  /**
   * Subscribe to `token.issued`, `token.revoked`, `client.authentication_failed`, `rate_limited`,
   * `internal_error`, `keys.plaintext`.
   */
  events: AuthorizationServerEvents;
  /** Resolves once a signing key exists and is loaded (creating one on first start). */
  ready(): Promise<void>;
  /**
   * The RFC 8414 metadata handler, for the host to mount at the location RFC 8414 §3.1 derives
   * from the issuer (`/.well-known/oauth-authorization-server` inserted before the issuer's path),
   * which a router mounted at that path cannot reach. {@link AuthorizationServer.metadataPath}
   * gives the path.
   *
   * @example
   * ```ts
   * app.get(oauth.metadataPath, oauth.metadata);  // '/.well-known/oauth-authorization-server/oauth'
   * ```
   */
  metadata: (req: Request, res: Response) => void;
  /** The RFC 8414 §3.1 metadata path for this issuer, for example `/.well-known/oauth-authorization-server/oauth`. */
  metadataPath: string;
};

/**
 * Creates the authorization server: an Express router with the token endpoint, the JWKS, the
 * revocation and introspection endpoints and the RFC 8414 metadata, to mount at the issuer's path.
 *
 * - `POST /token`: the client credentials grant (RFC 6749 §4.4), client_secret_basic,
 *   client_secret_post or private_key_jwt (RFC 7523 §2.2), RFC 9068 JWT access tokens.
 * - `GET /jwks.json`: the public signing keys (RFC 7517).
 * - `POST /revoke`: a client revokes one of its tokens (RFC 7009); served when the store keeps
 *   a revocation record (`store.revocations`, which `createKnexStore` has).
 * - `POST /introspect`: a client holding the `m2m:introspect` scope learns whether a token is
 *   active, and its claims (RFC 7662).
 * - `GET /revocations`: the revocation record, for resource servers' `revocations` option, to a
 *   Bearer token granting `m2m:revocations` (with `/revoke`, when the store keeps a record).
 * - `GET /.well-known/oauth-authorization-server`: metadata (RFC 8414).
 *
 * @param options - See {@link AuthorizationServerOptions}; validated once, here.
 * @throws {@link InvalidOptionError} (a TypeError) for a missing, malformed or unknown option.
 * @example
 * ```ts
 * const store = createKnexStore(knex);
 * await store.migrate();
 * app.use('/oauth', authorizationServer({ issuer: 'https://auth.internal/oauth', store }));
 * ```
 */
export function authorizationServer(options: AuthorizationServerOptions): AuthorizationServer {
  const settings = resolveIssuerOptions(options);
  const { issuer, store } = settings;
  const emitter = createIssuerEmitter();
  const keys = createSigningKeys(settings, (kids) => emitter.emit('keys.plaintext', { kids }));
  const authenticate = createRequestAuthenticator(settings, emitter);
  const tokenHandler = createTokenEndpoint(settings, keys, emitter, authenticate);
  const verifyIssued = createIssuedTokenVerifier({ issuer, clock: settings.clock, jwks: async () => (await keys.current()).jwks });
  const introspectionHandler = createIntrospectionEndpoint({ store, verifyIssued, authenticate, emitter });
  const revocations = store.revocations;
  const revocationHandler = revocations && createRevocationEndpoint({ revocations, verifyIssued, authenticate, emitter });
  const listHandler = revocations && createRevocationListEndpoint({ issuer, store, revocations, verifyIssued, emitter });

  function methodNotAllowed(allow: string) {
    return function rejectMethod(_req: Request, res: Response): void {
      sendOAuthError(res, new InvalidRequestError(`this endpoint accepts ${allow} only`, { status: 405, headers: { Allow: allow } }));
    };
  }

  function jwks(_req: Request, res: Response): void {
    keys.current().then(
      (loaded) => {
        res.status(200).set('Cache-Control', `public, max-age=${settings.jwksMaxAge}`).type('application/jwk-set+json')
          .send(JSON.stringify(loaded.jwks));
      },
      (err: unknown) => {
        emitter.emit('internal_error', { error: err, endpoint: 'jwks' });
        sendOAuthError(res, err);
      },
    );
  }

  const metadataBody = JSON.stringify(metadataDocument(settings));

  function metadata(_req: Request, res: Response): void {
    res.status(200).set('Cache-Control', 'public, max-age=3600').type('application/json').send(metadataBody);
  }

  const router = express.Router({ strict: false, caseSensitive: true }) as AuthorizationServer;
  router.post('/token', tokenHandler);
  router.all('/token', methodNotAllowed('POST'));
  if (revocationHandler) {
    router.post('/revoke', revocationHandler);
    router.all('/revoke', methodNotAllowed('POST'));
  }
  if (listHandler) {
    router.get('/revocations', listHandler);
    router.all('/revocations', methodNotAllowed('GET'));
  }
  router.post('/introspect', introspectionHandler);
  router.all('/introspect', methodNotAllowed('POST'));
  router.get('/jwks.json', jwks);
  router.all('/jwks.json', methodNotAllowed('GET'));
  router.get('/.well-known/oauth-authorization-server', metadata);
  router.all('/.well-known/oauth-authorization-server', methodNotAllowed('GET'));
  router.events = emitter.events;
  router.ready = async () => { await keys.current(); };
  router.metadata = metadata;
  const issuerPath = new URL(issuer).pathname;
  router.metadataPath = `/.well-known/oauth-authorization-server${issuerPath === '/' ? '' : issuerPath}`;
  return router;
}
