/**
 * The OAuth protocol errors ({@link OAuthError} and one class per RFC code), and
 * {@link isOAuthError}, which recognises them across copies of the package.
 *
 * @module
 */
import { M2MError, type OAuthErrorCode } from './base.js';

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
