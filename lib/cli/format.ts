// How the commands print: dates, tables and `label: value` lines for people, and the JSON shapes
// of `--json`. The JSON shapes list their fields one by one so that nothing secret slips in.
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type { Client } from '../core/client.js';
import type { ClientJwk, ClientJwks } from '../core/client-jwks.js';
import { formatScope } from '../core/scope.js';
import type { ClientSecretInfo } from '../core/store.js';
import type { KeyState as IssuerKeyState } from '../core/key-set.js';

/** Printed under a secret, the one time it is shown. */
export const SECRET_NOTICE = 'This secret will not be shown again: store it now.';
/** Printed when a client registered with public keys is created. */
export const KEYED_NOTICE = 'No secret was issued: the client authenticates with JWTs signed by its private key (private_key_jwt).';

/** An ISO 8601 date with milliseconds, as `--json` prints dates. */
export const iso = (date: Date): string => date.toISOString();
/** {@link iso}, or null for null. */
export const isoOrNull = (date: Date | null): string | null => (date === null ? null : date.toISOString());
/** An ISO date without milliseconds, or `none` for null. */
export const shortDate = (date: Date | null, none = '-'): string => (date === null ? none : date.toISOString().replace(/\.\d{3}Z$/, 'Z'));
/** `yes` or `no`. */
export const yesNo = (value: boolean): string => (value ? 'yes' : 'no');

/** Rows of left-aligned columns separated by two spaces, one line each. */
function aligned(rows: readonly (readonly string[])[]): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((cells) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

/** Left-aligned columns separated by two spaces, under a line of headers. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return aligned([headers, ...rows]).join('\n');
}

/** `label: value` lines with the values aligned; a value of several lines continues under itself. */
export function fields(entries: readonly (readonly [string, string])[]): string {
  const width = Math.max(...entries.map(([label]) => label.length)) + 1;
  return entries.map(([label, value]) => `  ${`${label}:`.padEnd(width)}  ${value.replaceAll('\n', `\n${' '.repeat(width + 4)}`)}`).join('\n');
}

/** How a client authenticates; a client registered without a method may use either secret method. */
export const authMethod = (client: Client): string => client.tokenEndpointAuthMethod ?? 'client_secret_basic or client_secret_post';

/** `EC P-256` or `RSA 2048`: the key's type and size. */
function keyType(jwk: ClientJwk): string {
  if (jwk.kty === 'EC') return `EC ${String(jwk.crv)}`;
  try {
    return `RSA ${createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails?.modulusLength ?? '?'}`;
  } catch {
    return 'RSA';
  }
}

/** A registered key set, one key a line: kid, type and size, alg (`any alg` when it names none). */
export function keyLines(jwks: ClientJwks): string {
  return aligned(jwks.keys.map((jwk) => [jwk.kid ?? '(no kid)', keyType(jwk), jwk.alg ?? 'any alg'])).join('\n');
}

/** What `clients list` shows of a client's keys: the kids of its key set, its jwks_uri, or `-`. */
export function keysColumn(client: Client): string {
  if (client.jwks !== null) return client.jwks.keys.map((jwk) => jwk.kid ?? '(no kid)').join(' ');
  return client.jwksUri ?? '-';
}

/** A client's settings as `clients show` prints them, each with the field it shows. */
export function clientFields(client: Client): { field: keyof Client; label: string; value: string }[] {
  return [
    { field: 'name', label: 'name', value: client.name },
    { field: 'enabled', label: 'enabled', value: yesNo(client.enabled) },
    { field: 'scopes', label: 'scopes', value: formatScope(client.scopes) || '-' },
    { field: 'defaultScopes', label: 'default scopes', value: formatScope(client.defaultScopes) || '- (requests must name their scopes)' },
    { field: 'audiences', label: 'audiences', value: client.audiences.join(' ') },
    { field: 'defaultAudience', label: 'default audience', value: client.defaultAudience ?? '- (requests must name one)' },
    { field: 'tokenLifetime', label: 'token lifetime', value: client.tokenLifetime === null ? "issuer's default" : `${client.tokenLifetime} s` },
    { field: 'grantTypes', label: 'grant types', value: client.grantTypes.join(' ') },
    { field: 'tokenEndpointAuthMethod', label: 'auth method', value: authMethod(client) },
    ...client.jwks === null ? [] : [{ field: 'jwks' as const, label: 'keys', value: keyLines(client.jwks) }],
    ...client.jwksUri === null ? [] : [{ field: 'jwksUri' as const, label: 'jwks uri', value: client.jwksUri }],
    { field: 'claims', label: 'claims', value: JSON.stringify(client.claims) },
    { field: 'createdAt', label: 'created', value: shortDate(client.createdAt) },
    { field: 'updatedAt', label: 'updated', value: shortDate(client.updatedAt) },
  ];
}

/** A client as `--json` prints it. */
export function clientJson(client: Client): Record<string, unknown> {
  return {
    clientId: client.clientId,
    name: client.name,
    enabled: client.enabled,
    scopes: client.scopes,
    defaultScopes: client.defaultScopes,
    audiences: client.audiences,
    defaultAudience: client.defaultAudience,
    tokenLifetime: client.tokenLifetime,
    grantTypes: client.grantTypes,
    claims: client.claims,
    tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
    // Public keys only: the store refuses a private member at registration.
    jwks: client.jwks,
    jwksUri: client.jwksUri,
    createdAt: iso(client.createdAt),
    updatedAt: iso(client.updatedAt),
  };
}

/** A secret's metadata as `--json` prints it (never the secret or its hash). */
export function secretJson(secret: ClientSecretInfo): Record<string, unknown> {
  return {
    id: secret.id,
    hint: secret.hint,
    createdAt: iso(secret.createdAt),
    expiresAt: isoOrNull(secret.expiresAt),
    lastUsedAt: isoOrNull(secret.lastUsedAt),
  };
}

/** A signing key's state as `keys list` shows it: the issuer's view, or `revoked`. */
export type KeyState = IssuerKeyState | 'revoked';

/** What `keys list` shows of a key: never its private key, which the type leaves out. */
export interface KeyListing {
  kid: string;
  alg: string;
  createdAt: Date;
  activatesAt: Date;
  revokedAt: Date | null;
}

/** A signing key as `--json` prints it. */
export function keyJson(key: KeyListing, state: KeyState): Record<string, unknown> {
  // Deliberately field by field: a stored key record also holds the private key.
  return {
    kid: key.kid, alg: key.alg, state, createdAt: iso(key.createdAt), activatesAt: iso(key.activatesAt), revokedAt: isoOrNull(key.revokedAt),
  };
}
