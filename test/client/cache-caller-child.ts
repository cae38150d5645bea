/**
 * One caller process for the cross-process cache tests (run by spawn-child.ts, not by mocha):
 * `node --import tsx cache-caller-child.ts <redis|postgres> <tokenUrl> <prefix>`.
 *
 * Builds a tokenClient on a shared cache, prints `ready`, waits for a `go` line on stdin, calls
 * getToken() 20 times at once and prints one JSON line: the sha256 fingerprints of the tokens it
 * got (never the tokens), the operations of any cache.error events, and `source:attempts` of each
 * token.fetched event.
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import knexFactory from 'knex';
import { tokenClient, type TokenCache } from '../../lib/index.js';
import { redisTokenCache } from '../../lib/client/redis-cache.js';
import { knexTokenCache } from '../../lib/client/knex-cache.js';
import { PG_URL, REDIS_URL } from '../support/db.js';

const [mode, tokenUrl, prefix] = process.argv.slice(2);
if ((mode !== 'redis' && mode !== 'postgres') || tokenUrl === undefined || prefix === undefined) {
  process.stderr.write('usage: cache-caller-child.ts <redis|postgres> <tokenUrl> <prefix>\n');
  process.exit(2);
}

let cache: TokenCache;
let close: () => Promise<void>;
if (mode === 'redis') {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  await redis.ping();
  cache = redisTokenCache(redis, { prefix });
  close = async () => { redis.disconnect(); };
} else {
  const knex = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 4 } });
  await knex.raw('select 1');
  cache = knexTokenCache(knex, { tablePrefix: prefix });
  close = () => knex.destroy();
}

const client = tokenClient({ tokenUrl, clientId: 'svc-a', clientSecret: 'secret-a', cache });
const cacheErrors: string[] = [];
client.events.on('cache.error', (event) => cacheErrors.push(event.operation));
const fetched: string[] = [];
client.events.on('token.fetched', (event) => fetched.push(`${event.source}:${event.attempts}`));

const lines = createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => {
  lines.on('line', (line) => { if (line.trim() === 'go') resolve(); });
});
process.stdout.write('ready\n');
await go;
lines.close();

const tokens = await Promise.all(Array.from({ length: 20 }, () => client.getToken()));
const fingerprints = [...new Set(tokens.map((t) => createHash('sha256').update(t.accessToken).digest('hex')))];
process.stdout.write(`${JSON.stringify({ fingerprints, cacheErrors, fetched })}\n`);
await close();
