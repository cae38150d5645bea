/**
 * The package's own failures, with codes `ERR_M2M_...`: a failed token request of the caller, the
 * store's client and key errors, the token cache and the registration lookup.
 *
 * @module
 */
import { M2MError } from './base.js';
import { sanitizeDescription } from './oauth.js';

/**
 * What went wrong with a token request made by the caller ({@link TokenRequestError.reason}):
 *
 * - `oauth_error`: the token endpoint answered an RFC 6749 §5.2 error (`error` holds its code)
 * - `http_error`: a non-200 answer without an OAuth error body (a proxy's 502, an HTML page)
 * - `invalid_response`: a 200 that is not a usable RFC 6749 §5.1 Bearer token response
 * - `network_error`: no answer (connection refused or reset, DNS failure)
 * - `timeout`: no complete answer within the request timeout
 * - `discovery_failed`: the issuer's metadata could not be read or names no token endpoint
 */
export type TokenRequestFailure =
  | 'oauth_error'
  | 'http_error'
  | 'invalid_response'
  | 'network_error'
  | 'timeout'
  | 'discovery_failed';

/** Fields of a {@link TokenRequestError}. */
export interface TokenRequestErrorDetails {
  reason: TokenRequestFailure;
  tokenUrl: string;
  clientId: string;
  status?: number | undefined;
  error?: string | undefined;
  description?: string | undefined;
  retryAfter?: number | undefined;
  retryable: boolean;
  cause?: unknown;
}

/**
 * A token request made by the caller ({@link tokenClient}) failed: code `ERR_M2M_TOKEN_REQUEST`.
 * One class for every remote failure, as oauth4webapi does, carrying the server's `error` (its
 * RFC 6749 §5.2 code, not to be confused with this error's own `code`), its sanitised description
 * and the HTTP status. It never holds the client secret, the private key, an assertion or a token.
 *
 * `retryable` tells whether the caller retried (or would retry) it: 5xx, 429, 408, network errors
 * and timeouts are retryable; `invalid_client`, `invalid_scope` and every other 4xx fail fast.
 *
 * @example
 * ```ts
 * try { await reports.getToken(); } catch (err) {
 *   if (err instanceof TokenRequestError && err.error === 'invalid_client') alertOps('rotate the secret');
 * }
 * ```
 */
export class TokenRequestError extends M2MError {
  readonly code = 'ERR_M2M_TOKEN_REQUEST';
  /** What kind of failure this is. */
  readonly reason: TokenRequestFailure;
  /**
   * The URL the request went to: the token endpoint, or the revocation endpoint for
   * `TokenClient.revoke()` (it never holds credentials: URLs with userinfo are refused at creation).
   */
  readonly tokenUrl: string;
  /** The client id the request was made for. */
  readonly clientId: string;
  /** The HTTP status of the answer, when there was one. */
  readonly status: number | undefined;
  /** The server's RFC 6749 §5.2 `error` code, when it sent one. */
  readonly error: string | undefined;
  /** The server's `error_description`, sanitised as {@link sanitizeDescription} does. */
  readonly description: string | undefined;
  /** The server's `Retry-After`, in seconds, when it sent one. */
  readonly retryAfter: number | undefined;
  /** Whether the failure may pass by itself (5xx, 429, 408, network, timeout). */
  readonly retryable: boolean;

  constructor(message: string, details: TokenRequestErrorDetails) {
    super(message, details);
    this.reason = details.reason;
    this.tokenUrl = details.tokenUrl;
    this.clientId = details.clientId;
    this.status = details.status;
    this.error = details.error;
    this.description = details.description === undefined ? undefined : sanitizeDescription(details.description);
    this.retryAfter = details.retryAfter;
    this.retryable = details.retryable;
  }
}

/**
 * An admin operation names a client that does not exist: code `ERR_M2M_CLIENT_NOT_FOUND`. Thrown by
 * the store's `update`, `listSecrets` and `rotateSecret`.
 */
export class ClientNotFoundError extends M2MError {
  readonly code = 'ERR_M2M_CLIENT_NOT_FOUND';
  /** The client id asked for (its first 128 characters). */
  readonly clientId: string;

  constructor(clientId: string, options?: { cause?: unknown }) {
    const id = String(clientId).slice(0, 128);
    super(`no client with id ${JSON.stringify(id)}`, options);
    this.clientId = id;
  }
}

/**
 * A client is registered with an id that another client has: code `ERR_M2M_CLIENT_EXISTS`. Thrown
 * by the store's `clients.create`, with the database's unique-key error as `cause`; nothing is
 * stored. An admin API would answer it with 409 Conflict.
 *
 * @example
 * ```ts
 * try { await store.clients.create({ clientId: 'nightly-report', ...registration }); } catch (err) {
 *   if (!(err instanceof ClientExistsError)) throw err;
 *   await store.clients.update(err.clientId, registration);
 * }
 * ```
 */
export class ClientExistsError extends M2MError {
  readonly code = 'ERR_M2M_CLIENT_EXISTS';
  /** The client id that is taken. */
  readonly clientId: string;

  constructor(clientId: string, options?: { cause?: unknown }) {
    super(`a client with id ${JSON.stringify(clientId)} already exists`, options);
    this.clientId = clientId;
  }
}

/**
 * An admin operation does not fit the way a client authenticates, which is fixed at registration:
 * code `ERR_M2M_CLIENT_AUTH_METHOD`. Thrown by the store's `clients.update` when it would change
 * `tokenEndpointAuthMethod` or give keys (`jwks`, `jwksUri`) to a client that authenticates with a
 * secret, and by `rotateSecret` for a `private_key_jwt` client, which has no secret. Nothing is
 * changed. An admin API would answer it with 409 Conflict.
 *
 * @example
 * ```ts
 * try { await store.clients.rotateSecret(clientId); } catch (err) {
 *   if (err instanceof ClientAuthMethodError) console.error(`${err.clientId} uses ${err.method}`);
 * }
 * ```
 */
export class ClientAuthMethodError extends M2MError {
  readonly code = 'ERR_M2M_CLIENT_AUTH_METHOD';
  /** The client's id. */
  readonly clientId: string;
  /**
   * The client's method: `client_secret_basic`, `client_secret_post`, `private_key_jwt`, or null
   * for a client that may use either secret method.
   */
  readonly method: string | null;

  constructor(clientId: string, method: string | null, message: string) {
    super(`client ${JSON.stringify(clientId)}: ${message}`);
    this.clientId = clientId;
    this.method = method;
  }
}

/**
 * A stored private signing key is encrypted and cannot be decrypted: the store has no
 * `keyEncryptionKey`, or not the one the key was stored with. Code `ERR_M2M_KEY_DECRYPTION`.
 * Thrown on reading `privateKeyPem`; the token endpoint answers 503 with this error as the cause
 * in its `internal_error` event.
 */
export class KeyDecryptionError extends M2MError {
  readonly code = 'ERR_M2M_KEY_DECRYPTION';
  /** The kid of the key. */
  readonly kid: string;

  constructor(message: string, kid: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kid = kid;
  }
}

/**
 * A stored signing key has an algorithm this version cannot use (written by a newer version, or
 * by hand): code `ERR_M2M_KEY_UNSUPPORTED`. Thrown by the store's `keys.list()`.
 */
export class UnsupportedKeyError extends M2MError {
  readonly code = 'ERR_M2M_KEY_UNSUPPORTED';
  /** The kid of the key. */
  readonly kid: string;

  constructor(kid: string, options?: { cause?: unknown }) {
    super(`stored key ${kid} has an unsupported algorithm`, options);
    this.kid = kid;
  }
}

/**
 * A private key would be stored in plain text beside keys stored encrypted (no
 * `keyEncryptionKey` given to this store): code `ERR_M2M_KEY_PLAINTEXT`. Pass `allowPlaintext`
 * (CLI: `--allow-plaintext`) to do it on purpose.
 */
export class PlaintextKeyError extends M2MError {
  readonly code = 'ERR_M2M_KEY_PLAINTEXT';

  constructor(message: string) {
    super(message);
  }
}

/**
 * A stored private key does not belong to the public key stored beside it (a row tampered with or
 * copied), so it is not used to sign: code `ERR_M2M_KEY_MISMATCH`.
 */
export class KeyMismatchError extends M2MError {
  readonly code = 'ERR_M2M_KEY_MISMATCH';
  /** The kid of the key. */
  readonly kid: string;

  constructor(kid: string) {
    super(`the private key stored for ${kid} does not match its public key: it is not used to sign`);
    this.kid = kid;
  }
}

/**
 * A Knex or Redis token cache could not read or write: code `ERR_M2M_TOKEN_CACHE`. The message says
 * which operation failed, never the SQL or the command; the driver's error is the `cause`. A
 * {@link tokenClient} goes on without its cache and reports this error in a `cache.error` event.
 */
export class TokenCacheError extends M2MError {
  readonly code = 'ERR_M2M_TOKEN_CACHE';
}

/**
 * `tokenClients(...).get(name)` names no registration: code `ERR_M2M_REGISTRATION_NOT_FOUND`.
 */
export class RegistrationNotFoundError extends M2MError {
  readonly code = 'ERR_M2M_REGISTRATION_NOT_FOUND';
  /** The name asked for (its first 60 characters). */
  readonly registration: string;

  constructor(name: string) {
    const shown = String(name).slice(0, 60);
    super(`no token client is registered as ${JSON.stringify(shown)}`);
    this.registration = shown;
  }
}
