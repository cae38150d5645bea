/**
 * One issuer instance of the cluster demo: the authorization server in an Express app, on the
 * shared PostgreSQL database, with its brute-force counters in the shared Redis. Every instance is
 * configured with the same issuer URL, the load balancer's, as it would be behind a real one.
 *
 * Started by example/cluster/main.ts. Environment: DATABASE_URL, TABLE_PREFIX, ISSUER_URL,
 * REDIS_URL, REDIS_PREFIX. Prints `listening` (with its port) and answers `stats` with the tokens it
 * issued, by client and by kid. SIGTERM stops it gracefully: no new connections, requests in
 * flight are answered, then it exits 0.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { authorizationServer, createKnexStore } from '../../lib/index.js';
import { onCommands, requireEnv, send } from './shared.js';

const issuer = requireEnv('ISSUER_URL');
const knex = knexFactory({ client: 'pg', connection: requireEnv('DATABASE_URL'), pool: { min: 0, max: 5 } });
const store = createKnexStore(knex, { tablePrefix: requireEnv('TABLE_PREFIX') });
// Every instance runs the migrations when it starts; on an up-to-date database they do nothing.
await store.migrate();
const redis = new Redis(requireEnv('REDIS_URL'), { maxRetriesPerRequest: 1 });

const oauth = authorizationServer({
  issuer,
  store,
  // Short, so that a rotated key reaches every instance within a second.
  keyCacheTtl: 1,
  rateLimit: { redis, keyPrefix: `${requireEnv('REDIS_PREFIX')}rl` },
});
const issued = { byClient: {} as Record<string, number>, byKid: {} as Record<string, number> };
oauth.events.on('token.issued', (e) => {
  issued.byClient[e.clientId] = (issued.byClient[e.clientId] ?? 0) + 1;
  issued.byKid[e.kid] = (issued.byKid[e.kid] ?? 0) + 1;
});
oauth.events.on('internal_error', (e) => {
  process.stderr.write(`internal error: ${e.error instanceof Error ? e.error.message : String(e.error)}\n`);
});

const app = express();
app.disable('x-powered-by');
app.use('/oauth', oauth);
app.get(oauth.metadataPath, oauth.metadata);
await oauth.ready();
const server = app.listen(0, '127.0.0.1');
await new Promise<void>((resolve, reject) => { server.once('listening', resolve).once('error', reject); });
send({ event: 'listening', port: (server.address() as AddressInfo).port });

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    send({ event: 'stopping' });
    // Answer what is in flight, close idle keep-alive connections as they become idle, and give
    // up on stragglers after a few seconds.
    const closed = new Promise<void>((resolve) => { server.close(() => resolve()); });
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    const force = setTimeout(() => server.closeAllConnections(), 3000);
    server.closeIdleConnections();
    await closed;
    clearInterval(idle);
    clearTimeout(force);
    await store.clients.flushUsage();
    await knex.destroy();
    redis.disconnect();
    process.exit(0);
  })();
  return stopping;
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

onCommands((command) => {
  if (command.cmd === 'stats') send({ event: 'stats', issued });
}, stop);
