import { SIGNING_ALGORITHMS } from '../core/keys.js';
import type { IssuerSettings } from './issuer-options.js';

/**
 * The issuer's RFC 8414 §2 metadata: its endpoints, and for each endpoint that authenticates
 * clients the methods it takes (the same three everywhere; `private_key_jwt` only where a replayed
 * assertion can be refused, which needs the store's used assertions) with their algorithms, which
 * RFC 8414 requires wherever `private_key_jwt` is listed. The revocation endpoint is listed only
 * when the store keeps a revocation record.
 */
export function metadataDocument(settings: Pick<IssuerSettings, 'issuer' | 'store' | 'clientAssertion'>): Record<string, unknown> {
  const { issuer, store } = settings;
  const keyed = store.usedAssertions !== undefined;
  const methods = keyed ? ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] : ['client_secret_basic', 'client_secret_post'];
  /** `<endpoint>_auth_methods_supported` and, with private_key_jwt, `<endpoint>_auth_signing_alg_values_supported`. */
  const auth = (endpoint: string): Record<string, unknown> => ({
    [`${endpoint}_auth_methods_supported`]: [...methods],
    ...(keyed ? { [`${endpoint}_auth_signing_alg_values_supported`]: [...settings.clientAssertion.algorithms] } : {}),
  });
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks.json`,
    grant_types_supported: ['client_credentials'],
    ...auth('token_endpoint'),
    ...(store.revocations === undefined ? {} : { revocation_endpoint: `${issuer}/revoke`, ...auth('revocation_endpoint') }),
    introspection_endpoint: `${issuer}/introspect`,
    ...auth('introspection_endpoint'),
    response_types_supported: [],
    // Tokens may be signed with any supported algorithm after a rotation.
    access_token_signing_alg_values_supported: [...SIGNING_ALGORITHMS],
  };
}
