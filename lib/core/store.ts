import type { AuditLog } from './audit.js';
import type { Client, ClientRegistration, ClientUpdate, KeyClientRegistration } from './client.js';
import type { SigningAlgorithm } from './keys.js';
import type { SigningKeyRecord } from './key-set.js';
import type { RevocationStore } from './revocations.js';

// Defined with the rest of the error hierarchy; exported here too, beside the interfaces that throw it.
export { ClientNotFoundError } from '../errors.js';

/** A client secret's metadata. The secret itself is never stored, only its hash. */
export interface ClientSecretInfo {
  /** Opaque id of the secret (for revoking one secret of several). */
  id: string;
  /** The first characters of the secret (prefix included), enough to recognise it in a list. */
  hint: string;
  createdAt: Date;
  /** After this instant the secret no longer authenticates; null for no expiry. */
  expiresAt: Date | null;
  /** Last successful use, recorded at most once a minute per secret; null if never used. */
  lastUsedAt: Date | null;
}

/** A new secret, in plain text exactly once. */
export interface IssuedSecret {
  clientId: string;
  /** The plain secret: show it once, it cannot be recovered. */
  clientSecret: string;
  secret: ClientSecretInfo;
}

/** A client registered with public keys (`private_key_jwt`): no secret is issued. */
export interface RegisteredClient {
  clientId: string;
  client: Client;
}

/** What registering a client gives: its first secret, or none for a `private_key_jwt` client. */
export type CreatedClient = (IssuedSecret & { client: Client }) | RegisteredClient;

/** A registration without keys: a client with a secret, which may expire. */
export type SecretClientRegistration = ClientRegistration & { jwks?: undefined; jwksUri?: undefined; secretExpiresAt?: Date | null };

/** Why an authentication attempt failed. Private detail for events and logs, never sent to clients. */
export type AuthenticationFailure =
  | 'unknown_client' | 'invalid_secret' | 'expired_secret' | 'client_disabled' | 'malformed_credentials';

/** The outcome of checking a client's credentials. */
export type AuthenticationResult =
  | { ok: true; client: Client }
  | { ok: false; reason: AuthenticationFailure };

/** Client registry. */
export interface ClientStore {
  /**
   * Registers a client: with a first secret, or, given `jwks` or `jwksUri`, as a `private_key_jwt`
   * client without any secret (RFC 7523 §2.2).
   *
   * @throws TypeError on invalid input (an `InvalidOptionError` naming the field for the
   *   authentication fields: a private JWK, a jwksUri without https...), ClientExistsError for a
   *   taken id. Nothing is stored then.
   * @example
   * ```ts
   * const { clientId } = await store.clients.create({ name: 'archiver', scopes: ['reports:read'],
   *   audiences: ['https://reports.internal'], jwks: { keys: [publicJwk] } });
   * ```
   */
  create(input: KeyClientRegistration): Promise<RegisteredClient>;
  // Last, so that ReturnType<ClientStore['create']> stays what it was before keys existed.
  create(input: SecretClientRegistration): Promise<IssuedSecret & { client: Client }>;
  /** The client, or undefined. */
  get(clientId: string): Promise<Client | undefined>;
  /**
   * The client as client authentication sees it: from the store's in-memory copy of the registry
   * when it has one, so that a `private_key_jwt` authentication costs no query for it. Optional:
   * the issuer uses {@link ClientStore.get} without it.
   */
  lookup?(clientId: string): Promise<Client | undefined>;
  /** Every client, ordered by id. */
  list(): Promise<Client[]>;
  /**
   * Changes a client. Disabling it (`enabled: false`) also revokes every token it was issued
   * before, in the same transaction, where the store keeps a revocation record (the Knex store
   * does). @throws ClientNotFoundError, TypeError.
   */
  update(clientId: string, update: ClientUpdate): Promise<Client>;
  /**
   * Removes a client and its secrets, and revokes every token it was issued, in the same
   * transaction, where the store keeps a revocation record. @returns false when there was no such client.
   */
  delete(clientId: string): Promise<boolean>;
  /**
   * Revokes every token the client was issued until now (those with an `iat` before the returned
   * instant: the next whole second, so a token issued in this second is revoked too), as an
   * audited change (`client.tokens_revoked`). The client keeps its secrets or keys and may get new
   * tokens. Optional for stores of one's own; the Knex store has it.
   *
   * @returns The cutoff: tokens of the client with an `iat` before it are revoked.
   * @throws ClientNotFoundError for an unknown client.
   * @example
   * ```ts
   * await store.clients.revokeTokens('nightly-report');   // a leaked token: take them all back
   * ```
   */
  revokeTokens?(clientId: string): Promise<Date>;
  /** The client's secrets (metadata only), newest first. @throws ClientNotFoundError. */
  listSecrets(clientId: string): Promise<ClientSecretInfo[]>;
  /**
   * Adds a new secret and lets the older ones expire after a grace period, so callers can switch
   * without downtime. @throws ClientNotFoundError, ClientAuthMethodError for a `private_key_jwt`
   * client (it has no secret).
   */
  rotateSecret(clientId: string, options?: { gracePeriod?: number; expiresAt?: Date | null }): Promise<IssuedSecret>;
  /** Withdraws one secret at once. @returns false when no such secret. */
  revokeSecret(clientId: string, secretId: string): Promise<boolean>;
  /**
   * Checks a client id and secret: one query however the check ends, and every stored hash
   * compared in constant time, so an unknown client and a wrong secret take the same time.
   */
  authenticate(clientId: string, clientSecret: string): Promise<AuthenticationResult>;
  /** Waits for pending last-used writes (tests and shutdown). */
  flushUsage(): Promise<void>;
}

/** Signing-key storage. */
export interface KeyStore {
  /**
   * Every key not revoked, each with its `retention`. The private PEM is read through
   * `record.privateKeyPem` and is not an enumerable property: see {@link SigningKeyRecord}.
   * @throws UnsupportedKeyError for a stored key whose algorithm this version cannot use. Reading
   * `privateKeyPem` of a key stored encrypted throws KeyDecryptionError without the right
   * `keyEncryptionKey`.
   */
  list(): Promise<SigningKeyRecord[]>;
  /**
   * Creates a key that is active at once when the store holds no active key; otherwise creates none.
   *
   * With `retention` (seconds; the issuer passes its `maxTokenLifetime` + 60) the new key records it,
   * and so do the active and pending keys whose recorded retention is shorter: those are the keys
   * the caller will sign with, so they must stay published that long once retired. A recorded
   * retention is never shortened. Without it a new key gets `DEFAULT_KEY_RETENTION` and nothing
   * else changes.
   *
   * @example
   * ```ts
   * await store.keys.ensure('ES256', { retention: 3600 + 60 });
   * ```
   */
  ensure(alg: SigningAlgorithm, options?: { retention?: number; allowPlaintext?: boolean }): Promise<void>;
  /**
   * Adds a key that is published at once and starts signing after `activateAfter` seconds
   * (default 600), so resource servers see it before any token carries its kid.
   *
   * `retention` is how long the key stays published once a later key takes over, in seconds:
   * the longest lifetime of a token the issuer signs plus clock skew. Default: that of the newest
   * key not revoked (which the issuer recorded), else `DEFAULT_KEY_RETENTION`.
   *
   * A store without `keyEncryptionKey` refuses to add a plain-text key beside keys stored
   * encrypted ({@link PlaintextKeyError}) unless `allowPlaintext`; so does `ensure`.
   *
   * @example
   * ```ts
   * await store.keys.rotate({ alg: 'ES256', activateAfter: 600, retention: 86_400 + 60 });
   * ```
   */
  rotate(options?: { alg?: SigningAlgorithm; activateAfter?: number; retention?: number; allowPlaintext?: boolean }): Promise<SigningKeyRecord>;
  /**
   * Encrypts every live private key still stored in plain text, with the store's
   * `keyEncryptionKey`. Optional for stores of one's own.
   *
   * @returns How many keys it sealed.
   * @throws InvalidOptionError when the store has no keyEncryptionKey.
   */
  seal?(): Promise<number>;
  /** Withdraws a key at once (for a compromised key). @returns false when no such key. */
  revoke(kid: string): Promise<boolean>;
}

/**
 * The `jti`s of client assertions already used (RFC 7523 §3 item 7), kept until they expire, so
 * that an assertion authenticates once, whichever instance sharing the store it is sent to.
 */
export interface UsedAssertionStore {
  /**
   * Records that `clientId` used the assertion `jti`, valid until `expiresAt`; atomically, across
   * every instance sharing the store.
   *
   * @returns true the first time, false when that client used that `jti` before and the record
   *   has not expired: a replay.
   */
  markUsed(clientId: string, jti: string, expiresAt: Date): Promise<boolean>;
}

/** Everything the issuer keeps. Implemented for Knex by `createKnexStore`; hosts may bring their own. */
export interface IssuerStore {
  clients: ClientStore;
  keys: KeyStore;
  /**
   * Used client-assertion ids. Without it the issuer offers no `private_key_jwt`: it cannot refuse
   * a replayed assertion.
   */
  usedAssertions?: UsedAssertionStore;
  /**
   * The revocation record. Without it the issuer serves no revocation endpoint (RFC 7009), and
   * its introspection endpoint (RFC 7662) knows of no revoked token.
   */
  revocations?: RevocationStore;
  /** Creates or upgrades the tables. */
  migrate(): Promise<void>;
  /** The audit trail of administrative changes, when the store keeps one (the Knex store does). */
  readonly audit?: AuditLog;
  /** The same store, its changes recorded as made by `actor`; optional for stores of one's own. */
  withActor?(actor: string): IssuerStore;
}
