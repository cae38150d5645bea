// How the commands print: dates, tables and `label: value` lines for people, and the JSON shapes
// of `--json`. The JSON shapes list their fields one by one so that nothing secret slips in.
import type { Client } from '../core/client.js';
import type { SigningKeyRecord } from '../core/key-set.js';
import type { ClientSecretInfo } from '../core/store.js';

export const iso = (date: Date): string => date.toISOString();
export const isoOrNull = (date: Date | null): string | null => (date === null ? null : date.toISOString());
/** An ISO date without milliseconds, or `none` for null. */
export const shortDate = (date: Date | null, none = '-'): string => (date === null ? none : date.toISOString().replace(/\.\d{3}Z$/, 'Z'));
export const yesNo = (value: boolean): string => (value ? 'yes' : 'no');

/** Left-aligned columns separated by two spaces. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `label: value` lines with the values aligned. */
export function fields(entries: readonly (readonly [string, string])[]): string {
  const width = Math.max(...entries.map(([label]) => label.length)) + 1;
  return entries.map(([label, value]) => `  ${`${label}:`.padEnd(width)}  ${value}`).join('\n');
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

/** A signing key's state as `keys list` shows it. */
export type KeyState = 'pending' | 'active' | 'retired-but-published' | 'expired';

/** A signing key as `--json` prints it. */
export function keyJson(key: SigningKeyRecord, state: KeyState): Record<string, unknown> {
  // Deliberately field by field: the record also holds the private key.
  return { kid: key.kid, alg: key.alg, state, createdAt: iso(key.createdAt), activatesAt: iso(key.activatesAt) };
}
