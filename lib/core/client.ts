import { normalizeScopes } from './scope.js';
import { RESERVED_CLAIMS } from './token.js';

/** Grant types a client may be allowed. Only the client credentials grant exists today. */
export type GrantType = 'client_credentials';

/** A registered client, as the issuer sees it. */
export interface Client {
  /** The `client_id`. */
  clientId: string;
  /** A human-readable name (for admins; never sent in tokens). */
  name: string;
  /** Scopes the client may request. */
  scopes: string[];
  /** Scopes granted when a request names none. */
  defaultScopes: string[];
  /** Audiences (resource identifiers) the client may request tokens for. */
  audiences: string[];
  /** Audience used when a request names none, or null to require one. */
  defaultAudience: string | null;
  /** Access-token lifetime in seconds for this client, or null for the issuer's default. */
  tokenLifetime: number | null;
  /** Grant types the client may use. */
  grantTypes: GrantType[];
  /** A disabled client cannot authenticate. */
  enabled: boolean;
  /** Static claims added to every token of this client (never a reserved claim). */
  claims: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/** What an admin gives to register a client. */
export interface ClientRegistration {
  /** The `client_id`; generated (a random UUID) when absent. 1 to 128 printable ASCII characters, no space. */
  clientId?: string;
  /** Human-readable name, 1 to 200 characters. */
  name: string;
  /** Scopes the client may request. */
  scopes: readonly string[];
  /** Scopes granted when a request names none. Default: all of `scopes`. */
  defaultScopes?: readonly string[];
  /** Audiences the client may request. At least one. */
  audiences: readonly string[];
  /** Audience used when a request names none. Default: the first of `audiences`. */
  defaultAudience?: string | null;
  /** Token lifetime in seconds (1 to 86400), or null for the issuer's default. */
  tokenLifetime?: number | null;
  /** Default: `['client_credentials']`. */
  grantTypes?: readonly GrantType[];
  /** Default: true. */
  enabled?: boolean;
  /** Static claims added to every token. Reserved claim names are refused. At most 4 kB as JSON. */
  claims?: Readonly<Record<string, unknown>>;
}

/** Fields an admin may change after registration. */
export type ClientUpdate = Partial<Omit<ClientRegistration, 'clientId'>>;

const CLIENT_ID = /^[\x21-\x7E]{1,128}$/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const PRINTABLE = /^[^\x00-\x1F\x7F]+$/;

/** True when `value` could be a client id: 1 to 128 printable ASCII characters, no space. */
export function isClientId(value: unknown): value is string {
  return typeof value === 'string' && CLIENT_ID.test(value);
}

function checkText(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !PRINTABLE.test(value)) {
    throw new TypeError(`${what} must be a string of 1 to ${max} characters without control characters`);
  }
  return value;
}

function checkAudiences(values: unknown): string[] {
  if (!Array.isArray(values) || values.length === 0) throw new TypeError('audiences must be a non-empty array');
  if (values.length > 50) throw new TypeError('audiences may hold at most 50 entries');
  return [...new Set(values.map((v) => checkText(v, 'each audience', 512)))];
}

function checkLifetime(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 86400) {
    throw new TypeError('tokenLifetime must be an integer number of seconds from 1 to 86400, or null');
  }
  return value;
}

function checkClaims(value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('claims must be an object');
  for (const name of Object.keys(value)) {
    if (RESERVED_CLAIMS.has(name)) throw new TypeError(`claims may not set the reserved claim ${JSON.stringify(name)}`);
  }
  const json = JSON.stringify(value);
  if (json.length > 4096) throw new TypeError('claims are larger than 4 kB as JSON');
  return JSON.parse(json) as Record<string, unknown>;
}

function checkGrantTypes(value: unknown): GrantType[] {
  if (value === undefined) return ['client_credentials'];
  if (!Array.isArray(value) || value.some((v) => v !== 'client_credentials')) {
    throw new TypeError('grantTypes may only hold "client_credentials"');
  }
  return [...new Set(value as GrantType[])];
}

function checkDefaults(client: Omit<Client, 'createdAt' | 'updatedAt'>): void {
  for (const scope of client.defaultScopes) {
    if (!client.scopes.includes(scope)) throw new TypeError(`default scope ${JSON.stringify(scope)} is not among the client's scopes`);
  }
  if (client.defaultAudience !== null && !client.audiences.includes(client.defaultAudience)) {
    throw new TypeError("defaultAudience is not among the client's audiences");
  }
}

/**
 * Validates a registration and fills in defaults.
 *
 * @throws TypeError naming the first bad field.
 */
export function normalizeRegistration(input: ClientRegistration, generatedId: string): Omit<Client, 'createdAt' | 'updatedAt'> {
  if (input === null || typeof input !== 'object') throw new TypeError('client registration must be an object');
  const clientId = input.clientId ?? generatedId;
  if (!isClientId(clientId)) throw new TypeError('clientId must be 1 to 128 printable ASCII characters without spaces');
  const scopes = normalizeScopes(input.scopes, 'scopes');
  const audiences = checkAudiences(input.audiences);
  const client = {
    clientId,
    name: checkText(input.name, 'name', 200),
    scopes,
    defaultScopes: input.defaultScopes === undefined ? scopes : normalizeScopes(input.defaultScopes, 'defaultScopes'),
    audiences,
    defaultAudience:
      input.defaultAudience === undefined ? (audiences[0] as string)
        : input.defaultAudience === null ? null : checkText(input.defaultAudience, 'defaultAudience', 512),
    tokenLifetime: checkLifetime(input.tokenLifetime),
    grantTypes: checkGrantTypes(input.grantTypes),
    enabled: input.enabled ?? true,
    claims: checkClaims(input.claims),
  };
  if (typeof client.enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
  checkDefaults(client);
  return client;
}

/**
 * Applies an update to a client, validating the result as a whole.
 *
 * @throws TypeError naming the first bad field.
 */
export function applyClientUpdate(client: Client, update: ClientUpdate): Omit<Client, 'createdAt' | 'updatedAt'> {
  if (update === null || typeof update !== 'object') throw new TypeError('client update must be an object');
  const scopes = update.scopes === undefined ? client.scopes : normalizeScopes(update.scopes, 'scopes');
  const audiences = update.audiences === undefined ? client.audiences : checkAudiences(update.audiences);
  const next = {
    clientId: client.clientId,
    name: update.name === undefined ? client.name : checkText(update.name, 'name', 200),
    scopes,
    defaultScopes: update.defaultScopes === undefined
      ? client.defaultScopes.filter((s) => scopes.includes(s)) : normalizeScopes(update.defaultScopes, 'defaultScopes'),
    audiences,
    defaultAudience: update.defaultAudience === undefined
      ? (client.defaultAudience !== null && audiences.includes(client.defaultAudience) ? client.defaultAudience : null)
      : update.defaultAudience === null ? null : checkText(update.defaultAudience, 'defaultAudience', 512),
    tokenLifetime: update.tokenLifetime === undefined ? client.tokenLifetime : checkLifetime(update.tokenLifetime),
    grantTypes: update.grantTypes === undefined ? client.grantTypes : checkGrantTypes(update.grantTypes),
    enabled: update.enabled ?? client.enabled,
    claims: update.claims === undefined ? client.claims : checkClaims(update.claims),
  };
  if (typeof next.enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
  checkDefaults(next);
  return next;
}
