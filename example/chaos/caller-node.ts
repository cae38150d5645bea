/**
 * One caller process of the chaos run: one `tokenClient` per client it is given, each calling the
 * reports APIs at a steady rate (open loop: a call starts every 1/RATE s whatever the previous one
 * is doing, and gives up after CALL_TIMEOUT s), with tokens in the Redis cache shared by every
 * caller process. The token endpoint is discovered through the load balancer.
 *
 * Started by example/chaos/main.ts. Environment: ISSUER_URL, API_URLS (comma-separated), REDIS_URL,
 * REDIS_PREFIX, CLIENTS (a JSON list of `{ clientId, clientSecret }`), RATE (calls per second per
 * client), CALL_TIMEOUT (s), STAGGER (s: the n-th client starts calling n × STAGGER after the first,
 * so that the clients' tokens expire at different times, as they would in services started
 * apart). Commands on stdin:
 *
 * - `{"cmd":"start"}`: starts calling; a `tick` follows every second with what the calls that
 *   ended in it saw, per client, and the token events of its second.
 * - `{"cmd":"withdrawn","clientId":ID}`: the client was disabled; its calls started from now on are
 *   counted apart (`withdrawn: true` in ticks).
 * - `{"cmd":"stop"}`: stops calling, waits for the calls under way, sends a last `tick` and `done`
 *   (token events per client, health).
 *
 * Nothing printed holds a secret or a token.
 */
import { Redis } from 'ioredis';
import { redisTokenCache, tokenClient, TokenRequestError, type TokenClient } from '../../lib/index.js';
import { REPORTS_AUDIENCE, onCommands, requireEnv, send, watchHealth } from '../cluster/shared.js';
import type { Bucket, TokenTick } from './figures.js';

const health = watchHealth();
const apis = requireEnv('API_URLS').split(',');
const rate = Number(requireEnv('RATE'));
const callTimeout = Number(requireEnv('CALL_TIMEOUT')) * 1000;
const stagger = Number(requireEnv('STAGGER')) * 1000;
const credentials = JSON.parse(requireEnv('CLIENTS')) as { clientId: string; clientSecret: string }[];
const redis = new Redis(requireEnv('REDIS_URL'), { maxRetriesPerRequest: 1 });
await redis.ping();
const cache = redisTokenCache(redis, { prefix: requireEnv('REDIS_PREFIX') });

/** Token events of one client over the run. */
interface TokenEvents {
  fromEndpoint: number;
  fromCache: number;
  retries: number;
  refreshFailed: number;
  rejected: number;
  cacheErrors: number;
}

const withdrawn = new Set<string>();
let buckets = new Map<string, Bucket>();
let tokenTick: TokenTick = { endpoint: 0, cache: 0, retries: 0, refreshFailed: 0 };
const events = new Map<string, TokenEvents>();
const inFlight = new Set<Promise<void>>();

function bucket(clientId: string, isWithdrawn: boolean): Bucket {
  const key = `${clientId} ${isWithdrawn}`;
  let b = buckets.get(key);
  if (!b) {
    b = { clientId, withdrawn: isWithdrawn, calls: 0, ok: 0, failed: {}, kids: {} };
    buckets.set(key, b);
  }
  return b;
}

/** A short, stable name for what made a call fail: where (token request or API), status and code. */
function failureOf(err: unknown): string {
  if (err instanceof TokenRequestError) return `token request ${err.status ?? '-'} ${err.error ?? err.reason}`;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${callTimeout / 1000} s`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function watch(client: TokenClient): void {
  const counts: TokenEvents = { fromEndpoint: 0, fromCache: 0, retries: 0, refreshFailed: 0, rejected: 0, cacheErrors: 0 };
  events.set(client.clientId, counts);
  client.events.on('token.fetched', (e) => {
    if (e.source === 'endpoint') {
      counts.fromEndpoint++;
      tokenTick.endpoint++;
    } else {
      counts.fromCache++;
      tokenTick.cache++;
    }
  });
  client.events.on('token.retry_scheduled', () => { counts.retries++; tokenTick.retries++; });
  client.events.on('token.refresh_failed', () => { counts.refreshFailed++; tokenTick.refreshFailed++; });
  client.events.on('token.rejected', () => { counts.rejected++; });
  client.events.on('cache.error', () => { counts.cacheErrors++; });
}

async function call(client: TokenClient, url: string): Promise<void> {
  const isWithdrawn = withdrawn.has(client.clientId);
  let failure: string | undefined;
  let kid: string | undefined;
  try {
    const res = await client.fetch(url, { signal: AbortSignal.timeout(callTimeout) });
    const body = await res.json().catch(() => ({})) as { kid?: string; error?: string };
    if (res.status === 200) kid = body.kid ?? '?';
    else failure = `API ${res.status} ${body.error ?? ''}`.trim();
  } catch (err) {
    failure = failureOf(err);
  }
  const b = bucket(client.clientId, isWithdrawn);
  b.calls++;
  if (failure === undefined) {
    b.ok++;
    b.kids[kid ?? '?'] = (b.kids[kid ?? '?'] ?? 0) + 1;
    b.lastOkAt = Date.now();
  } else {
    b.failed[failure] = (b.failed[failure] ?? 0) + 1;
  }
}

function tick(): void {
  send({ event: 'tick', at: Date.now(), buckets: [...buckets.values()], tokens: tokenTick });
  buckets = new Map();
  tokenTick = { endpoint: 0, cache: 0, retries: 0, refreshFailed: 0 };
}

const clients = credentials.map(({ clientId, clientSecret }) => {
  const client = tokenClient({
    issuer: requireEnv('ISSUER_URL'), clientId, clientSecret, scope: 'reports:read', audience: REPORTS_AUDIENCE, cache,
  });
  watch(client);
  return client;
});
const timers: NodeJS.Timeout[] = [];

onCommands(async (command) => {
  switch (command.cmd) {
    case 'start':
      timers.push(setInterval(tick, 1000));
      for (const [i, client] of clients.entries()) {
        let turn = i;
        timers.push(setTimeout(() => {
          timers.push(setInterval(() => {
            const running = call(client, `${apis[turn++ % apis.length] ?? ''}/reports`).finally(() => inFlight.delete(running));
            inFlight.add(running);
          }, 1000 / rate));
        }, i * stagger));
      }
      break;
    case 'withdrawn':
      withdrawn.add(String(command.clientId));
      break;
    case 'stop':
      for (const timer of timers.splice(0)) clearTimeout(timer);
      await Promise.all([...inFlight]);
      tick();
      send({ event: 'done', tokenEvents: Object.fromEntries(events), health: health() });
      break;
    default:
      process.stderr.write(`unknown command ${String(command.cmd)}\n`);
  }
}, () => {
  redis.disconnect();
  process.exit(0);
});
send({ event: 'ready', health: health() });
