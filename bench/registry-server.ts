// express-m2m issuer in its own process over a registry the parent filled (bench/registry.ts):
// authorizationServer() at /oauth, default store options, on a SQLite file or PostgreSQL. It gets
// its first token from itself as soon as it listens and reports how long that took from the
// moment it began creating its database connection. Started through fork(); never imported.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type * as M2M from '../lib/index.js';
import { knexFor } from './registry-fixture.js';
import { basic, serveProcess, TOKEN_REQUEST_BODY } from './support.js';

/** What bench/registry.ts tells the child to start. */
export interface RegistryServerSpec {
  database: 'sqlite' | 'postgres';
  /** The SQLite file, or the PostgreSQL URL. */
  connection: string;
  tablePrefix: string;
  /** The client the first token is for. */
  clientId: string;
  clientSecret: string;
}

/** What the child reports. */
export interface RegistryServerInfo {
  tokenUrl: string;
  /** Milliseconds from the creation of the Knex instance to the first token's 200. */
  firstTokenMs: number;
}

// The compiled package, as users run it (see m2m-server.ts).
const { authorizationServer, createKnexStore } = (await import(new URL('../dist/lib/index.js', import.meta.url).href)) as typeof M2M;

serveProcess<RegistryServerSpec, RegistryServerInfo>(async (spec) => {
  const started = performance.now();
  const knex = knexFor(spec.database, spec.connection);
  const store = createKnexStore(knex, { tablePrefix: spec.tablePrefix });
  await store.migrate();
  const app = express();
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}/oauth`;
  app.use('/oauth', authorizationServer({ issuer, store }));
  const first = await fetch(`${issuer}/token`, {
    method: 'POST', body: TOKEN_REQUEST_BODY,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(spec.clientId, spec.clientSecret) },
  });
  if (first.status !== 200) throw new Error(`first token: ${first.status} ${await first.text()}`);
  await first.arrayBuffer().catch(() => undefined);
  const firstTokenMs = performance.now() - started;
  return {
    info: { tokenUrl: `${issuer}/token`, firstTokenMs },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.clients.flushUsage();
      await knex.destroy();
    },
  };
});
