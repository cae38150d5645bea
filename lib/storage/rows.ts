import type { Client, GrantType, TokenEndpointAuthMethod } from '../core/client.js';
import type { ClientJwks } from '../core/client-jwks.js';
import { isSigningAlgorithm, type GeneratedKey, type PublicJwk } from '../core/keys.js';
import { DEFAULT_KEY_RETENTION, type SigningKeyRecord } from '../core/key-set.js';
import { isSealed, type KeyCipher } from '../core/key-encryption.js';
import type { ClientSecretInfo } from '../core/store.js';
import { UnsupportedKeyError } from '../errors.js';

/** A row of the clients table. */
export interface ClientRow {
  client_id: string;
  name: string;
  scopes: string;
  default_scopes: string;
  audiences: string;
  default_audience: string | null;
  token_lifetime: number | null;
  grant_types: string;
  enabled: boolean | number;
  claims: string;
  /** Null in rows from before the migration that added it: either secret method. */
  token_endpoint_auth_method: string | null;
  /** The registered public key set as JSON, or null. */
  jwks: string | null;
  jwks_uri: string | null;
  created_at: number | string;
  updated_at: number | string;
}

/** A row of the used client assertions table: the hash of client id and `jti`, until it expires. */
export interface UsedAssertionRow {
  id: string;
  client_id: string;
  expires_at: number | string;
}

/** A row of the client secrets table. It holds the secret's hash, never the secret. */
export interface SecretRow {
  id: string;
  client_id: string;
  secret_hash: string;
  hint: string;
  created_at: number | string;
  expires_at: number | string | null;
  last_used_at: number | string | null;
}

/**
 * A row of the signing keys table. `private_key` is PKCS#8 PEM, or sealed by the key cipher.
 * `retention` (seconds) is null in rows written before the migration that added it.
 */
export interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_key: string;
  created_at: number | string;
  activates_at: number | string;
  revoked_at: number | string | null;
  retention: number | string | null;
}

// PostgreSQL returns bigint columns as strings, SQLite as numbers.
const toDate = (value: number | string): Date => new Date(Number(value));
const toDateOrNull = (value: number | string | null): Date | null => (value === null ? null : toDate(value));
const splitScopes = (value: string): string[] => (value === '' ? [] : value.split(' '));

/** The client a row holds. */
export function clientFromRow(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    name: row.name,
    scopes: splitScopes(row.scopes),
    defaultScopes: splitScopes(row.default_scopes),
    audiences: JSON.parse(row.audiences) as string[],
    defaultAudience: row.default_audience,
    tokenLifetime: row.token_lifetime === null ? null : Number(row.token_lifetime),
    grantTypes: JSON.parse(row.grant_types) as GrantType[],
    enabled: Boolean(row.enabled),
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    // Undefined too: a database not migrated since the columns were added. An unknown method is
    // kept as it is, so that it matches no method and the client cannot authenticate.
    tokenEndpointAuthMethod: (row.token_endpoint_auth_method ?? null) as TokenEndpointAuthMethod | null,
    jwks: row.jwks === null || row.jwks === undefined ? null : JSON.parse(row.jwks) as ClientJwks,
    jwksUri: row.jwks_uri ?? null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

/** The columns of a client's row, but its timestamps, which the caller sets. */
export function clientToRow(client: Omit<Client, 'createdAt' | 'updatedAt'>): Omit<ClientRow, 'created_at' | 'updated_at'> {
  return {
    client_id: client.clientId,
    name: client.name,
    scopes: client.scopes.join(' '),
    default_scopes: client.defaultScopes.join(' '),
    audiences: JSON.stringify(client.audiences),
    default_audience: client.defaultAudience,
    token_lifetime: client.tokenLifetime,
    grant_types: JSON.stringify(client.grantTypes),
    enabled: client.enabled,
    claims: JSON.stringify(client.claims),
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    jwks: client.jwks === null ? null : JSON.stringify(client.jwks),
    jwks_uri: client.jwksUri,
  };
}

/** A secret's metadata; its hash stays in the row. */
export function secretFromRow(row: SecretRow): ClientSecretInfo {
  return {
    id: row.id,
    hint: row.hint,
    createdAt: toDate(row.created_at),
    expiresAt: toDateOrNull(row.expires_at),
    lastUsedAt: toDateOrNull(row.last_used_at),
  };
}

/**
 * A stored key. Its private key is decrypted when first read, not before: listing keys, which the
 * CLI and the JWKS do, needs no keyEncryptionKey.
 *
 * `privateKeyPem` is a non-enumerable getter, so the record can be logged, serialised, spread or
 * cloned without carrying the private key: only reading the property by name returns it
 * (`util.inspect` with `showHidden` names it `[Getter]` and does not call it).
 */
export function keyFromRow(row: KeyRow, cipher: KeyCipher): SigningKeyRecord {
  if (!isSigningAlgorithm(row.alg)) throw new UnsupportedKeyError(row.kid);
  let pem: string | undefined;
  const record = {
    kid: row.kid,
    alg: row.alg,
    publicJwk: JSON.parse(row.public_jwk) as PublicJwk,
    createdAt: toDate(row.created_at),
    activatesAt: toDate(row.activates_at),
    revokedAt: toDateOrNull(row.revoked_at),
    // Undefined too: a database not migrated since the column was added.
    retention: row.retention === null || row.retention === undefined ? DEFAULT_KEY_RETENTION : Number(row.retention),
    encrypted: isSealed(row.private_key),
  };
  return Object.defineProperty(record, 'privateKeyPem', {
    enumerable: false,
    get: () => (pem ??= cipher.open(row.private_key, row.kid)),
  }) as SigningKeyRecord;
}

/**
 * The row of a new key, its private key sealed by `cipher` (bound to the kid) before it is
 * written anywhere.
 *
 * @param times.createdAt - Creation time, in milliseconds since the epoch.
 * @param times.activatesAt - When the key starts signing, in milliseconds since the epoch.
 * @param times.retention - How long the key stays published once retired, in seconds.
 */
export function keyToRow(
  key: GeneratedKey, times: { createdAt: number; activatesAt: number; retention: number }, cipher: KeyCipher,
): KeyRow {
  return {
    kid: key.kid, alg: key.alg, public_jwk: JSON.stringify(key.publicJwk), private_key: cipher.seal(key.privateKeyPem, key.kid),
    created_at: times.createdAt, activates_at: times.activatesAt, revoked_at: null, retention: times.retention,
  };
}
