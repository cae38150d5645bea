import { ClientAuthMethodError } from '../errors.js';
import { checkClientJwks, checkClientJwksUri, type ClientJwks, type ClientJwksInput } from './client-jwks.js';
import { InvalidOptionError } from './options.js';
import { normalizeScopes } from './scope.js';
import { RESERVED_CLAIMS } from './token.js';

/** Grant types a client may be allowed. Only the client credentials grant exists today. */
export type GrantType = 'client_credentials';

/**
 * How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`):
 * with a secret in the Authorization header (RFC 6749 §2.3.1) or in the body, or with a JWT
 * signed by its private key (RFC 7523 §2.2).
 */
export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** Every {@link TokenEndpointAuthMethod}. */
export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];

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
  /**
   * The one way the client may authenticate, fixed at registration: `private_key_jwt` for a
   * client registered with `jwks` or `jwksUri`, the secret method it was registered with, or null:
   * a client with secrets registered without a method, as every client registered before methods
   * were recorded, may use either `client_secret_basic` or `client_secret_post`.
   */
  tokenEndpointAuthMethod: TokenEndpointAuthMethod | null;
  /** The public keys of a `private_key_jwt` client registered with a key set, else null. */
  jwks: ClientJwks | null;
  /** Where a `private_key_jwt` client publishes its public keys, else null. */
  jwksUri: string | null;
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
  /**
   * How the client authenticates, fixed for its life. Default: `private_key_jwt` when `jwks` or
   * `jwksUri` is given (see {@link ClientPublicKeys}), else either secret method (see
   * {@link Client.tokenEndpointAuthMethod}).
   */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod;
}

/** The public keys of a `private_key_jwt` client (RFC 7523 §2.2): one of `jwks` and `jwksUri`. */
export interface ClientPublicKeys {
  /**
   * The client's public keys, for `private_key_jwt` (RFC 7523): no secret is issued. RSA (2048 to
   * 8192 bits) or EC (P-256, P-384, P-521) public keys only, at most 10, unique `kid`s. Register
   * the next key beside the current one to rotate without downtime. Not with `jwksUri`.
   */
  jwks?: ClientJwksInput | undefined;
  /**
   * Where the client publishes its public keys, for `private_key_jwt`: https (http only on a
   * loopback host), fetched through jwks-rsa. No secret is issued. Not with `jwks`.
   */
  jwksUri?: string | undefined;
}

/** A registration with public keys: a `private_key_jwt` client, which gets no secret. */
export type KeyClientRegistration = ClientRegistration & ({ jwks: ClientJwksInput; jwksUri?: undefined } | { jwksUri: string; jwks?: undefined });

/**
 * Fields an admin may change after registration. `tokenEndpointAuthMethod` cannot change; `jwks`
 * or `jwksUri` (one replaces the other, to rotate keys) only for a `private_key_jwt` client.
 */
export type ClientUpdate = Partial<Omit<ClientRegistration, 'clientId'>> & ClientPublicKeys;

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

type Authentication = Pick<Client, 'tokenEndpointAuthMethod' | 'jwks' | 'jwksUri'>;

/** The key source of a private_key_jwt client, when `jwks` or `jwksUri` is given. */
function checkKeySource(jwks: unknown, jwksUri: unknown): Pick<Client, 'jwks' | 'jwksUri'> | undefined {
  if (jwks !== undefined && jwksUri !== undefined) throw new InvalidOptionError('jwksUri', 'give jwks or jwksUri, not both');
  if (jwks !== undefined) return { jwks: checkClientJwks(jwks), jwksUri: null };
  if (jwksUri !== undefined) return { jwks: null, jwksUri: checkClientJwksUri(jwksUri) };
  return undefined;
}

function checkAuthentication(input: ClientRegistration & ClientPublicKeys): Authentication {
  const method = input.tokenEndpointAuthMethod;
  if (method !== undefined && !TOKEN_ENDPOINT_AUTH_METHODS.includes(method)) {
    throw new InvalidOptionError('tokenEndpointAuthMethod', 'tokenEndpointAuthMethod must be client_secret_basic, client_secret_post or private_key_jwt');
  }
  const keys = checkKeySource(input.jwks, input.jwksUri);
  if (keys === undefined) {
    if (method === 'private_key_jwt') throw new InvalidOptionError('jwks', 'a private_key_jwt client needs jwks or jwksUri');
    return { tokenEndpointAuthMethod: method ?? null, jwks: null, jwksUri: null };
  }
  if (method !== undefined && method !== 'private_key_jwt') {
    throw new InvalidOptionError('tokenEndpointAuthMethod', `jwks and jwksUri are for private_key_jwt clients, not ${method}`);
  }
  return { tokenEndpointAuthMethod: 'private_key_jwt', ...keys };
}

/** The method and keys after an update; the method never changes. */
function updateAuthentication(client: Client, update: ClientUpdate): Authentication {
  const { clientId, tokenEndpointAuthMethod: method } = client;
  if (update.tokenEndpointAuthMethod !== undefined && update.tokenEndpointAuthMethod !== method) {
    throw new ClientAuthMethodError(clientId, method, 'tokenEndpointAuthMethod is fixed at registration: register a new client to change it');
  }
  const keys = checkKeySource(update.jwks, update.jwksUri);
  if (keys === undefined) return { tokenEndpointAuthMethod: method, jwks: client.jwks, jwksUri: client.jwksUri };
  if (method !== 'private_key_jwt') {
    throw new ClientAuthMethodError(clientId, method, 'only a private_key_jwt client has jwks or a jwksUri; this one authenticates with a secret');
  }
  return { tokenEndpointAuthMethod: method, ...keys };
}

/**
 * Validates a registration and fills in defaults.
 *
 * @throws TypeError naming the first bad field.
 */
export function normalizeRegistration(input: ClientRegistration & ClientPublicKeys, generatedId: string): Omit<Client, 'createdAt' | 'updatedAt'> {
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
    ...checkAuthentication(input),
  };
  if (typeof client.enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
  checkDefaults(client);
  return client;
}

/**
 * Applies an update to a client, validating the result as a whole.
 *
 * @throws TypeError naming the first bad field; {@link ClientAuthMethodError} for a change that
 *   does not fit the client's authentication method.
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
    ...updateAuthentication(client, update),
  };
  if (typeof next.enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
  checkDefaults(next);
  return next;
}
