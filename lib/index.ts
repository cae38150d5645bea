export {
  OAuthError, InvalidRequestError, InvalidClientError, InvalidGrantError, UnauthorizedClientError,
  UnsupportedGrantTypeError, InvalidScopeError, InvalidTargetError, InvalidTokenError, TokenRequiredError, InsufficientScopeError,
  ServerError, TemporarilyUnavailableError, errorClasses, isOAuthError, sanitizeDescription, TokenRequestError,
} from './errors.js';
export type { OAuthErrorCode, OAuthErrorOptions, TokenRequestFailure, TokenRequestErrorDetails } from './errors.js';

export { parseScope, formatScope, isScopeToken } from './core/scope.js';
export { generateClientSecret, hashSecret, isWellFormedSecret, SECRET_PREFIX } from './core/secrets.js';
export { SIGNING_ALGORITHMS, isSigningAlgorithm } from './core/keys.js';
export type { SigningAlgorithm, PublicJwk } from './core/keys.js';
export { selectKeys, DEFAULT_KEY_RETENTION } from './core/key-set.js';
export type { SigningKeyRecord, KeySetView } from './core/key-set.js';
export { RESERVED_CLAIMS } from './core/token.js';
export { isClientId } from './core/client.js';
export type { Client, ClientRegistration, ClientUpdate, GrantType } from './core/client.js';
export { ClientNotFoundError } from './core/store.js';
export type {
  IssuerStore, ClientStore, KeyStore, ClientSecretInfo, IssuedSecret, AuthenticationResult, AuthenticationFailure,
} from './core/store.js';
export type { ScopePolicy } from './core/grant.js';

export { createKnexStore } from './storage/knex-store.js';
export type { KnexStore, KnexStoreOptions } from './storage/knex-store.js';
export { runMigrations } from './storage/migrations.js';

export { authorizationServer } from './express/authorization-server.js';
export type {
  AuthorizationServer, AuthorizationServerOptions, AuthorizationServerEvents, AuthorizationServerEventMap,
  ClaimsContext, TokenIssuedEvent, AuthenticationFailedEvent, RateLimitedEvent, InternalErrorEvent,
} from './express/authorization-server.js';
export type { RateLimitOptions, FailureLimit } from './express/rate-limit.js';
export type { ClientAuthMethod, ClientAuthFailure } from './express/client-auth.js';
export { sendOAuthError } from './express/render.js';

export { createResourceServer, requireScope } from './express/resource-server.js';
export type {
  ResourceServer, ResourceServerOptions, RequireScopeOptions, AuthenticateOptions, AuthenticatedRequest,
  AuthenticatedRequestFields,
} from './express/resource-server.js';
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
