/**
 * The issuer service of the example: the authorization server mounted in an ordinary Express app,
 * on a SQLite file that is created and migrated on first run, with a demo client.
 *
 *   npm run example                       # http://127.0.0.1:4000/oauth
 *   ISSUER_PORT=5000 M2M_SQLITE_FILE=/tmp/demo.sqlite npm run example
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import express from 'express';
import knexFactory from 'knex';
import { authorizationServer, createKnexStore } from '../lib/index.js';

const port = Number(process.env.ISSUER_PORT ?? 4000);
const host = process.env.ISSUER_HOST ?? '127.0.0.1';
const file = process.env.M2M_SQLITE_FILE ?? 'example/.data/issuer.sqlite';
const issuer = process.env.ISSUER_URL ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/oauth`;
const DEMO_CLIENT = 'archival-service';

mkdirSync(dirname(file), { recursive: true });
const knex = knexFactory({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true });
const store = createKnexStore(knex);
await store.migrate();

const app = express();
app.disable('x-powered-by');
const oauth = authorizationServer({ issuer, store });
oauth.events.on('token.issued', (e) => console.log(`[issuer] token issued to ${e.clientId} for ${e.scopes.join(' ')} (kid ${e.kid.slice(0, 8)}...)`));
oauth.events.on('client.authentication_failed', (e) => console.log(`[issuer] client authentication failed: ${e.reason}`));
oauth.events.on('internal_error', (e) => console.error('[issuer] internal error', e.error));
app.use('/oauth', oauth);
app.get('/healthz', (_req, res) => { res.json({ ok: true }); });
await oauth.ready();

const server = app.listen(port, host, () => {
  console.log(`[issuer] listening on ${issuer} (database ${file})`);
});

if (await store.clients.get(DEMO_CLIENT)) {
  console.log(`[issuer] demo client "${DEMO_CLIENT}" already exists; its secret was shown when it was created.`);
  console.log(`[issuer] for a new one: npx tsx lib/cli.ts clients rotate-secret ${DEMO_CLIENT} --database ${file}`);
} else {
  const { clientSecret } = await store.clients.create({
    clientId: DEMO_CLIENT, name: 'Archival service (demo)', scopes: ['reports:read'], audiences: ['https://reports.internal'],
  });
  console.log(`[issuer] created demo client "${DEMO_CLIENT}" with scope reports:read.`);
  console.log(`[issuer] its secret, shown this once: ${clientSecret}`);
  console.log('[issuer] get a token with Basic authentication:');
  console.log(`  curl -s -u '${DEMO_CLIENT}:${clientSecret}' -d grant_type=client_credentials ${issuer}/token`);
  console.log('[issuer] or with the secret in the form body:');
  console.log(`  curl -s -d grant_type=client_credentials -d client_id=${DEMO_CLIENT} -d client_secret=${clientSecret} ${issuer}/token`);
}

function stop(): void {
  console.log('[issuer] stopping');
  server.close(() => {
    void knex.destroy().then(() => process.exit(0));
  });
  server.closeAllConnections();
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
