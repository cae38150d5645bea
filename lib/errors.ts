/**
 * One error hierarchy for everything this package throws, in panva/jose's style: one base class,
 * {@link M2MError}, a stable `code` on each subclass (the union {@link ErrorCode}), and the
 * underlying error, if any, in `cause`.
 *
 * Two families share the base:
 *
 * - {@link OAuthError}: the OAuth protocol errors this package produces or receives. Their `code`
 *   is exactly the RFC error string, with the HTTP `status` the spec gives for it and the response
 *   `headers` it needs. Descriptions are public text: they never hold a secret, a token, SQL or a
 *   stack trace. `cause` is never rendered.
 * - The package's own failures (a client id that is taken, a signing key that cannot be decrypted,
 *   a token request that failed...), with a code `ERR_M2M_...`.
 *
 * Not in the hierarchy: configuration mistakes (a bad option to a factory, a malformed client
 * registration) throw a plain `TypeError` naming the option, and a misused argument (a cache key
 * too long) a `RangeError`; errors of the database driver, Redis or `fetch` that the package does
 * not handle itself pass through as they are.
 *
 * Compare `code`, not the message: codes are stable, messages are for people and may change.
 *
 * @module
 */

/**
 * Every OAuth error code this package uses.
 *
 * - RFC 6749 §5.2: `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
 *   `unsupported_grant_type`, `invalid_scope`
 * - RFC 6749 §4.1.2.1 (also used at the token endpoint by most servers): `server_error`,
 *   `temporarily_unavailable`
 * - RFC 6750 §3.1: `invalid_request`, `invalid_token`, `insufficient_scope`
 * - RFC 8707 §2: `invalid_target`
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'server_error'
  | 'temporarily_unavailable';

/**
 * The code of every error this package throws that is not an OAuth protocol error, one per class:
 *
 * - `ERR_M2M_CLIENT_NOT_FOUND`: {@link ClientNotFoundError}, an admin operation names a client
 *   that does not exist
 * - `ERR_M2M_CLIENT_EXISTS`: {@link ClientExistsError}, a client is registered with an id that is
 *   taken
 * - `ERR_M2M_CLIENT_AUTH_METHOD`: {@link ClientAuthMethodError}, an admin operation does not fit
 *   the way the client authenticates (a secret for a `private_key_jwt` client, keys for a secret
 *   client, another method)
 * - `ERR_M2M_KEY_DECRYPTION`: {@link KeyDecryptionError}, a stored signing key is encrypted and
 *   there is no `keyEncryptionKey`, or not the one it was stored with
 * - `ERR_M2M_KEY_UNSUPPORTED`: {@link UnsupportedKeyError}, a stored signing key has an algorithm
 *   this version cannot use
 * - `ERR_M2M_TOKEN_REQUEST`: {@link TokenRequestError}, a token request made by the caller failed
 * - `ERR_M2M_TOKEN_CACHE`: {@link TokenCacheError}, a Knex or Redis token cache could not read or
 *   write
 * - `ERR_M2M_REGISTRATION_NOT_FOUND`: {@link RegistrationNotFoundError}, `tokenClients().get(name)`
 *   names no registration
 */
export type M2MErrorCode =
  | 'ERR_M2M_CLIENT_NOT_FOUND'
  | 'ERR_M2M_CLIENT_EXISTS'
  | 'ERR_M2M_CLIENT_AUTH_METHOD'
  | 'ERR_M2M_KEY_DECRYPTION'
  | 'ERR_M2M_KEY_UNSUPPORTED'
  | 'ERR_M2M_KEY_PLAINTEXT'
  | 'ERR_M2M_KEY_MISMATCH'
  | 'ERR_M2M_TOKEN_REQUEST'
  | 'ERR_M2M_TOKEN_CACHE'
  | 'ERR_M2M_REGISTRATION_NOT_FOUND';

/** The `code` of any {@link M2MError}: an {@link OAuthErrorCode} or an {@link M2MErrorCode}. */
export type ErrorCode = OAuthErrorCode | M2MErrorCode;

/**
 * Base class of every error this package raises itself, apart from the `TypeError`s of
 * configuration mistakes. Not constructed directly: each subclass has its own fixed `code`.
 *
 * @example
 * ```ts
 * try { await store.clients.create(registration); } catch (err) {
 *   if (err instanceof M2MError && err.code === 'ERR_M2M_CLIENT_EXISTS') return reply(409);
 *   throw err;
 * }
 * ```
 */
export abstract class M2MError extends Error {
  /** Stable identifier of the kind of error; see {@link ErrorCode}. */
  abstract readonly code: ErrorCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** Options accepted by every {@link OAuthError} constructor. */
export interface OAuthErrorOptions {
  /** The underlying error. Kept for the host's logs; never rendered to a client. */
  cause?: unknown;
  /** Extra response headers (for example `Retry-After`), merged over the class defaults. */
  headers?: Record<string, string>;
  /** HTTP status, overriding the class default (for example 429 for a rate-limited request). */
  status?: number;
}

const UNSAFE_DESCRIPTION = /[^\x20-\x21\x23-\x5B\x5D-\x7E]/g;

/**
 * Makes a description safe to place in a JSON body and in a `WWW-Authenticate` quoted string:
 * RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E, so quotes, backslashes, CR, LF and
 * non-ASCII characters are dropped, and the text is cut to 200 characters.
 *
 * @param text - The description to clean.
 * @returns The cleaned description.
 */
export function sanitizeDescription(text: string): string {
  return text.replace(UNSAFE_DESCRIPTION, '').slice(0, 200);
}

/**
 * Base class of every OAuth protocol error.
 *
 * @example
 * ```ts
 * try { ... } catch (err) {
 *   if (err instanceof OAuthError) res.status(err.status).set(err.headers).json(err.toJSON());
 * }
 * ```
 */
export class OAuthError extends M2MError {
  /** The RFC error code, sent as `error`. */
  readonly code: OAuthErrorCode;
  /** The HTTP status to answer with. */
  readonly status: number;
  /** Response headers this error needs (for example `WWW-Authenticate`, `Retry-After`). */
  readonly headers: Record<string, string>;
  /** Public, sanitised text sent as `error_description`. */
  readonly description: string;

  constructor(code: OAuthErrorCode, status: number, description: string, options: OAuthErrorOptions = {}) {
    const clean = sanitizeDescription(description);
    super(clean, options);
    this.code = code;
    this.status = options.status ?? status;
    this.headers = { ...options.headers };
    this.description = clean;
  }

  /** The RFC 6749 §5.2 JSON body: `{ error, error_description }`. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** RFC 6749 §5.2 / RFC 6750 §3.1 `invalid_request`: a malformed, incomplete or ambiguous request. HTTP 400. */
export class InvalidRequestError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_request', 400, description, options);
  }
}

/**
 * RFC 6749 §5.2 `invalid_client`: client authentication failed. HTTP 401; the caller adds
 * `WWW-Authenticate: Basic realm="..."` when the client used the Authorization header.
 */
export class InvalidClientError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_client', 401, description, options);
  }
}

/** RFC 6749 §5.2 `invalid_grant`: the grant or assertion is invalid, expired or revoked. HTTP 400. */
export class InvalidGrantError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_grant', 400, description, options);
  }
}

/** RFC 6749 §5.2 `unauthorized_client`: the client may not use this grant type. HTTP 400. */
export class UnauthorizedClientError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('unauthorized_client', 400, description, options);
  }
}

/** RFC 6749 §5.2 `unsupported_grant_type`: the server does not support this grant type. HTTP 400. */
export class UnsupportedGrantTypeError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('unsupported_grant_type', 400, description, options);
  }
}

/** RFC 6749 §5.2 `invalid_scope`: the scope is malformed, unknown or exceeds what the client may have. HTTP 400. */
export class InvalidScopeError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_scope', 400, description, options);
  }
}

/** RFC 8707 §2 `invalid_target`: the requested resource or audience is not allowed. HTTP 400. */
export class InvalidTargetError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_target', 400, description, options);
  }
}

/** RFC 6750 §3.1 `invalid_token`: the access token is expired, revoked, malformed or invalid. HTTP 401. */
export class InvalidTokenError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_token', 401, description, options);
  }
}

/**
 * The error for a request without Bearer credentials (RFC 6750 §3.1): 401 with a bare
 * `WWW-Authenticate: Bearer realm="..."` challenge. Its code stays `invalid_token` for the error
 * hierarchy, but the challenge holds no error code and the default response has no body, since
 * the client may simply not have known that authentication was needed.
 */
export class TokenRequiredError extends InvalidTokenError {}

/** RFC 6750 §3.1 `insufficient_scope`: the token lacks a scope the resource requires. HTTP 403. */
export class InsufficientScopeError extends OAuthError {
  /** The scopes the resource requires, sent as `scope` in `WWW-Authenticate`. */
  readonly scopes: readonly string[];

  constructor(description: string, scopes: readonly string[], options?: OAuthErrorOptions) {
    super('insufficient_scope', 403, description, options);
    this.scopes = scopes;
  }
}

/** RFC 6749 §4.1.2.1 `server_error`: something broke on the server side. HTTP 500. */
export class ServerError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('server_error', 500, description, options);
  }
}

/**
 * RFC 6749 §4.1.2.1 `temporarily_unavailable`: the server cannot answer now. HTTP 503 by default,
 * 429 when a client is rate limited; either way with `Retry-After` when the wait is known.
 */
export class TemporarilyUnavailableError extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('temporarily_unavailable', 503, description, options);
  }
}

/** Every concrete error class, by code. */
export const errorClasses = {
  invalid_request: InvalidRequestError,
  invalid_client: InvalidClientError,
  invalid_grant: InvalidGrantError,
  unauthorized_client: UnauthorizedClientError,
  unsupported_grant_type: UnsupportedGrantTypeError,
  invalid_scope: InvalidScopeError,
  invalid_target: InvalidTargetError,
  invalid_token: InvalidTokenError,
  insufficient_scope: InsufficientScopeError,
  server_error: ServerError,
  temporarily_unavailable: TemporarilyUnavailableError,
} as const satisfies Record<OAuthErrorCode, unknown>;

const OAUTH_ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(errorClasses));

/**
 * True for any {@link OAuthError}, including one from another copy of this package.
 *
 * An application can hold two copies of express-m2m (a dependency that pins another version, a
 * linked package), and `instanceof` knows only its own copy's class. So besides `instanceof`, an
 * `Error` is recognised by its shape: a `code` that is an {@link OAuthErrorCode}, an integer
 * `status`, a `headers` object and a string `description`. An error with any other code (a
 * database driver's `23505`, Node's `ECONNRESET`, this package's `ERR_M2M_...`) is not an OAuth
 * error, and neither is an object that is not an `Error`.
 *
 * @param value - Anything, typically what an error handler caught.
 * @returns Whether `value` is an OAuth error, whichever copy of the package made it.
 *
 * @example
 * ```ts
 * app.use((err, req, res, next) => {
 *   if (isOAuthError(err)) res.status(err.status).set(err.headers).json({ error: err.code, error_description: err.description });
 *   else next(err);
 * });
 * ```
 */
export function isOAuthError(value: unknown): value is OAuthError {
  if (value instanceof OAuthError) return true;
  if (!(value instanceof Error)) return false;
  const { code, status, headers, description } = value as Error & Record<string, unknown>;
  return typeof code === 'string' && OAUTH_ERROR_CODES.has(code)
    && Number.isInteger(status)
    && headers !== null && typeof headers === 'object'
    && typeof description === 'string';
}

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
