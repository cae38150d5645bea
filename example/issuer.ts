/**
 * The issuer service of the example: the authorization server mounted in an ordinary Express app,
 * on a SQLite file that is created and migrated on first run, with a demo client.
 *
 *   npm run example                 # all three services (example/main.ts)
 *   npx tsx example/issuer.ts       # this one alone, at http://127.0.0.1:4000/oauth
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import knexFactory from 'knex';
import { authorizationServer, createKnexStore } from '../lib/index.js';
import { DEMO_CLIENT, REPORTS_AUDIENCE, exampleConfig, type ExampleConfig } from './config.js';
import { ensureSignerClient } from './archive-signer.js';
import { ensureOpsClient, mountAdminApi, prometheusMetrics } from './operations.js';

/** A running example service. */
export interface Service {
  url: string;
  close(): Promise<void>;
}

function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
  });
}

/** Closes a server and its keep-alive connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Starts the issuer; creates the demo client (and hands its secret to the job's secret file) when missing. */
export async function startIssuerService(config: ExampleConfig, log = console.log): Promise<Service & { issuer: string }> {
  const issuer = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.issuerPort}/oauth`;
  mkdirSync(dirname(config.databaseFile), { recursive: true });
  const knex = knexFactory({
    client: 'sqlite3', connection: { filename: config.databaseFile }, useNullAsDefault: true,
    // SQLite leaves foreign keys off unless asked; the store relies on them to delete a client's secrets with it.
    pool: { afterCreate: (conn: { run(sql: string, done: (err: Error | null) => void): void }, done: (err: Error | null) => void) => conn.run('PRAGMA foreign_keys = ON', done) },
  });
  const store = createKnexStore(knex);
  await store.migrate();

  const app = express();
  app.disable('x-powered-by');
  const oauth = authorizationServer({ issuer, store });
  oauth.events.on('token.issued', (e) => log(`[issuer] token issued to ${e.clientId} for ${e.scopes.join(' ')}, valid ${e.expiresIn} s`));
  oauth.events.on('client.authentication_failed', (e) => log(`[issuer] client authentication failed: ${e.reason}`));
  oauth.events.on('internal_error', (e) => console.error('[issuer] internal error', e.error));
  app.use('/oauth', oauth);
  app.get(oauth.metadataPath, oauth.metadata);
  app.get('/healthz', (_req, res) => { res.json({ ok: true }); });
  // Operations: Prometheus metrics, and the admin API behind the package's own guard.
  app.get('/metrics', prometheusMetrics());
  mountAdminApi(app, store, issuer);
  await oauth.ready();
  const server = await listen(app, config.issuerPort, config.host);
  log(`[issuer] listening on ${issuer} (database ${config.databaseFile})`);

  if (await store.clients.get(DEMO_CLIENT)) {
    log(`[issuer] demo client "${DEMO_CLIENT}" already exists; its secret was shown when it was created.`);
    log(`[issuer] for a new one: npx tsx lib/cli/main.ts clients rotate-secret ${DEMO_CLIENT} --database ${config.databaseFile}`);
  } else {
    const { clientSecret } = await store.clients.create({
      clientId: DEMO_CLIENT, name: 'Archival service (demo)', scopes: ['reports:read'], audiences: [REPORTS_AUDIENCE],
      tokenLifetime: Math.max(1, Math.round(config.tokenLifetime)),
    });
    // The job reads its secret from a file only its user can read, as it would from a mounted
    // secret; the database keeps only the hash.
    mkdirSync(dirname(config.jobSecretFile), { recursive: true });
    writeFileSync(config.jobSecretFile, `${clientSecret}\n`, { mode: 0o600 });
    log(`[issuer] created demo client "${DEMO_CLIENT}" with scope reports:read, tokens valid ${config.tokenLifetime} s.`);
    log(`[issuer] its secret, shown this once: ${clientSecret}`);
    log('[issuer] get a token with Basic authentication:');
    log(`  curl -s -u '${DEMO_CLIENT}:${clientSecret}' -d grant_type=client_credentials ${issuer}/token`);
    log('[issuer] or with the secret in the form body:');
    log(`  curl -s -d grant_type=client_credentials -d client_id=${DEMO_CLIENT} -d client_secret=${clientSecret} ${issuer}/token`);
  }

  await ensureSignerClient(store, config, log);
  await ensureOpsClient(store, config, log);
  log(`[issuer] metrics for Prometheus at ${new URL(issuer).origin}/metrics`);

  return {
    url: `http://${config.host}:${config.issuerPort}`,
    issuer,
    async close() {
      await closeServer(server);
      await store.clients.flushUsage();
      await knex.destroy();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const service = await startIssuerService(exampleConfig());
  const stop = () => {
    console.log('[issuer] stopping');
    void service.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
