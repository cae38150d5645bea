/**
 * The operations side of the example issuer: Prometheus metrics at `/metrics` (the package records
 * through @opentelemetry/api; the host installs the SDK and an exporter, as here), and the admin
 * API at `/admin`, protected by the package's own guard, called by an "ops console" client with a
 * client credentials token of its own.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type express from 'express';
import { adminApi, createResourceServer, tokenClient, type KnexStore } from '../lib/index.js';
import type { ExampleConfig } from './config.js';

/** The audience of the admin API, and the client that provisions through it. */
export const ADMIN_AUDIENCE = 'https://auth.internal/admin';
export const OPS_CLIENT = 'ops-console';

/** Installs the OpenTelemetry metrics SDK with a Prometheus exporter; returns the `/metrics` handler. */
export function prometheusMetrics(): express.RequestHandler {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  return (req, res) => { exporter.getMetricsRequestHandler(req, res); };
}

/** Mounts the admin API at `/admin`: tokens from this issuer, for {@link ADMIN_AUDIENCE}. */
export function mountAdminApi(app: express.Express, store: KnexStore, issuer: string): void {
  const guard = createResourceServer({ issuer, audience: ADMIN_AUDIENCE });
  app.use('/admin', adminApi({ store, resourceServer: guard }));
}

/** Creates the ops client on first run, handing its secret to a file as for the job. */
export async function ensureOpsClient(store: KnexStore, config: ExampleConfig, log = console.log): Promise<void> {
  if (await store.clients.get(OPS_CLIENT)) return;
  const { clientSecret } = await store.clients.create({
    clientId: OPS_CLIENT, name: 'Ops console (demo)', scopes: ['m2m:read', 'm2m:admin'], audiences: [ADMIN_AUDIENCE],
  });
  mkdirSync(dirname(config.opsSecretFile), { recursive: true });
  writeFileSync(config.opsSecretFile, `${clientSecret}\n`, { mode: 0o600 });
  log(`[issuer] created the ops client "${OPS_CLIENT}" (m2m:read m2m:admin) for the admin API at /admin`);
}

/** One admin call made with a token: the registered clients. */
export async function listClientsAsOps(config: ExampleConfig, issuer: string, log = console.log): Promise<void> {
  const ops = tokenClient({
    issuer, clientId: OPS_CLIENT, clientSecret: readFileSync(config.opsSecretFile, 'utf8').trim(), scope: 'm2m:read', audience: ADMIN_AUDIENCE,
  });
  const res = await ops.fetch(`${new URL(issuer).origin}/admin/clients`);
  if (res.status !== 200) throw new Error(`GET /admin/clients answered ${res.status}`);
  const { clients } = await res.json() as { clients: { clientId: string; enabled: boolean }[] };
  log(`[ops] GET /admin/clients with a token: ${clients.map((c) => `${c.clientId}${c.enabled ? '' : ' (disabled)'}`).join(', ')}`);
}
