/**
 * The reports API of the example: an ordinary Express app whose routes are protected by scope.
 * It trusts tokens from the example issuer, found through the issuer's metadata.
 *
 *   npx tsx example/reports-api.ts   # alone, at http://127.0.0.1:4001 (the issuer must be running)
 */
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createResourceServer, type AuthenticatedRequest } from '../lib/index.js';
import { REPORTS_AUDIENCE, exampleConfig, type ExampleConfig } from './config.js';
import { closeServer, type Service } from './issuer.js';

/** Starts the reports API: `GET /reports` needs `reports:read`, `POST /reports` needs `reports:write`. */
export async function startReportsApi(config: ExampleConfig, issuer: string, log = console.log): Promise<Service> {
  const guard = createResourceServer({ issuer, audience: REPORTS_AUDIENCE });
  const reports = [{ id: 1, title: 'October close', rows: 1204 }, { id: 2, title: 'November close', rows: 1311 }];

  const app = express();
  app.disable('x-powered-by');
  app.get('/reports', guard.requireScope('reports:read'), (req, res) => {
    log(`[reports] GET /reports by ${(req as AuthenticatedRequest).auth.clientId}`);
    res.json({ reports });
  });
  app.post('/reports', guard.requireScope('reports:write'), express.json(), (req, res) => {
    const report = { id: reports.length + 1, title: String((req.body as { title?: unknown }).title ?? 'untitled'), rows: 0 };
    reports.push(report);
    res.status(201).json(report);
  });
  app.get('/healthz', (_req, res) => { res.json({ ok: true }); });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.reportsPort, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.reportsPort}`;
  log(`[reports] listening on ${url} (trusting ${issuer}, audience ${REPORTS_AUDIENCE})`);
  return { url, close: () => closeServer(server) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = exampleConfig();
  const service = await startReportsApi(config, process.env.ISSUER_URL ?? `http://127.0.0.1:${config.issuerPort}/oauth`);
  const stop = () => { void service.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
