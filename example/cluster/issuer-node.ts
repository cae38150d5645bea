/**
 * One issuer instance of the cluster demo: the authorization server in an Express app, on the
 * shared PostgreSQL database, with its brute-force counters in the shared Redis. Every instance is
 * configured with the same issuer URL, the load balancer's, as it would be behind a real one.
 *
 * Started by example/cluster/main.ts. Environment: DATABASE_URL, TABLE_PREFIX, ISSUER_URL,
 * REDIS_URL, REDIS_PREFIX. Prints `listening` (with its port) and answers `stats` with the tokens it
 * issued (by client and by kid, and when it last issued one to each client), its failed
 * authentications, rate-limited requests and internal errors, and its health (memory, unhandled
 * rejections). Started while the database is unreachable, it waits for it before it listens.
 * SIGTERM stops it gracefully: no new connections, requests in flight are answered,
 * then it exits 0.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { authorizationServer, createKnexStore } from '../../lib/index.js';
import { onCommands, requireEnv, send, sleep, watchHealth } from './shared.js';

const health = watchHealth();
/** Prints a message once per distinct first line: an outage would print the same lines per request. */
const seen = new Set<string>();
function once(prefix: string, message: unknown): string {
  const text = message instanceof Error ? message.message : String(message);
  const first = text.split('\n')[0] ?? '';
  if (!seen.has(prefix + first)) {
    seen.add(prefix + first);
    process.stderr.write(`${prefix}${first}\n`);
  }
  return first;
}

const issuer = requireEnv('ISSUER_URL');
const knex = knexFactory({
  client: 'pg', connection: requireEnv('DATABASE_URL'), pool: { min: 0, max: 5 },
  log: { warn: (m: unknown) => once('knex: ', m), error: (m: unknown) => once('knex: ', m), deprecate: (m: unknown) => once('knex: ', m), debug: () => {} },
});
const store = createKnexStore(knex, { tablePrefix: requireEnv('TABLE_PREFIX') });

/**
 * Runs a start-up step that needs the database until it succeeds, backing off up to 2 s: an
 * instance started during a database outage waits for the database, as a service behind an
 * orchestrator's readiness check would, instead of exiting and being started again.
 */
async function whenDatabaseAnswers(step: () => Promise<unknown>): Promise<void> {
  for (let delay = 250; ; delay = Math.min(2 * delay, 2000)) {
    try {
      await step();
      return;
    } catch (err) {
      once('waiting for the database: ', err);
      await sleep(delay);
    }
  }
}

// Every instance runs the migrations when it starts; on an up-to-date database they do nothing.
await whenDatabaseAnswers(() => store.migrate());
const redis = new Redis(requireEnv('REDIS_URL'), { maxRetriesPerRequest: 1 });

const oauth = authorizationServer({
  issuer,
  store,
  // Short, so that a rotated key reaches every instance within a second.
  keyCacheTtl: 1,
  rateLimit: { redis, keyPrefix: `${requireEnv('REDIS_PREFIX')}rl` },
});
const issued = { byClient: {} as Record<string, number>, byKid: {} as Record<string, number>, lastAt: {} as Record<string, number> };
oauth.events.on('token.issued', (e) => {
  issued.byClient[e.clientId] = (issued.byClient[e.clientId] ?? 0) + 1;
  issued.byKid[e.kid] = (issued.byKid[e.kid] ?? 0) + 1;
  issued.lastAt[e.clientId] = Date.now();
});
const refused = { authenticationFailed: {} as Record<string, number>, rateLimited: {} as Record<string, number>, internalErrors: {} as Record<string, number> };
oauth.events.on('client.authentication_failed', (e) => {
  const key = `${e.clientId ?? '?'} ${e.reason}`;
  refused.authenticationFailed[key] = (refused.authenticationFailed[key] ?? 0) + 1;
});
oauth.events.on('rate_limited', (e) => {
  const key = `${e.clientId ?? '?'} from ${e.address}`;
  refused.rateLimited[key] = (refused.rateLimited[key] ?? 0) + 1;
});
oauth.events.on('internal_error', (e) => {
  const message = once('internal error: ', e.error);
  refused.internalErrors[message] = (refused.internalErrors[message] ?? 0) + 1;
});

const app = express();
app.disable('x-powered-by');
app.use('/oauth', oauth);
app.get(oauth.metadataPath, oauth.metadata);
await whenDatabaseAnswers(() => oauth.ready());
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
  if (command.cmd === 'stats') send({ event: 'stats', issued, refused, health: health() });
}, stop);
