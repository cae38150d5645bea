/**
 * One reports API instance of the cluster demo: `GET /reports` needs `reports:read`. It trusts the
 * issuer at ISSUER_URL (the load balancer) and finds its JWKS through the issuer's metadata, so
 * any issuer instance behind the balancer serves it the keys.
 *
 * Started by example/cluster/main.ts. Environment: ISSUER_URL, API_NAME. Prints `listening` with
 * its port. Each answer names the instance, the token's kid and the token's fingerprint, so that
 * callers can tell which instance served them and which token they presented.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createResourceServer, type AuthenticatedRequest } from '../../lib/index.js';
import { REPORTS_AUDIENCE, fingerprint, onCommands, requireEnv, send } from './shared.js';

const name = requireEnv('API_NAME');
const guard = createResourceServer({ issuer: requireEnv('ISSUER_URL'), audience: REPORTS_AUDIENCE });

const app = express();
app.disable('x-powered-by');
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
onCommands(() => {}, stop);
