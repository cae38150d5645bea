/**
 * express-m2m: the issuer (authorizationServer, createKnexStore), the resource-server guard
 * (createResourceServer, requireScope) and the caller (tokenClient, tokenClients), with their
 * options, events and errors. Helpers for writing a store of one's own: `express-m2m/store`.
 *
 * @module
 */
export {
  M2MError, OAuthError, InvalidRequestError, InvalidClientError, InvalidGrantError, UnauthorizedClientError,
  UnsupportedGrantTypeError, InvalidScopeError, InvalidTargetError, InvalidTokenError, TokenRequiredError, InsufficientScopeError,
  ServerError, TemporarilyUnavailableError, errorClasses, isOAuthError, sanitizeDescription, TokenRequestError,
  ClientNotFoundError, ClientExistsError, ClientAuthMethodError, KeyDecryptionError, UnsupportedKeyError, PlaintextKeyError,
  KeyMismatchError, TokenCacheError, RegistrationNotFoundError,
} from './errors.js';
export type {
  ErrorCode, OAuthErrorCode, M2MErrorCode, OAuthErrorOptions, TokenRequestFailure, TokenRequestErrorDetails,
} from './errors.js';

export { InvalidOptionError } from './core/options.js';
export type { OptionErrorCode } from './core/options.js';

// What a host of the issuer handles: helpers for writing a store of one's own are in express-m2m/store.
export { SIGNING_ALGORITHMS } from './core/keys.js';
export type { SigningAlgorithm, PublicJwk } from './core/keys.js';
export type { SigningKeyRecord } from './core/key-set.js';
export type {
  Client, ClientRegistration, ClientUpdate, GrantType, TokenEndpointAuthMethod, ClientPublicKeys, KeyClientRegistration,
} from './core/client.js';
export type { ClientJwk, ClientJwks, ClientJwksInput } from './core/client-jwks.js';
export type {
  IssuerStore, ClientSecretInfo, IssuedSecret, RegisteredClient, CreatedClient, SecretClientRegistration,
  UsedAssertionStore,
} from './core/store.js';
export type {
  RevocationStore, RevocationEntry, RevocationChanges, RevocationQuery, RevocationCheck, TokenRevocation,
} from './core/revocations.js';
export type { AssertionFailure } from './core/client-assertion.js';
export type { ScopePolicy } from './core/grant.js';

export { createKnexStore } from './storage/knex-store.js';
export type { KnexStore, KnexStoreOptions } from './storage/knex-store.js';
export type { KnexUsedAssertionStore } from './storage/used-assertions.js';
export type { StoreEventMap } from './storage/change-feed.js';
export type { AuditLog, AuditEntry, AuditAction, AuditQuery } from './storage/audit.js';
export { runMigrations } from './storage/migrations.js';

export { authorizationServer, INTROSPECTION_SCOPE, REVOCATIONS_SCOPE } from './express/authorization-server.js';
export type {
  AuthorizationServer, AuthorizationServerOptions, AuthorizationServerEvents, AuthorizationServerEventMap,
  ClaimsContext, ClientAssertionOptions, TokenIssuedEvent, TokenRevokedEvent, AuthenticationFailedEvent, RateLimitedEvent, InternalErrorEvent,
  PlaintextKeysEvent,
} from './express/authorization-server.js';
export type { RateLimitOptions, FailureLimit } from './express/rate-limit.js';
export type { ClientAuthMethod, ClientAuthFailure } from './express/client-auth-outcome.js';
export { sendOAuthError } from './express/render.js';

export { createResourceServer, requireScope } from './express/resource-server.js';
export { adminApi } from './express/admin-api.js';
export type { AdminApiOptions } from './express/admin-api.js';
export type {
  ResourceServer, ResourceServerOptions, RevocationListOptions, RequireScopeOptions, AuthenticateOptions, AuthenticatedRequest,
  AuthenticatedRequestFields,
} from './express/resource-server.js';
export type {
  ResourceServerEvents, ResourceServerEventMap, TokenAcceptedEvent, TokenRefusedEvent, GuardRefusalReason, KeysFetchedEvent,
  KeysUnavailableEvent, RevocationsFetchedEvent, RevocationsUnavailableEvent,
} from './express/guard-events.js';
export { ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS } from './core/verify.js';
export type {
  VerifiedAccessToken, AccessTokenClaims, AccessTokenHeader, AsymmetricAlgorithm, ClaimRequirement, ScopeMatch,
} from './core/verify.js';
export type { FetchFunction } from './core/jwks.js';

export { tokenClient, AccessToken } from './client/token-client.js';
export type {
  TokenClient, TokenClientEvents, TokenClientEventMap, TokenFetchedEvent, RefreshFailedEvent, RetryScheduledEvent,
  TokenRejectedEvent, CacheErrorEvent,
} from './client/token-client.js';
export { tokenClients } from './client/token-clients.js';
export type { TokenClients, SharedTokenClientOptions } from './client/token-clients.js';
export type { TokenClientOptions, RetryOptions, ReplayPolicy, CallerFetch } from './client/options.js';
export type { CallerAuthMethod, AssertionAlgorithm } from './client/token-request.js';
export { memoryTokenCache } from './client/cache.js';
export type { TokenCache, MemoryTokenCacheOptions } from './client/cache.js';
export type { AxiosLike } from './client/adapters.js';
export { redisTokenCache } from './client/redis-cache.js';
export type { RedisLike, RedisTokenCacheOptions } from './client/redis-cache.js';
export { knexTokenCache } from './client/knex-cache.js';
export type { KnexTokenCache, KnexTokenCacheOptions } from './client/knex-cache.js';
