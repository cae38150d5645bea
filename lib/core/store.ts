import type { AuditLog } from './audit.js';
import type { Client, ClientRegistration, ClientUpdate } from './client.js';
import type { SigningAlgorithm } from './keys.js';
import type { SigningKeyRecord } from './key-set.js';

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

/** Why an authentication attempt failed. Private detail for events and logs, never sent to clients. */
export type AuthenticationFailure =
  | 'unknown_client' | 'invalid_secret' | 'expired_secret' | 'client_disabled' | 'malformed_credentials';

/** The outcome of checking a client's credentials. */
export type AuthenticationResult =
  | { ok: true; client: Client }
  | { ok: false; reason: AuthenticationFailure };

/** Client registry. */
export interface ClientStore {
  /** Registers a client with a first secret. @throws TypeError on invalid input, ClientExistsError for a taken id. */
  create(input: ClientRegistration & { secretExpiresAt?: Date | null }): Promise<IssuedSecret & { client: Client }>;
  /** The client, or undefined. */
  get(clientId: string): Promise<Client | undefined>;
  /** Every client, ordered by id. */
  list(): Promise<Client[]>;
  /** Changes a client. @throws ClientNotFoundError, TypeError. */
  update(clientId: string, update: ClientUpdate): Promise<Client>;
  /** Removes a client and its secrets. @returns false when there was no such client. */
  delete(clientId: string): Promise<boolean>;
  /** The client's secrets (metadata only), newest first. @throws ClientNotFoundError. */
  listSecrets(clientId: string): Promise<ClientSecretInfo[]>;
  /**
   * Adds a new secret and lets the older ones expire after a grace period, so callers can switch
   * without downtime. @throws ClientNotFoundError.
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

/** Everything the issuer keeps. Implemented for Knex by `createKnexStore`; hosts may bring their own. */
export interface IssuerStore {
  clients: ClientStore;
  keys: KeyStore;
  /** Creates or upgrades the tables. */
  migrate(): Promise<void>;
  /** The audit trail of administrative changes, when the store keeps one (the Knex store does). */
  readonly audit?: AuditLog;
  /** The same store, its changes recorded as made by `actor`; optional for stores of one's own. */
  withActor?(actor: string): IssuerStore;
}
