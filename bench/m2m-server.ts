// express-m2m issuer in its own process: an Express 5 app with authorizationServer() at /oauth over
// a SQLite file, one client; with `otel`, an OpenTelemetry SDK installed first (bench/otel-sdk.ts).
// Started by bench/issuer.ts through fork(); never imported.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import knexFactory from 'knex';
import type * as M2M from '../lib/index.js';
import { installOtelSdk } from './otel-sdk.js';
import { AUDIENCE, SCOPE, serveChild } from './support.js';

// The compiled package (npm run build), as users run it: through tsx the TypeScript source would
// carry esbuild's per-closure helpers, which cost the event loop a few percent.
const { authorizationServer, createKnexStore } = (await import(new URL('../dist/lib/index.js', import.meta.url).href)) as typeof M2M;

serveChild(async (spec) => {
  if (spec.dbFile === undefined) throw new TypeError('express-m2m needs dbFile');
  if (spec.otel) installOtelSdk();
  const knex = knexFactory({ client: 'sqlite3', connection: { filename: spec.dbFile }, useNullAsDefault: true });
  const store = createKnexStore(knex);
  await store.migrate();
  const { clientId, clientSecret } = await store.clients.create({ name: 'bench', scopes: [SCOPE], audiences: [AUDIENCE] });

  const app = express();
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}/oauth`;
  // The issuer URL holds the port, so the router is mounted once the server listens.
  // Default options, brute-force limits included: what a user gets.
  const router = authorizationServer({ issuer, store, signingAlgorithm: spec.alg });
  app.use('/oauth', router);
  await router.ready();

  return {
    tokenUrl: `${issuer}/token`,
    clientId,
    clientSecret,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Requests cut off mid-flight (a stop during load) may still hold or await the connection;
      // let them finish (bounded) so that destroy() does not abort them noisily.
      const pool = (knex.client as { pool?: { numUsed(): number; numPendingAcquires(): number } }).pool;
      for (let i = 0; i < 100 && pool && pool.numUsed() + pool.numPendingAcquires() > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await store.clients.flushUsage();
      await knex.destroy();
    },
  };
});
