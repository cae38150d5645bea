/**
 * The root of the error hierarchy: the codes ({@link ErrorCode}) and {@link M2MError}. See
 * lib/errors.ts for the whole.
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
