/**
 * `express-m2m/store`: what someone writing an {@link IssuerStore} of their own (instead of
 * `createKnexStore`) needs to behave as the bundled store does: secret generation and hashing,
 * the choice of signing and published keys, client id and scope rules, the reserved claims.
 *
 * @module
 */
export { generateClientSecret, hashSecret, isWellFormedSecret, SECRET_PREFIX } from './core/secrets.js';
export { selectKeys, keyStates, DEFAULT_KEY_RETENTION } from './core/key-set.js';
export type { SigningKeyRecord, KeySetView, KeyState } from './core/key-set.js';
export { SIGNING_ALGORITHMS, isSigningAlgorithm } from './core/keys.js';
export type { SigningAlgorithm, PublicJwk } from './core/keys.js';
export { isClientId, TOKEN_ENDPOINT_AUTH_METHODS } from './core/client.js';
export type {
  Client, ClientRegistration, ClientUpdate, GrantType, TokenEndpointAuthMethod, ClientPublicKeys, KeyClientRegistration,
} from './core/client.js';
export { checkClientJwks, checkClientJwksUri, MAX_CLIENT_KEYS } from './core/client-jwks.js';
export type { ClientJwk, ClientJwks, ClientJwksInput } from './core/client-jwks.js';
export { parseScope, formatScope, isScopeToken } from './core/scope.js';
export { RESERVED_CLAIMS } from './core/token.js';
export { ClientNotFoundError, ClientExistsError, ClientAuthMethodError } from './errors.js';
export type {
  IssuerStore, ClientStore, KeyStore, ClientSecretInfo, IssuedSecret, AuthenticationResult, AuthenticationFailure,
  RegisteredClient, CreatedClient, SecretClientRegistration, UsedAssertionStore,
} from './core/store.js';
export type {
  RevocationStore, RevocationEntry, RevocationChanges, RevocationQuery, RevocationCheck, TokenRevocation,
} from './core/revocations.js';
