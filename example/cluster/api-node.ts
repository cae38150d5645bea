/**
 * One reports API instance of the cluster demo: `GET /reports` needs `reports:read`. It trusts the
 * issuer at ISSUER_URL (the load balancer) and, unless JWKS_URI is set, finds its JWKS through the
 * issuer's metadata, so any issuer instance behind the balancer serves it the keys.
 *
 * Started by example/cluster/main.ts. Environment: ISSUER_URL, API_NAME; optionally JWKS_URI
 * (instead of discovery) and, in seconds, JWKS_COOLDOWN, JWKS_CACHE_MAX_AGE, JWKS_SERVE_STALE (the
 * guard's options of those names; the defaults when unset); LISTER_CLIENT_ID and LISTER_SECRET
 * turn the guard's `revocations` on (the list read with that client's tokens, every
 * REVOCATION_INTERVAL seconds, default 10). Prints `listening` with its port.
 * Each answer names the instance, the token's kid and the token's fingerprint, so that callers can
 * tell which instance served them and which token they presented. Answers `stats` with its
 * answers by status and its health (memory, unhandled rejections).
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  createResourceServer, REVOCATIONS_SCOPE, tokenClient, type AuthenticatedRequest, type ResourceServerOptions,
} from '../../lib/index.js';
import { REPORTS_AUDIENCE, fingerprint, onCommands, requireEnv, send, watchHealth } from './shared.js';

const health = watchHealth();
const name = requireEnv('API_NAME');
const options: ResourceServerOptions = { issuer: requireEnv('ISSUER_URL'), audience: REPORTS_AUDIENCE };
if (process.env.JWKS_URI) options.jwksUri = process.env.JWKS_URI;
if (process.env.JWKS_COOLDOWN) options.jwksCooldown = Number(process.env.JWKS_COOLDOWN);
if (process.env.JWKS_CACHE_MAX_AGE) options.jwksCacheMaxAge = Number(process.env.JWKS_CACHE_MAX_AGE);
if (process.env.JWKS_SERVE_STALE) options.jwksServeStale = Number(process.env.JWKS_SERVE_STALE);
if (process.env.LISTER_CLIENT_ID) {
  const lister = tokenClient({
    issuer: options.issuer as string, clientId: process.env.LISTER_CLIENT_ID, clientSecret: requireEnv('LISTER_SECRET'), scope: REVOCATIONS_SCOPE,
  });
  options.revocations = { fetch: lister.fetch, refreshInterval: Number(process.env.REVOCATION_INTERVAL ?? 10) };
}
const guard = createResourceServer(options);

const answers: Record<number, number> = {};
const app = express();
app.disable('x-powered-by');
app.use((_req, res, next) => {
  res.once('finish', () => { answers[res.statusCode] = (answers[res.statusCode] ?? 0) + 1; });
  next();
});
app.get('/reports', guard.requireScope('reports:read'), (req, res) => {
  const { auth } = req as AuthenticatedRequest;
  res.json({ api: name, clientId: auth.clientId, kid: auth.header.kid, token: fingerprint(auth.token), reports: [] });
});
const server = app.listen(0, '127.0.0.1');
await new Promise<void>((resolve, reject) => { server.once('listening', resolve).once('error', reject); });
send({ event: 'listening', port: (server.address() as AddressInfo).port });

function stop(): void {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
onCommands((command) => {
  if (command.cmd === 'stats') send({ event: 'stats', answers, health: health() });
}, stop);
