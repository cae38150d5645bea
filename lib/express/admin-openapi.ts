/**
 * The OpenAPI 3.1 description of {@link adminApi}, served at `/openapi.json`. Its schemas are JSON
 * Schema 2020-12; the admin API tests check every real response against them.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const answer = (description: string, schema?: unknown) => (schema === undefined ? { description } : { description, content: json(schema) });

const ERRORS = {
  400: answer('Malformed request: bad JSON, unknown or repeated field, invalid value', ref('Error')),
  401: answer('No valid Bearer token', ref('Error')),
  403: answer('The token lacks the required scope', ref('Error')),
  404: answer('No such client, secret or key', ref('Error')),
  413: answer('The body is larger than 16 KiB', ref('Error')),
  415: answer('The body is not application/json', ref('Error')),
  503: answer('The store is unavailable; retry after Retry-After', ref('Error')),
};

const clientId = { name: 'clientId', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 128 } };
const strings = { type: 'array', items: { type: 'string' } };
const dateTime = { type: 'string', format: 'date-time' };
const nullableDate = { type: ['string', 'null'], format: 'date-time' };

const CLIENT_FIELDS = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  scopes: strings,
  defaultScopes: strings,
  audiences: strings,
  defaultAudience: { type: ['string', 'null'] },
  tokenLifetime: { type: ['integer', 'null'], minimum: 1, maximum: 86_400 },
  enabled: { type: 'boolean' },
  claims: { type: 'object' },
};

const SCHEMAS = {
  Error: {
    type: 'object', required: ['error', 'error_description'], additionalProperties: false,
    properties: { error: { type: 'string' }, error_description: { type: 'string' } },
  },
  Client: {
    type: 'object', additionalProperties: false,
    required: ['clientId', 'name', 'scopes', 'defaultScopes', 'audiences', 'defaultAudience', 'tokenLifetime', 'grantTypes', 'enabled', 'claims',
      'tokenEndpointAuthMethod', 'jwks', 'jwksUri', 'createdAt', 'updatedAt'],
    properties: {
      clientId: { type: 'string' }, ...CLIENT_FIELDS, grantTypes: strings,
      // How the client authenticates (null: either secret method), and a private_key_jwt client's public keys.
      tokenEndpointAuthMethod: { enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', null] },
      jwks: { type: ['object', 'null'] },
      jwksUri: { type: ['string', 'null'] },
      createdAt: dateTime, updatedAt: dateTime,
    },
  },
  ClientRegistration: {
    type: 'object', additionalProperties: false, required: ['name', 'scopes', 'audiences'],
    properties: {
      clientId: { type: 'string', minLength: 1, maxLength: 128 }, ...CLIENT_FIELDS,
      tokenEndpointAuthMethod: { enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] },
      jwks: { type: 'object', description: 'Public keys for private_key_jwt: no secret is issued' }, jwksUri: { type: 'string' },
    },
  },
  ClientUpdate: { type: 'object', additionalProperties: false, properties: { ...CLIENT_FIELDS, jwks: { type: 'object' }, jwksUri: { type: 'string' } } },
  SecretInfo: {
    type: 'object', additionalProperties: false, required: ['id', 'hint', 'createdAt', 'expiresAt', 'lastUsedAt'],
    properties: { id: { type: 'string' }, hint: { type: 'string' }, createdAt: dateTime, expiresAt: nullableDate, lastUsedAt: nullableDate },
  },
  IssuedSecret: {
    type: 'object', additionalProperties: false, required: ['clientId', 'clientSecret', 'secret'],
    properties: { clientId: { type: 'string' }, clientSecret: { type: 'string', description: 'Shown once, never again' }, secret: ref('SecretInfo') },
  },
  AuditEntry: {
    type: 'object', additionalProperties: false, required: ['id', 'at', 'actor', 'action', 'clientId', 'target', 'details'],
    properties: {
      id: { type: 'integer' }, at: dateTime, actor: { type: 'string' },
      action: {
        enum: ['client.created', 'client.updated', 'client.disabled', 'client.enabled', 'client.deleted', 'client.tokens_revoked',
          'secret.created', 'secret.rotated', 'secret.revoked', 'key.created', 'key.revoked', 'key.sealed'],
      },
      clientId: { type: ['string', 'null'] }, target: { type: 'string' }, details: { type: 'object' },
    },
  },
  Key: {
    type: 'object', additionalProperties: false, required: ['kid', 'alg', 'state', 'createdAt', 'activatesAt', 'retention', 'publicJwk'],
    properties: {
      kid: { type: 'string' }, alg: { type: 'string' }, state: { enum: ['pending', 'active', 'retired-but-published', 'expired'] },
      createdAt: dateTime, activatesAt: dateTime, retention: { type: 'integer' }, publicJwk: { type: 'object' },
    },
  },
};

const body = (schema: unknown, required = true) => ({ required, content: json(schema) });
const ok = (schema: unknown) => ({ 200: answer('OK', schema) });
const object = (properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties });
const security = (scope: 'read' | 'admin') => [{ bearer: [scope === 'read' ? 'm2m:read' : 'm2m:admin'] }];
const operation = (scope: 'read' | 'admin', summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ summary, security: security(scope), ...extra, responses: { ...responses, ...ERRORS } });

/** The admin API's OpenAPI 3.1 document. */
export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'express-m2m admin API', version: '1' },
  components: {
    schemas: SCHEMAS,
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
  },
  paths: {
    '/clients': {
      get: operation('read', 'List clients', ok(object({ clients: { type: 'array', items: ref('Client') } }))),
      post: operation('admin', 'Register a client: with a first secret (returned once), or with its public keys (private_key_jwt)', {
        201: answer('Created', {
          type: 'object', additionalProperties: false, required: ['client'],
          properties: { client: ref('Client'), clientId: { type: 'string' }, clientSecret: { type: 'string' }, secret: ref('SecretInfo') },
        }),
        409: answer('A client with this id exists', ref('Error')),
      }, { requestBody: body(ref('ClientRegistration')) }),
    },
    '/clients/{clientId}': {
      parameters: [clientId],
      get: operation('read', 'Show a client and its secrets (metadata only)', ok(object({ client: ref('Client'), secrets: { type: 'array', items: ref('SecretInfo') } }))),
      patch: operation('admin', 'Change a client', { ...ok(object({ client: ref('Client') })), 409: answer('The change does not fit the client\'s authentication method', ref('Error')) }, { requestBody: body(ref('ClientUpdate')) }),
      delete: operation('admin', 'Delete a client and its secrets', { 204: answer('Deleted') }),
    },
    '/clients/{clientId}/disable': { parameters: [clientId], post: operation('admin', 'Disable a client', ok(object({ client: ref('Client') }))) },
    '/clients/{clientId}/enable': { parameters: [clientId], post: operation('admin', 'Enable a client', ok(object({ client: ref('Client') }))) },
    '/clients/{clientId}/secrets': {
      parameters: [clientId],
      post: operation('admin', 'Add a secret (returned once); older ones expire after gracePeriod seconds', {
        201: answer('Created', ref('IssuedSecret')), 409: answer('The client authenticates with keys, not secrets', ref('Error')),
      }, {
        requestBody: body({ type: 'object', additionalProperties: false, properties: { gracePeriod: { type: 'integer', minimum: 0, maximum: 2_592_000 } } }, false),
      }),
    },
    '/clients/{clientId}/secrets/{secretId}': {
      parameters: [clientId, { name: 'secretId', in: 'path', required: true, schema: { type: 'string' } }],
      delete: operation('admin', 'Revoke one secret at once', { 204: answer('Revoked') }),
    },
    '/keys': { get: operation('read', 'List live signing keys with their states', ok(object({ keys: { type: 'array', items: ref('Key') } }))) },
    '/keys/rotate': {
      post: operation('admin', 'Add a key that signs after activateAfter seconds', { 201: answer('Created', object({ key: ref('Key') })) }, {
        requestBody: body({
          type: 'object', additionalProperties: false,
          properties: { alg: { enum: ['RS256', 'PS256', 'ES256'] }, activateAfter: { type: 'integer', minimum: 0, maximum: 2_592_000 } },
        }, false),
      }),
    },
    '/audit': {
      get: operation('read', 'The audit trail, oldest first', ok(object({ entries: { type: 'array', items: ref('AuditEntry') } })), {
        parameters: [
          { name: 'clientId', in: 'query', schema: { type: 'string' } },
          { name: 'since', in: 'query', schema: dateTime },
          { name: 'after', in: 'query', description: 'Entries with a higher id (paging)', schema: { type: 'integer' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        ],
      }),
    },
    '/keys/{kid}/revoke': {
      parameters: [{ name: 'kid', in: 'path', required: true, schema: { type: 'string' } }],
      post: operation('admin', 'Withdraw a key at once (compromise)', ok(object({ kid: { type: 'string' }, revoked: { const: true } }))),
    },
  },
} as const;
