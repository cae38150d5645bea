// node-oidc-provider (v9) in its own process, configured for the client credentials grant only,
// issuing RFC 9068 JWT access tokens for one resource server. Mounted as `provider.callback()` in a
// plain node:http server (no Express in front of it: the fairest setup for it). Started by
// bench/issuer.ts through fork(); never imported.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';
import { AUDIENCE, SCOPE, TOKEN_LIFETIME, serveChild, type BenchAlgorithm } from './support.js';

/** A private JWK for the algorithm: P-256 for ES256, RSA 2048 for RS256 (as express-m2m generates). */
function signingJwk(alg: BenchAlgorithm): Record<string, unknown> {
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: randomBytes(16).toString('base64url') };
}

serveChild(async (spec) => {
  const clientId = randomUUID();
  // The same length as an express-m2m secret (56 characters), so the requests are the same size.
  const clientSecret = randomBytes(42).toString('base64url');

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPE,
      // The JWKS holds one key, of the algorithm under test; the default (RS256) would need another.
      id_token_signed_response_alg: spec.alg,
    }],
    scopes: [SCOPE],
    jwks: { keys: [signingJwk(spec.alg)] },
    // Not used by this grant; set so the provider does not generate or warn about them.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { ClientCredentials: TOKEN_LIFETIME },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: SCOPE,
          audience: AUDIENCE,
          accessTokenTTL: TOKEN_LIFETIME,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: spec.alg } },
        }),
      },
    },
  });
  server.on('request', provider.callback());

  return {
    tokenUrl: `${issuer}/token`,
    clientId,
    clientSecret,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
});
