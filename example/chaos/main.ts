/**
 * Nothing fails quietly: the cluster of the cluster demo (two issuer instances on PostgreSQL behind
 * a round-robin balancer, two APIs) under steady load from 20 callers (5 clients in 4 caller
 * processes, `tokenClient` with a shared Redis cache, 5 calls/s each) while faults are injected:
 *
 *   - one issuer is killed (SIGKILL) and started again a few seconds later;
 *   - the signing key is rotated (staged: published first, signing a few seconds later);
 *   - one client is disabled; its calls from then on are counted apart (the APIs read the issuers'
 *     revocation list every 2 s, so they learn of it from there, or at the latest by expiry);
 *   - the JWKS answers 500 for 10 s, while tokens with random kids are sent to both APIs (the APIs
 *     fetch it through a relay here, with jwksCooldown 5 s, and keep their key set 5 s);
 *   - the database is cut for 10 s (the issuers reach PostgreSQL through a TCP proxy here).
 *
 * It prints the calls made and failed (by cause and over time), unhandled rejections in every
 * process, the time until the disabled client's tokens are refused by both APIs, the JWKS requests
 * the APIs sent while it failed, and each process's memory at start and end. Exits 0 only when
 * the calls of clients that were not disabled all succeeded, no rejection went unhandled, no
 * process died unasked, the JWKS saw at most one request per cooldown from each API while it
 * failed, and the disabled client was refused within its token lifetime plus a stated bound.
 *
 *   npm run chaos                              # 60 s; needs `bash .ci/services` (PostgreSQL and Redis)
 *   npm run chaos -- --duration 20             # the same schedule, shrunk
 *   npm run chaos -- --skip db,jwks            # without some faults, to see what the others do
 *
 * Tables and Redis keys carry a random per-run prefix and are removed at the end; every child
 * process is stopped, also on Ctrl-C. The last lines are a JSON summary (`summary {...}`).
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { createKnexStore, REVOCATIONS_SCOPE, type KnexStore } from '../../lib/index.js';
import { startBalancer, type Balancer } from '../cluster/balancer.js';
import { createChildProcesses, hasExited, listening, reachServices, redact, removeRunData, stopChild, type Child } from '../cluster/harness.js';
import {
  DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, REPORTS_AUDIENCE, sleep, watchHealth, type Message, type ProcessHealth,
} from '../cluster/shared.js';
import { createTally, type Bucket, type TokenTick } from './figures.js';
import { startJwksRelay, type JwksRelay } from './jwks-relay.js';
import { CLIENT_CACHE_TTL, CLOCK_TOLERANCE, REVOCATION_INTERVAL, USAGE, parseArguments, type Fault } from './plan.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const parsed = parseArguments(process.argv.slice(2));
if ('help' in parsed) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if ('error' in parsed) {
  process.stderr.write(`${parsed.error}\n\n${USAGE}\n`);
  process.exit(2);
}
const { plan } = parsed;
const runs = (fault: Fault) => !plan.skip.has(fault);

const CLUSTER = fileURLToPath(new URL('../cluster/', import.meta.url));
const HERE = fileURLToPath(new URL('./', import.meta.url));
const CLIENT_IDS = Array.from({ length: plan.clients }, (_, i) => `chaos-client-${i + 1}`);
const DISABLED = CLIENT_IDS[CLIENT_IDS.length - 1] as string;
/** The client whose tokens the APIs read the revocation list with. */
const LISTER = 'chaos-api-lister';

const health = watchHealth();
const started = Date.now();
const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
const runId = randomBytes(4).toString('hex');
const tablePrefix = `chaos_${runId}_`;
const redisPrefix = `m2m-chaos:${runId}:`;

// ---- output ----

const say = (line = '') => { process.stdout.write(`${line}\n`); };
const step = (title: string) => { say(); say(title); };
const pass = (text: string) => { say(`  ✓ ${text}`); };
const s1 = (seconds: number) => seconds.toFixed(1);
const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const pad = (text: string | number, width: number) => String(text).padEnd(width);
const lpad = (text: string | number, width: number) => String(text).padStart(width);

/** A setup failure: printed as it is, then the run stops. */
class SetupFailed extends Error {}

// ---- the run's state ----

const summary: Record<string, unknown> = { ok: false, runId, tablePrefix, redisPrefix, duration: plan.duration, skipped: [...plan.skip] };
const processes = createChildProcesses();
/** Children meant to exit: killed on purpose, or stopped at the end. */
const meantToExit = new Set<Child>();
const unexpectedExits: { name: string; code: number | null; at: number }[] = [];
/** Health reported by each process, by a name that stays unique across the restart. */
const memory: Record<string, { start?: ProcessHealth; end?: ProcessHealth; note?: string }> = {};
let t0 = 0;
/** Seconds since the load started. */
const now = () => (Date.now() - t0) / 1000;
const log = (text: string) => { say(`  t=${lpad(s1(now()), 5)}  ${text}`); };
/** Resolves at `seconds` after the load started. */
const at = (seconds: number) => sleep(Math.max(0, t0 + seconds * 1000 - Date.now()));

const knex = knexFactory({
  client: 'pg', connection: databaseUrl, pool: { min: 0, max: 4 }, acquireConnectionTimeout: 5000,
  log: { warn(message: string) { if (!message.startsWith('Acquire connection error')) process.stderr.write(`knex: ${message}\n`); } },
});
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
redis.on('error', () => {}); // reported where a command fails
const reached = { database: false, redis: false };
let balancer: Balancer | undefined;
let relay: JwksRelay | undefined;
let proxy: TcpProxy | undefined;

function start(name: string, script: string, env: Record<string, string>): Child {
  const child = processes.start(name, script, env);
  void child.exited.then((code) => {
    if (meantToExit.has(child)) return;
    unexpectedExits.push({ name, code, at: now() });
    say(`  ✗ ${name} exited unasked (${code ?? 'signal'})`);
  });
  return child;
}

async function stats(child: Child): Promise<Message> {
  child.send({ cmd: 'stats' });
  return child.next('stats', 10_000);
}

// ---- requests the run makes itself ----

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function requestToken(tokenUrl: string, authorization: string): Promise<{ token: string; expiresAt: number } | { status: number }> {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'reports:read' }),
  });
  const body = await res.json() as { access_token?: string; expires_in?: number };
  if (res.status !== 200 || typeof body.access_token !== 'string') return { status: res.status };
  const payload = JSON.parse(Buffer.from(body.access_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
  return { token: body.access_token, expiresAt: payload.exp * 1000 };
}

async function callApi(port: number, token: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/reports`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Tokens with the right issuer, audience and scope, signed by a key nobody published, each naming a new random kid. */
function forger(issuer: string): () => string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return () => jwt.sign({ client_id: 'forged', scope: 'reports:read', jti: randomUUID() }, privateKey, {
    algorithm: 'ES256', keyid: randomBytes(16).toString('base64url'), issuer, audience: REPORTS_AUDIENCE, subject: 'forged',
    expiresIn: 60, header: { alg: 'ES256', typ: 'at+jwt' },
  });
}

// ---- cleanup ----

let cleaning: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    step('Cleanup');
    for (const child of processes.all) meantToExit.add(child);
    proxy?.restore();
    relay?.recover();
    await Promise.all(processes.all.map(stopChild));
    await Promise.all([balancer?.close(), relay?.close(), proxy?.close()]);
    try {
      if (!reached.database) {
        pass(`stopped ${processes.all.length} processes; nothing was written`);
        return;
      }
      const { tables, keys } = await removeRunData(knex, reached.redis ? redis : undefined, tablePrefix, redisPrefix);
      pass(`stopped ${processes.all.length} processes, dropped ${tables} tables ${tablePrefix}*, deleted ${plural(keys, 'Redis key')} ${redisPrefix}*`);
    } catch (err) {
      say(`  ✗ cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
      summary.ok = false;
    } finally {
      await knex.destroy();
      redis.disconnect();
    }
  })();
  return cleaning;
}

// `on`, not `once`: Ctrl-C under `npm run` delivers SIGINT twice (to the process group, and relayed
// by tsx), and a second SIGINT without a listener would end the run before it has cleaned up.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    say(`\nInterrupted (${signal}): stopping everything.`);
    void cleanUp().then(() => process.exit(130));
  });
}

// ---- the run ----

/** Figures the faults record as they happen. */
const record = {
  kill: undefined as undefined | { killedAt: number; restartedAt: number; listeningAt: number; statsBeforeKill: Message | undefined },
  rotation: undefined as undefined | { kid: string; publishedAt: number; activatesAt: number },
  disable: undefined as undefined | { at: number; refusedAfter: Record<string, { seconds: number; status: number }> },
  jwks: undefined as undefined | { forged: Record<string, Record<number, number>> },
  db: undefined as undefined | { severed: number; refusedBefore: number; refusedDuring: number },
};

async function runChaos(): Promise<void> {
  const callerCount = plan.clients * plan.callerProcesses;
  say(`express-m2m chaos run: ${plan.duration} s of steady load while faults are injected.`);
  say(`  2 issuer instances on PostgreSQL (through a TCP proxy the run can cut) behind a round-robin balancer,`);
  say(`  2 APIs (JWKS through a relay the run can make fail), ${callerCount} callers (${plan.clients} clients × ${plan.callerProcesses} processes, tokenClient, one Redis cache).`);
  say(`  PostgreSQL ${redact(databaseUrl)} (tables ${tablePrefix}*)`);
  say(`  Redis      ${redact(redisUrl)} (keys ${redisPrefix}*)`);

  step('Setup');
  await reachServices(knex, redis, { database: databaseUrl, redis: redisUrl }, reached).catch((err: unknown) => {
    throw new SetupFailed((err as Error).message);
  });
  const store: KnexStore = createKnexStore(knex, { tablePrefix });
  await store.migrate();
  await store.keys.ensure('ES256');
  const secrets: Record<string, string> = {};
  for (const clientId of CLIENT_IDS) {
    const created = await store.clients.create({
      clientId, name: clientId, scopes: ['reports:read'], audiences: [REPORTS_AUDIENCE], tokenLifetime: plan.tokenLifetime,
    });
    secrets[clientId] = created.clientSecret;
  }
  const lister = await store.clients.create({
    clientId: LISTER, name: 'the APIs\' revocation lists', scopes: [REVOCATIONS_SCOPE], audiences: [REPORTS_AUDIENCE],
  });
  pass(`database migrated; clients ${CLIENT_IDS[0]} to ${DISABLED}, tokens of ${plan.tokenLifetime} s; ${LISTER} for the APIs' revocation lists`);

  const target = new URL(databaseUrl);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const proxied = new URL(databaseUrl);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  pass(`TCP proxy to PostgreSQL on 127.0.0.1:${proxy.port}: the issuers' only way to the database`);
  balancer = await startBalancer();
  const issuerUrl = `${balancer.url}/oauth`;
  relay = await startJwksRelay(`${issuerUrl}/jwks.json`);
  pass(`load balancer on ${balancer.url}; JWKS relay to ${issuerUrl}/jwks.json at ${relay.urlFor('<api>')}`);

  const issuerEnv = { DATABASE_URL: proxied.toString(), TABLE_PREFIX: tablePrefix, ISSUER_URL: issuerUrl, REDIS_URL: redisUrl, REDIS_PREFIX: redisPrefix };
  const issuerStarts = ['issuer-1', 'issuer-2'].map((name) => listening(start(name, `${CLUSTER}issuer-node.ts`, issuerEnv)));
  const apiStarts = ['api-1', 'api-2'].map((name) => listening(start(name, `${CLUSTER}api-node.ts`, {
    ISSUER_URL: issuerUrl, API_NAME: name, JWKS_URI: relay?.urlFor(name) ?? '', JWKS_COOLDOWN: String(plan.jwksCooldown),
    JWKS_CACHE_MAX_AGE: String(plan.jwksCacheMaxAge), JWKS_SERVE_STALE: String(plan.jwksServeStale),
    LISTER_CLIENT_ID: LISTER, LISTER_SECRET: lister.clientSecret, REVOCATION_INTERVAL: String(REVOCATION_INTERVAL),
  })));
  for (const p of [...issuerStarts, ...apiStarts]) p.catch(() => {}); // awaited below, in groups
  const issuers = await Promise.all(issuerStarts);
  balancer.setBackends(issuers.map((i) => i.port));
  const apis = await Promise.all(apiStarts);
  const clientsJson = JSON.stringify(CLIENT_IDS.map((clientId) => ({ clientId, clientSecret: secrets[clientId] })));
  const callers = Array.from({ length: plan.callerProcesses }, (_, i) => start(`caller-${i + 1}`, `${HERE}caller-node.ts`, {
    ISSUER_URL: issuerUrl, API_URLS: apis.map((a) => `http://127.0.0.1:${a.port}`).join(','), REDIS_URL: redisUrl,
    REDIS_PREFIX: redisPrefix, CLIENTS: clientsJson, RATE: String(plan.rate), CALL_TIMEOUT: String(plan.callTimeout),
    STAGGER: String(plan.stagger),
  }));
  const ready = await Promise.all(callers.map((c) => c.next('ready', 60_000)));
  pass(`issuer-1 :${issuers[0]?.port}, issuer-2 :${issuers[1]?.port} (issuer ${issuerUrl}; keyCacheTtl 1 s, clientCacheTtl ${CLIENT_CACHE_TTL} s)`);
  pass(`api-1 :${apis[0]?.port}, api-2 :${apis[1]?.port} (jwksCooldown ${plan.jwksCooldown} s, jwksCacheMaxAge ${plan.jwksCacheMaxAge} s, `
    + `jwksServeStale ${plan.jwksServeStale} s, clockTolerance ${CLOCK_TOLERANCE} s, revocation list read every ${REVOCATION_INTERVAL} s)`);
  pass(`${callers.map((c) => c.name).join(', ')} ready: ${plan.clients} tokenClients each, ${plan.rate} calls/s per tokenClient `
    + `(client n from t=${s1(plan.stagger)}×(n-1)), a call fails after ${plan.callTimeout} s`);

  step(`Plan (t = seconds since the load started)${plan.skip.size > 0 ? `; skipped: ${[...plan.skip].join(', ')}` : ''}`);
  const planned = (fault: Fault, text: string) => { if (runs(fault)) say(text); };
  planned('kill', `  t=${lpad(s1(plan.kill.at), 5)}  kill issuer-1 (SIGKILL); start it again at t=${s1(plan.kill.restartAt)}`);
  planned('rotate', `  t=${lpad(s1(plan.rotate.at), 5)}  rotate the signing key; the new key signs ${plan.rotate.activateAfter} s later`);
  planned('disable', `  t=${lpad(s1(plan.disable.at), 5)}  disable ${DISABLED} (its ${plan.callerProcesses} callers go on calling; their calls are counted apart)`);
  planned('db', `  t=${lpad(s1(plan.db.at), 5)}  cut the database until t=${s1(plan.db.until)}`);
  planned('jwks', `  t=${lpad(s1(plan.jwks.at), 5)}  the JWKS answers 500 until t=${s1(plan.jwks.until)}; meanwhile ${plan.forgedRate} tokens/s with random kids to each API`);
  say(`  t=${lpad(s1(plan.duration), 5)}  stop the load`);

  // Memory at the start: every process up, before any call.
  const [issuerStats, apiStats] = await Promise.all([Promise.all(issuers.map(stats)), Promise.all(apis.map(stats))]);
  issuers.forEach((c, i) => { memory[c.name] = { start: issuerStats[i]?.health as ProcessHealth }; });
  apis.forEach((c, i) => { memory[c.name] = { start: apiStats[i]?.health as ProcessHealth }; });
  callers.forEach((c, i) => { memory[c.name] = { start: ready[i]?.health as ProcessHealth }; });
  memory['chaos (this process)'] = { start: health() };

  step('Run');
  t0 = Date.now();
  const tally = createTally(t0, plan.window);
  for (const c of callers) c.subscribe('tick', (m) => tally.add(Number(m.at), m.buckets as Bucket[], m.tokens as TokenTick));
  for (const c of callers) c.send({ cmd: 'start' });
  log(`load started: ${callerCount} callers × ${plan.rate} calls/s`);
  const end = t0 + plan.duration * 1000;
  const errors: string[] = [];
  const task = (name: string, work: () => Promise<void>) => work().catch((err: unknown) => {
    const message = `${name} failed: ${err instanceof Error ? err.message : String(err)}`;
    errors.push(message);
    log(`✗ ${message}`);
  });

  const kill = async () => {
    await at(plan.kill.at);
    const victim = issuers[0] as Child;
    const before = await stats(victim).catch(() => undefined);
    meantToExit.add(victim);
    victim.process.kill('SIGKILL');
    await victim.exited;
    const killedAt = now();
    memory['issuer-1'] = { ...memory['issuer-1'], end: before?.health as ProcessHealth, note: `killed at t=${s1(killedAt)}: its end is just before` };
    log(`issuer-1 killed (SIGKILL) with requests in flight; the balancer sends them on to issuer-2`);
    await at(plan.kill.restartAt);
    const restartedAt = now();
    const fresh = await listening(start('issuer-1', `${CLUSTER}issuer-node.ts`, issuerEnv));
    issuers[0] = fresh;
    balancer?.setBackends(issuers.map((i) => i.port));
    const listeningAt = now();
    memory['issuer-1 (restarted)'] = { start: (await stats(fresh)).health as ProcessHealth };
    record.kill = { killedAt, restartedAt, listeningAt, statsBeforeKill: before };
    log(`issuer-1 started again at t=${s1(restartedAt)}, listening on :${fresh.port}; back in the balancer`);
  };

  const rotate = async () => {
    await at(plan.rotate.at);
    const key = await store.keys.rotate({ alg: 'ES256', activateAfter: plan.rotate.activateAfter });
    record.rotation = { kid: key.kid, publishedAt: now(), activatesAt: (key.activatesAt.getTime() - t0) / 1000 };
    log(`signing key rotated: ${key.kid.slice(0, 12)} published now, signs from t=${s1(record.rotation.activatesAt)}`);
  };

  const disable = async () => {
    await at(plan.disable.at);
    // The last token the client gets before it is disabled: the one that should live longest.
    const probe = await requestToken(`${issuerUrl}/token`, basic(DISABLED, secrets[DISABLED] ?? ''));
    await store.clients.update(DISABLED, { enabled: false });
    const disabledAt = Date.now();
    for (const c of callers) c.send({ cmd: 'withdrawn', clientId: DISABLED });
    const refusedAfter: Record<string, { seconds: number; status: number }> = {};
    record.disable = { at: (disabledAt - t0) / 1000, refusedAfter };
    log(`${DISABLED} disabled (store.clients.update); a token it got just before expires at t=${'token' in probe ? s1((probe.expiresAt - t0) / 1000) : '?'}`);
    if (!('token' in probe)) return log(`✗ no token for ${DISABLED} before the disable (HTTP ${probe.status}): the probe is skipped`);
    while (Date.now() < end && Object.keys(refusedAfter).length < apis.length) {
      await Promise.all(apis.map(async (api) => {
        if (refusedAfter[api.name]) return;
        const status = await callApi(api.port, probe.token);
        if (status === 200) return;
        refusedAfter[api.name] = { seconds: (Date.now() - disabledAt) / 1000, status };
        log(`${api.name} refuses ${DISABLED}'s last token (HTTP ${status}), ${s1(refusedAfter[api.name]?.seconds ?? 0)} s after the disable`);
      }));
      await sleep(250);
    }
  };

  const jwks = async () => {
    await at(plan.jwks.at);
    relay?.fail();
    log(`JWKS failing (500) for ${plan.faultSeconds} s; forged tokens with random kids to both APIs`);
    const forge = forger(issuerUrl);
    const forged: Record<string, Record<number, number>> = {};
    const timers = apis.map((api) => setInterval(() => {
      void callApi(api.port, forge()).then((status) => {
        const byStatus = (forged[api.name] ??= {});
        byStatus[status] = (byStatus[status] ?? 0) + 1;
      });
    }, 1000 / plan.forgedRate));
    await at(plan.jwks.until);
    for (const timer of timers) clearInterval(timer);
    relay?.recover();
    record.jwks = { forged };
    const counts = relay?.counts() ?? {};
    log(`JWKS back; requests from the APIs while it failed: ${apis.map((a) => `${a.name} ${counts[a.name]?.whileFailing ?? 0}`).join(', ')}`);
  };

  const db = async () => {
    await at(plan.db.at);
    const refusedBefore = proxy?.stats().refused ?? 0;
    proxy?.cut();
    const severed = proxy?.stats().severed ?? 0;
    log(`database cut: ${plural(severed, 'live connection')} reset, new ones refused, for ${plan.faultSeconds} s`);
    await at(plan.db.until);
    proxy?.restore();
    const refusedDuring = (proxy?.stats().refused ?? 0) - refusedBefore;
    record.db = { severed, refusedBefore, refusedDuring };
    log(`database back; ${plural(refusedDuring, 'connection')} refused while cut`);
  };

  const faults: [Fault, () => Promise<void>][] = [['kill', kill], ['rotate', rotate], ['disable', disable], ['jwks', jwks], ['db', db]];
  await Promise.all([...faults.filter(([name]) => runs(name)).map(([name, work]) => task(name, work)), at(plan.duration)]);

  for (const c of callers) c.send({ cmd: 'stop' });
  const done = await Promise.all(callers.map((c) => c.next('done', (plan.callTimeout + 10) * 1000).catch(() => undefined)));
  log(`load stopped; ${plural(tally.totals().made, 'call')} made`);
  const [issuerEnd, apiEnd] = await Promise.all([
    Promise.all(issuers.map((c) => (hasExited(c) ? undefined : stats(c).catch(() => undefined)))),
    Promise.all(apis.map((c) => (hasExited(c) ? undefined : stats(c).catch(() => undefined)))),
  ]);
  const issuerKey = (i: number) => (i === 0 && record.kill ? 'issuer-1 (restarted)' : `issuer-${i + 1}`);
  issuers.forEach((_c, i) => { const m = (memory[issuerKey(i)] ??= {}); if (issuerEnd[i]) m.end = issuerEnd[i]?.health as ProcessHealth; });
  apis.forEach((c, i) => { const m = (memory[c.name] ??= {}); if (apiEnd[i]) m.end = apiEnd[i]?.health as ProcessHealth; });
  callers.forEach((c, i) => { const m = (memory[c.name] ??= {}); if (done[i]) m.end = done[i]?.health as ProcessHealth; });
  (memory['chaos (this process)'] ??= {}).end = health();

  report({ tally, issuerEnd, apiEnd, done, callers, apis, errors });
}

// ---- the report ----

interface Ending {
  tally: ReturnType<typeof createTally>;
  issuerEnd: (Message | undefined)[];
  apiEnd: (Message | undefined)[];
  done: (Message | undefined)[];
  callers: Child[];
  apis: Child[];
  errors: string[];
}

function report({ tally, issuerEnd, apiEnd, done, callers, apis, errors }: Ending): void {
  const totals = tally.totals();
  const causes = tally.causes();
  const checks: { text: string; ok: boolean }[] = [];
  const check = (ok: boolean, text: string) => { checks.push({ text, ok }); };

  step(`Timeline (calls that ended in each ${plan.window} s; failures of clients not disabled, and of ${DISABLED} after its disable)`);
  const active = (from: number, to: number) => {
    const names: string[] = [];
    if (runs('kill') && from < (record.kill?.listeningAt ?? plan.kill.restartAt) && to > plan.kill.at) names.push('issuer-1 down');
    if (runs('rotate') && record.rotation && from <= record.rotation.activatesAt && to > record.rotation.activatesAt) names.push('new key signs');
    if (runs('disable') && from <= plan.disable.at && to > plan.disable.at) names.push(`${DISABLED} disabled`);
    if (runs('jwks') && from < plan.jwks.until && to > plan.jwks.at) names.push('JWKS failing');
    if (runs('db') && from < plan.db.until && to > plan.db.at) names.push('database cut');
    return names.join(', ');
  };
  say(`  ${pad('t (s)', 8)}${lpad('calls', 6)}${lpad('ok', 6)}${lpad('failed', 7)}${lpad(`failed (${DISABLED.slice(-8)})`, 18)}`
    + `${lpad('tokens', 8)}${lpad('retries', 8)}${lpad('refresh failed', 15)}  faults`);
  for (const w of tally.windows()) {
    const to = w.from + plan.window;
    say(`  ${pad(`${w.from}-${to}`, 8)}${lpad(w.calls, 6)}${lpad(w.ok, 6)}${lpad(w.failedEnabled, 7)}${lpad(w.failedWithdrawn, 18)}`
      + `${lpad(w.tokens.endpoint, 8)}${lpad(w.tokens.retries, 8)}${lpad(w.tokens.refreshFailed, 15)}  ${active(w.from, to)}`);
  }
  say('  (tokens: from the token endpoint; retries: token requests made again; refresh failed: the current token served meanwhile)');

  step('Failed calls by cause');
  const causeList = Object.entries(causes).sort((a, b) => a[1].first - b[1].first);
  if (causeList.length === 0) say('  none');
  for (const [cause, c] of causeList) {
    say(`  ${pad(cause, 44)} ${lpad(c.enabled, 5)} of clients not disabled, ${lpad(c.withdrawn, 5)} of ${DISABLED}; t=${s1(c.first)} to ${s1(c.last)}`);
  }

  step('Figures');
  const enabledClients = CLIENT_IDS.filter((id) => id !== DISABLED || !runs('disable'));
  const idle = CLIENT_IDS.filter((id) => (totals.byClient[id]?.calls ?? 0) === 0);
  say(`  calls made: ${totals.made} (${totals.ok} answered 200), by ${callers.length * plan.clients} callers in ${plan.duration} s`);
  say(`  calls failed for clients not disabled: ${totals.failedEnabled}`);
  if (runs('disable')) say(`  calls of ${DISABLED} after its disable: ${totals.madeWithdrawn}, of which ${totals.failedWithdrawn} failed (not counted above)`);
  check(totals.made > 0 && idle.length === 0, `calls made: ${totals.made}; every client called${idle.length > 0 ? ` except ${idle.join(', ')}` : ''}`);
  check(totals.failedEnabled === 0, `calls failed for clients not disabled (${enabledClients.length} clients, ${enabledClients.length * plan.callerProcesses} callers): ${totals.failedEnabled}`);

  // Unhandled rejections: every process's own count; the killed issuer's as of just before the kill.
  const unhandled: Record<string, number> = {};
  for (const [name, m] of Object.entries(memory)) {
    const n = m.end?.unhandledRejections ?? m.start?.unhandledRejections;
    if (n !== undefined) unhandled[name] = n;
  }
  const unhandledTotal = Object.values(unhandled).reduce((a, n) => a + n, 0);
  say(`  unhandled rejections: ${unhandledTotal} (${Object.entries(unhandled).map(([name, n]) => `${name} ${n}`).join(', ')})`);
  check(unhandledTotal === 0, `unhandled rejections in ${Object.keys(unhandled).length} processes: ${unhandledTotal}`);
  const silent = [...callers.filter((_c, i) => !done[i]), ...apis.filter((_c, i) => !apiEnd[i])].map((c) => c.name)
    .concat(issuerEnd.some((m) => m === undefined) ? ['an issuer'] : []);
  check(silent.length === 0, `every process reported its figures at the end${silent.length > 0 ? ` but ${silent.join(', ')}` : ''}`);
  check(unexpectedExits.length === 0, `processes that exited unasked: ${unexpectedExits.length === 0 ? 0 : unexpectedExits.map((e) => `${e.name} (${e.code ?? 'signal'}) at t=${s1(e.at)}`).join(', ')}`);
  check(errors.length === 0, `faults injected as planned${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`);

  // The issuers' own counts: the killed instance's as of just before the kill, the others' at the end.
  const issuerStats = [record.kill?.statsBeforeKill, ...issuerEnd].filter((m): m is Message => m !== undefined);
  const failedAuth: Record<string, number> = {};
  const internalErrors: Record<string, number> = {};
  const rateLimitedBy: Record<string, number> = {};
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
  };
  for (const m of issuerStats) {
    const refused = m.refused as Record<'authenticationFailed' | 'rateLimited' | 'internalErrors', Record<string, number>>;
    add(failedAuth, refused.authenticationFailed);
    add(internalErrors, refused.internalErrors);
    add(rateLimitedBy, refused.rateLimited);
  }
  const rateLimited = Object.values(rateLimitedBy).reduce((a, n) => a + n, 0);
  const list = (counts: Record<string, number>) => Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';
  const tokenEvents = done.filter((m): m is Message => m !== undefined)
    .flatMap((m) => Object.values(m.tokenEvents as Record<string, Record<string, number>>));
  const sumEvents = (name: string) => tokenEvents.reduce((a, e) => a + (e[name] ?? 0), 0);
  say(`  callers' token events: ${sumEvents('fromEndpoint')} tokens from the endpoint, ${sumEvents('fromCache')} from Redis, `
    + `${sumEvents('retries')} retries, ${sumEvents('refreshFailed')} failed refreshes (the current token served meanwhile), `
    + `${sumEvents('rejected')} tokens refused by an API, ${sumEvents('cacheErrors')} cache errors`);
  say(`  issuers' failed client authentications: ${list(failedAuth)}`);
  say(`  issuers' rate-limited token requests (429, by client id and address): ${rateLimited}${rateLimited > 0 ? ` (${list(rateLimitedBy)})` : ''}`);
  say(`  issuers' internal errors: ${list(internalErrors)}`);
  const b = balancer?.stats();
  const answers = apiEnd.map((m, i) => `${apis[i]?.name} ${Object.entries((m?.answers ?? {}) as Record<string, number>).map(([s, n]) => `${s}×${n}`).join(' ')}`);
  say(`  APIs' answers: ${answers.join('; ')}`);

  if (runs('kill') && record.kill) {
    const k = record.kill;
    const rerouted = Object.entries(b?.connectionErrors ?? {}).map(([key, n]) => `${key.split(' ')[1]} ×${n}`).join(', ') || 'none';
    say(`  issuer kill: down from t=${s1(k.killedAt)} to t=${s1(k.listeningAt)} (started again at t=${s1(k.restartedAt)}); `
      + `the balancer re-sent requests after connection errors (${rerouted}), ${b?.failed ?? 0} answered 502`);
  }
  if (runs('rotate') && record.rotation) {
    const r = record.rotation;
    const kidCalls = totals.kids[r.kid];
    say(`  key rotation: ${r.kid.slice(0, 12)} signs from t=${s1(r.activatesAt)}; ${kidCalls?.calls ?? 0} calls accepted with it, `
      + `the first at t≈${kidCalls === undefined ? '-' : s1(kidCalls.first)}; calls accepted with older keys after that: `
      + `${Object.entries(totals.kids).filter(([kid]) => kid !== r.kid).map(([kid, k]) => `${kid.slice(0, 12)} last at t≈${s1(k.last)}`).join(', ')}`);
  }

  let jwksSummary: Record<string, unknown> | null = null;
  if (runs('jwks')) {
    const counts = relay?.counts() ?? {};
    const during = Object.fromEntries(apis.map((a) => [a.name, counts[a.name]?.whileFailing ?? 0]));
    const totalsByApi = Object.fromEntries(apis.map((a) => [a.name, counts[a.name]?.total ?? 0]));
    const times = Object.fromEntries(apis.map((a) => [a.name, (counts[a.name]?.failingAt ?? []).map((ms) => Math.round((ms - t0) / 100) / 10)]));
    const forged = record.jwks?.forged ?? {};
    say(`  JWKS failure (${plan.faultSeconds} s, jwksCooldown ${plan.jwksCooldown} s): requests from the APIs while it failed `
      + `${apis.map((a) => `${a.name} ${during[a.name]} (t=${(times[a.name] ?? []).map(s1).join(', ')})`).join(', ')}; over the whole run `
      + `${apis.map((a) => `${a.name} ${totalsByApi[a.name]}`).join(', ')}`);
    say(`  forged tokens (random kids) while it failed: ${apis.map((a) => `${a.name} ${Object.entries(forged[a.name] ?? {}).map(([s, n]) => `${s}×${n}`).join(' ')}`).join('; ')}`);
    const worst = Math.max(...Object.values(during));
    check(worst <= plan.jwksRequestBound,
      `JWKS requests per API while it failed: ${apis.map((a) => `${a.name} ${during[a.name]}`).join(', ')} (at most ${plan.jwksRequestBound}: ceil(${plan.faultSeconds} / ${plan.jwksCooldown}) + 1)`);
    jwksSummary = {
      failureSeconds: plan.faultSeconds, cooldownSeconds: plan.jwksCooldown, bound: plan.jwksRequestBound,
      upstreamDuringFailure: during, upstreamTotal: totalsByApi, requestTimes: times, forgedAnswers: forged,
    };
  }

  let disabledSummary: Record<string, unknown> | null = null;
  if (runs('disable')) {
    const d = record.disable;
    const disabledAtMs = d === undefined ? undefined : t0 + d.at * 1000;
    const lastOk = tally.lastOkAt(DISABLED);
    const lastAcceptedAfter = disabledAtMs !== undefined && lastOk !== undefined && lastOk > disabledAtMs ? (lastOk - disabledAtMs) / 1000 : 0;
    const lastIssued = Math.max(0, ...issuerStats.map((m) => (m.issued as { lastAt: Record<string, number> }).lastAt[DISABLED] ?? 0));
    const lastIssuedAfter = disabledAtMs !== undefined && lastIssued > disabledAtMs ? (lastIssued - disabledAtMs) / 1000 : 0;
    const probes = d?.refusedAfter ?? {};
    const refusedByBoth = apis.every((a) => probes[a.name] !== undefined)
      ? Math.max(lastAcceptedAfter, ...apis.map((a) => probes[a.name]?.seconds ?? 0)) : null;
    say(`  ${DISABLED}: refused by both APIs ${refusedByBoth === null ? 'NOT within the run' : `${s1(refusedByBoth)} s after the disable`} `
      + `(its last token before the disable: ${apis.map((a) => `${a.name} ${probes[a.name] ? `${s1(probes[a.name]?.seconds ?? 0)} s` : 'still accepted'}`).join(', ')}; `
      + `its callers' last accepted call ${s1(lastAcceptedAfter)} s after); token lifetime ${plan.tokenLifetime} s; the APIs read the revocation list every ${REVOCATION_INTERVAL} s)`);
    say(`  issuers: last token issued to ${DISABLED} ${lastIssued === 0 ? '(none seen)' : `${s1(lastIssuedAfter)} s after the disable`}; `
      + `then refused: ${Object.entries(failedAuth).filter(([k]) => k.startsWith(`${DISABLED} `)).map(([k, n]) => `${k.split(' ')[1]} ×${n}`).join(', ') || 'none'}`);
    check(refusedByBoth !== null && refusedByBoth <= plan.refusalBound,
      `${DISABLED}'s tokens refused by both APIs ${refusedByBoth === null ? 'never' : `after ${s1(refusedByBoth)} s`} (at most ${plan.refusalBound} s: `
      + `token lifetime ${plan.tokenLifetime} + clientCacheTtl ${CLIENT_CACHE_TTL} + clockTolerance ${CLOCK_TOLERANCE} + 1)`);
    check(lastIssuedAfter <= plan.issueBound, `issuers stopped issuing to ${DISABLED} ${s1(lastIssuedAfter)} s after the disable (at most ${plan.issueBound} s)`);
    disabledSummary = {
      clientId: DISABLED, tokenLifetime: plan.tokenLifetime, bound: plan.refusalBound, refusedByBothAfter: refusedByBoth,
      probeRefusedAfter: probes, lastAcceptedAfter, lastIssuedAfter, issueBound: plan.issueBound,
      callsAfterDisable: totals.madeWithdrawn, failedAfterDisable: totals.failedWithdrawn,
    };
  }

  if (runs('db') && record.db) {
    const inCut = causeList.filter(([, c]) => c.first < plan.db.until + plan.tokenLifetime && c.last >= plan.db.at);
    say(`  database cut (${plan.faultSeconds} s): ${plural(record.db.severed, 'connection')} reset, ${record.db.refusedDuring} refused; `
      + `causes of failed calls seen from the cut until a token lifetime after it: ${inCut.map(([cause]) => cause).join(', ') || 'none'}`);
  }

  step('Memory at the start of the load and at its end (RSS, and V8 heap in use)');
  say(`  ${pad('process', 22)} ${lpad('RSS start', 10)} ${lpad('end', 8)} ${lpad('heap start', 11)} ${lpad('end', 8)}  unhandled rejections`);
  for (const [name, m] of Object.entries(memory)) {
    say(`  ${pad(name, 22)} ${lpad(m.start ? mb(m.start.rss) : '-', 10)} ${lpad(m.end ? mb(m.end.rss) : '-', 8)} `
      + `${lpad(m.start ? mb(m.start.heapUsed) : '-', 11)} ${lpad(m.end ? mb(m.end.heapUsed) : '-', 8)}  `
      + `${m.end?.unhandledRejections ?? m.start?.unhandledRejections ?? '-'}${m.note === undefined ? '' : `  (${m.note})`}`);
  }

  step('Checks');
  for (const c of checks) say(`  ${c.ok ? '✓' : '✗'} ${c.text}`);

  summary.ok = checks.every((c) => c.ok);
  summary.plan = {
    faultSeconds: plan.faultSeconds, tokenLifetime: plan.tokenLifetime, jwksCooldown: plan.jwksCooldown, jwksCacheMaxAge: plan.jwksCacheMaxAge,
    jwksServeStale: plan.jwksServeStale, callers: plan.clients * plan.callerProcesses, rate: plan.rate, callTimeout: plan.callTimeout,
    schedule: { kill: plan.kill, rotate: plan.rotate, disable: plan.disable, jwks: plan.jwks, db: plan.db },
  };
  summary.calls = {
    made: totals.made, ok: totals.ok, failedEnabled: totals.failedEnabled, failedDisabledClient: totals.failedWithdrawn,
    byCause: causes, byClient: totals.byClient,
  };
  summary.unhandledRejections = { total: unhandledTotal, byProcess: unhandled };
  summary.unexpectedExits = unexpectedExits;
  summary.jwks = jwksSummary;
  summary.disabled = disabledSummary;
  summary.db = runs('db') ? { cutSeconds: plan.faultSeconds, ...record.db, internalErrors } : null;
  summary.kill = runs('kill') && record.kill
    ? { killedAt: record.kill.killedAt, restartedAt: record.kill.restartedAt, listeningAt: record.kill.listeningAt, balancer: b } : null;
  summary.rotation = runs('rotate') ? { ...record.rotation, callsWithNewKey: record.rotation ? totals.kids[record.rotation.kid]?.calls ?? 0 : 0 } : null;
  summary.issuers = { rateLimited: rateLimitedBy, failedAuthentications: failedAuth, internalErrors };
  summary.memory = Object.fromEntries(Object.entries(memory).map(([name, m]) => [name, {
    startMb: m.start ? Math.round(m.start.rss / 2 ** 20) : null, endMb: m.end ? Math.round(m.end.rss / 2 ** 20) : null,
    heapStartMb: m.start ? Math.round(m.start.heapUsed / 2 ** 20) : null, heapEndMb: m.end ? Math.round(m.end.heapUsed / 2 ** 20) : null,
  }]));
  summary.checks = checks;
}

let code = 1;
try {
  await runChaos();
  code = summary.ok === true ? 0 : 1;
} catch (err) {
  say(`  ✗ ${err instanceof Error ? err.message : String(err)}`);
  if (!(err instanceof SetupFailed) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  summary.ok = false;
}
await cleanUp();
if (summary.ok !== true) code = 1;
const durationMs = Date.now() - started;
summary.durationMs = durationMs;
say();
say(`summary ${JSON.stringify(summary)}`);
say(code === 0 ? `✓ Every check passed (${s1(durationMs / 1000)} s).` : `✗ A check failed (${s1(durationMs / 1000)} s).`);
process.exit(code);
