/**
 * One caller process of the cluster demo: a service that calls the reports API through
 * `tokenClient`, with its tokens in the Redis cache shared by every caller process. The token
 * endpoint is discovered from the issuer's metadata, through the load balancer.
 *
 * Started by example/cluster/main.ts. Environment: ISSUER_URL, API_URLS (comma-separated),
 * REDIS_URL, REDIS_PREFIX, CLIENT_ID, CLIENT_SECRET, CALLER_NAME. Commands on stdin:
 *
 * - `{"cmd":"burst","calls":N}`: N calls at once, spread over the APIs; answers `burst`.
 * - `{"cmd":"stream"}`: calls without pause, a few at a time, until `{"cmd":"stop"}`; answers `stream`.
 * - `{"cmd":"invalidate"}`: drops the current token, here and in Redis; answers `invalidated`.
 *
 * Reports carry token fingerprints as the APIs saw them, never a token.
 */
import { Redis } from 'ioredis';
import { redisTokenCache, tokenClient } from '../../lib/index.js';
import { REPORTS_AUDIENCE, onCommands, requireEnv, send, sleep, type Message } from './shared.js';

const apis = requireEnv('API_URLS').split(',');
const redis = new Redis(requireEnv('REDIS_URL'), { maxRetriesPerRequest: 1 });
await redis.ping();

const client = tokenClient({
  issuer: requireEnv('ISSUER_URL'),
  clientId: requireEnv('CLIENT_ID'),
  clientSecret: requireEnv('CLIENT_SECRET'),
  scope: 'reports:read',
  audience: REPORTS_AUDIENCE,
  cache: redisTokenCache(redis, { prefix: requireEnv('REDIS_PREFIX') }),
});
client.events.on('token.fetched', (e) => { send({ event: 'token.fetched', source: e.source, refresh: e.refresh }); });
client.events.on('cache.error', (e) => { send({ event: 'cache.error', operation: e.operation }); });
client.events.on('token.retry_scheduled', (e) => { send({ event: 'token.retry_scheduled', attempt: e.attempt, reason: e.error.reason }); });

/** One call to the reports API as the caller saw it. */
interface Call {
  status: number;
  api?: string;
  token?: string;
  kid?: string;
  error?: string;
}

let turn = 0;
async function call(): Promise<Call> {
  const url = `${apis[turn++ % apis.length] ?? ''}/reports`;
  try {
    const res = await client.fetch(url);
    if (res.status !== 200) {
      await res.body?.cancel();
      return { status: res.status };
    }
    const body = await res.json() as { api: string; token: string; kid: string };
    return { status: 200, api: body.api, token: body.token, kid: body.kid };
  } catch (err) {
    return { status: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

function summarize(calls: Call[]): Message {
  const failed = calls.filter((c) => c.status !== 200);
  const byApi: Record<string, number> = {};
  for (const c of calls) if (c.api !== undefined) byApi[c.api] = (byApi[c.api] ?? 0) + 1;
  return {
    calls: calls.length,
    ok: calls.length - failed.length,
    failures: failed.slice(0, 5).map((c) => c.error ?? `HTTP ${c.status}`),
    byApi,
    tokens: [...new Set(calls.flatMap((c) => c.token ?? []))],
    kids: [...new Set(calls.flatMap((c) => c.kid ?? []))],
  };
}

let stream: { running: boolean; workers: Promise<void>[]; before: Call[]; after: Call[]; invalidated: boolean } | undefined;

onCommands(async (command) => {
  switch (command.cmd) {
    case 'burst': {
      const calls = await Promise.all(Array.from({ length: Number(command.calls) }, () => call()));
      send({ event: 'burst', ...summarize(calls) });
      break;
    }
    case 'stream': {
      const s = { running: true, workers: [] as Promise<void>[], before: [] as Call[], after: [] as Call[], invalidated: false };
      for (let i = 0; i < 2; i++) {
        s.workers.push((async () => {
          while (s.running) {
            // Which list a call lands in is decided when it starts: a call started before the
            // invalidation may still carry the old token.
            const list = s.invalidated ? s.after : s.before;
            list.push(await call());
            await sleep(10);
          }
        })());
      }
      stream = s;
      break;
    }
    case 'invalidate':
      await client.invalidate();
      if (stream) stream.invalidated = true;
      send({ event: 'invalidated' });
      break;
    case 'stop': {
      if (!stream) break;
      stream.running = false;
      await Promise.all(stream.workers);
      send({ event: 'stream', ...summarize([...stream.before, ...stream.after]), before: summarize(stream.before), after: summarize(stream.after) });
      stream = undefined;
      break;
    }
    default:
      process.stderr.write(`unknown command ${String(command.cmd)}\n`);
  }
}, () => {
  redis.disconnect();
  process.exit(0);
});
send({ event: 'ready' });
