/**
 * The example's secretless job: `archive-signer` holds a private key instead of a secret and
 * authenticates with signed client assertions (private_key_jwt, RFC 7523), the recommended way.
 * The issuer knows only its public key. The job reads the reports once, then gives its token back
 * (RFC 7009 revocation) since it is done long before the token expires.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { tokenClient, type KnexStore } from '../lib/index.js';
import { REPORTS_AUDIENCE, type ExampleConfig } from './config.js';

/** The secretless client of the example. */
export const SIGNER_CLIENT = 'archive-signer';
const KID = 'archive-signer-1';

/** The job's private key: made on first run and kept in a file only its user can read, as a mounted key would be. */
function signerKey(config: ExampleConfig): KeyObject {
  if (existsSync(config.signerKeyFile)) return createPrivateKey(readFileSync(config.signerKeyFile, 'utf8'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  mkdirSync(dirname(config.signerKeyFile), { recursive: true });
  writeFileSync(config.signerKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return privateKey;
}

/** Registers `archive-signer` with its public key when missing (the issuer's side). */
export async function ensureSignerClient(store: KnexStore, config: ExampleConfig, log: (line: string) => void): Promise<void> {
  if (await store.clients.get(SIGNER_CLIENT)) return;
  const publicJwk = createPublicKey(signerKey(config)).export({ format: 'jwk' });
  await store.clients.create({
    clientId: SIGNER_CLIENT, name: 'Archive signer (secretless demo)', scopes: ['reports:read'], audiences: [REPORTS_AUDIENCE],
    jwks: { keys: [{ ...publicJwk, kid: KID, alg: 'ES256', use: 'sig' }] },
  });
  log(`[issuer] created secretless client "${SIGNER_CLIENT}" (private_key_jwt): the issuer holds its public key only`);
}

/** Runs the secretless job once: a read with a token got by a signed assertion, then the token given back. */
export async function runSignerJob(config: ExampleConfig, issuer: string, reportsUrl: string, log = console.log): Promise<void> {
  const signer = tokenClient({
    issuer, clientId: SIGNER_CLIENT, privateKey: signerKey(config), keyId: KID, scope: 'reports:read', audience: REPORTS_AUDIENCE,
  });
  const res = await signer.fetch(`${reportsUrl}/reports`);
  if (res.status !== 200) throw new Error(`GET /reports answered ${res.status} to ${SIGNER_CLIENT}`);
  const body = await res.json() as { reports: unknown[] };
  log(`[signer] GET /reports succeeded with a token got by a signed assertion (no secret anywhere), ${body.reports.length} reports`);
  await signer.revoke();
  log('[signer] done early: token given back to the issuer (POST /revoke)');
}
