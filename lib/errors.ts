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
export {
  M2MError, type ErrorCode, type M2MErrorCode, type OAuthErrorCode,
} from './errors/base.js';
export {
  InsufficientScopeError, InvalidClientError, InvalidGrantError, InvalidRequestError, InvalidScopeError,
  InvalidTargetError, InvalidTokenError, OAuthError, ServerError, TemporarilyUnavailableError,
  TokenRequiredError, UnauthorizedClientError, UnsupportedGrantTypeError, errorClasses, isOAuthError,
  sanitizeDescription, type OAuthErrorOptions,
} from './errors/oauth.js';
export {
  ClientAuthMethodError, ClientExistsError, ClientNotFoundError, KeyDecryptionError, KeyMismatchError,
  PlaintextKeyError, RegistrationNotFoundError, TokenCacheError, TokenRequestError, UnsupportedKeyError,
  type TokenRequestErrorDetails, type TokenRequestFailure,
} from './errors/package.js';
