import express from 'express';
import {
  authorizationServer, createKnexStore, type AuthorizationServerOptions, type KnexStore, type KnexStoreOptions,
} from '../../lib/index.js';
import { sqliteDatabase, type TestDatabase } from './db.js';
import { listen, type Listening } from './http.js';

/** A running issuer on a loopback port over a fresh database. */
export interface TestIssuer {
  url: string;
  issuer: string;
  tokenUrl: string;
  store: KnexStore;
  db: TestDatabase;
  server: Listening;
  as: ReturnType<typeof authorizationServer>;
  close(): Promise<void>;
}

/**
 * Starts an Express app with the authorization server mounted at /oauth, over `db` (default: a
 * fresh SQLite file), its store made with `storeOptions`.
 */
export async function startIssuer(
  options: Partial<Omit<AuthorizationServerOptions, 'store' | 'issuer'>> = {},
  db: TestDatabase = sqliteDatabase(),
  storeOptions: Omit<KnexStoreOptions, 'tablePrefix'> = {},
): Promise<TestIssuer> {
  const store = createKnexStore(db.knex, { tablePrefix: db.prefix, ...(options.clock ? { clock: options.clock } : {}), ...storeOptions });
  await store.migrate();
  const app = express();
  // The issuer URL must be known before mounting; listen first on a placeholder router.
  let mounted: express.Router = express.Router();
  app.use('/oauth', (req, res, next) => mounted(req, res, next));
  const server = await listen(app);
  const issuer = `${server.url}/oauth`;
  const as = authorizationServer({ issuer, store, ...options });
  mounted = as;
  return {
    url: server.url, issuer, tokenUrl: `${issuer}/token`, store, db, server, as,
    async close() {
      await server.close();
      await store.clients.flushUsage();
      await db.destroy();
    },
  };
}
