/**
 * Past one machine: two issuer instances and two API instances on one PostgreSQL database, behind
 * a round-robin load balancer, with two caller processes sharing a Redis token cache. Shows, and
 * checks, that
 *
 *   (a) tokens from either issuer instance verify on either API instance;
 *   (b) a key rotated on the shared database reaches both instances without a restart;
 *   (c) two caller processes, making many calls at once, fetch one token between them;
 *   (d) stopping one issuer instance fails no request the other can serve;
 *   (e) a revoked token, and the tokens of a disabled client, are refused by both APIs within
 *       their revocation list's refresh interval (revocation-step.ts).
 *
 *   npm run demo:cluster                       # needs `bash .ci/services` (PostgreSQL and Redis)
 *   DATABASE_URL=postgres://... REDIS_URL=redis://... npm run demo:cluster
 *
 * Every process is a child of this one (`node --import tsx`), on free ports; tables and Redis keys
 * carry a random per-run prefix and are removed at the end. Exits 0 when every check passed, 1 when
 * one failed. The last lines are a JSON summary (`summary {...}`) for scripts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { createKnexStore, REVOCATIONS_SCOPE } from '../../lib/index.js';
import { startBalancer, type Balancer } from './balancer.js';
import { DISABLED_CLIENT, LISTER_CLIENT, REVOCATION_INTERVAL, revocationStep } from './revocation-step.js';
import { createChildProcesses, listening, reachServices, redact, removeRunData, stopChild, type Child } from './harness.js';
import {
  CALLER_CLIENT, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, PROBE_CLIENT, REPORTS_AUDIENCE, fingerprint, sleep, type Message,
} from './shared.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('./', import.meta.url));
const CLI = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
const CALLS_PER_CALLER = 50;
const ACTIVATE_AFTER = 3;

const started = Date.now();
const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
const runId = randomBytes(4).toString('hex');
const tablePrefix = `demo_${runId}_`;
const redisPrefix = `m2m-demo:${runId}:`;

// ---- output ----

class CheckFailed extends Error {
  /** Whether check() has printed it already. */
  printed = false;
}

const summary: Record<string, unknown> = { ok: false, runId, tablePrefix, redisPrefix };
const say = (line = '') => { process.stdout.write(`${line}\n`); };
const step = (title: string) => { say(); say(title); };
const pass = (text: string) => { say(`  ✓ ${text}`); };
/** Prints ✓ and goes on, or prints ✗ and stops the demo. */
function check(ok: boolean, text: string, detail?: string): void {
  if (ok) {
    pass(text);
    return;
  }
  say(`  ✗ ${text}${detail === undefined ? '' : `\n      ${detail}`}`);
  const failure = new CheckFailed(text);
  failure.printed = true;
  throw failure;
}

const short = (kid: string | undefined) => (kid ?? '?').slice(0, 12);

// ---- child processes ----

const processes = createChildProcesses();
const startChild = (name: string, script: string, env: Record<string, string>): Child => processes.start(name, `${HERE}${script}`, env);

// ---- HTTP helpers (the demo's own checks, with the probe client) ----

interface IssuedToken { token: string; kid: string; iss: string; fp: string }

function decodePart(part: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

let probeAuthorization = '';

async function requestToken(issuerBase: string): Promise<IssuedToken> {
  const res = await fetch(`${issuerBase}/token`, {
    method: 'POST',
    headers: { authorization: probeAuthorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'reports:read' }),
  });
  const body = await res.json() as { access_token?: string; error?: string };
  if (res.status !== 200 || typeof body.access_token !== 'string') {
    throw new CheckFailed(`the token endpoint at ${issuerBase} answered ${res.status} ${body.error ?? ''}`);
  }
  const [header, payload] = body.access_token.split('.');
  return {
    token: body.access_token, kid: String(decodePart(header).kid), iss: String(decodePart(payload).iss), fp: fingerprint(body.access_token),
  };
}

async function callApi(port: number, token: string): Promise<{ status: number; api?: string; token?: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/reports`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status };
  }
  const body = await res.json() as { api: string; token: string };
  return { status: 200, api: body.api, token: body.token };
}

async function jwksKids(issuerBase: string): Promise<string[]> {
  const res = await fetch(`${issuerBase}/jwks.json`);
  const body = await res.json() as { keys: { kid: string }[] };
  return body.keys.map((k) => k.kid).sort();
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new CheckFailed(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

async function issuedTo(issuer: Child, clientId: string): Promise<number> {
  issuer.send({ cmd: 'stats' });
  const stats = await issuer.next('stats');
  return (stats.issued as { byClient: Record<string, number> }).byClient[clientId] ?? 0;
}

// ---- the demo's own connections, and cleanup ----

const knex = knexFactory({
  client: 'pg', connection: databaseUrl, pool: { min: 0, max: 4 }, acquireConnectionTimeout: 5000,
  // Connection failures reach the demo as rejected queries; knex would also print each retry.
  log: { warn(message: string) { if (!message.startsWith('Acquire connection error')) process.stderr.write(`knex: ${message}\n`); } },
});
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
redis.on('error', () => {}); // reported where a command fails
const reached = { database: false, redis: false };
let balancer: Balancer | undefined;
let cleaning: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    step('Cleanup');
    await Promise.all(processes.all.map(stopChild));
    await balancer?.close();
    try {
      if (!reached.database) {
        pass(`stopped ${processes.all.length} processes; nothing was written`);
        return;
      }
      const { tables, keys } = await removeRunData(knex, reached.redis ? redis : undefined, tablePrefix, redisPrefix);
      pass(`stopped ${processes.all.length} processes, dropped ${tables} tables ${tablePrefix}*, deleted ${keys} Redis key${keys === 1 ? '' : 's'} ${redisPrefix}*`);
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
// by tsx), and a second SIGINT without a listener would end the demo before it has cleaned up.
process.on('SIGINT', () => {
  if (cleaning) return;
  say('\nInterrupted: stopping everything.');
  void cleanUp().then(() => process.exit(130));
});

// ---- the demo ----

async function demo(): Promise<void> {
  say('express-m2m cluster demo: 2 issuer instances and 2 API instances on one PostgreSQL database,');
  say('behind a round-robin load balancer; 2 caller processes sharing one Redis token cache.');
  say(`  PostgreSQL ${redact(databaseUrl)} (tables ${tablePrefix}*)`);
  say(`  Redis      ${redact(redisUrl)} (keys ${redisPrefix}*)`);

  step('Setup');
  await reachServices(knex, redis, { database: databaseUrl, redis: redisUrl }, reached).catch((err: unknown) => {
    throw new CheckFailed((err as Error).message);
  });
  const store = createKnexStore(knex, { tablePrefix });
  await store.migrate();
  await store.keys.ensure('ES256');
  const caller = await store.clients.create({
    clientId: CALLER_CLIENT, name: 'Nightly report (two processes)', scopes: ['reports:read'], audiences: [REPORTS_AUDIENCE],
  });
  const probe = await store.clients.create({
    clientId: PROBE_CLIENT, name: 'Cluster demo checks', scopes: ['reports:read'], audiences: [REPORTS_AUDIENCE],
  });
  probeAuthorization = `Basic ${Buffer.from(`${encodeURIComponent(PROBE_CLIENT)}:${encodeURIComponent(probe.clientSecret)}`).toString('base64')}`;
  const lister = await store.clients.create({ clientId: LISTER_CLIENT, name: 'The APIs\' revocation lists', scopes: [REVOCATIONS_SCOPE], audiences: [REPORTS_AUDIENCE] });
  const retired = await store.clients.create({ clientId: DISABLED_CLIENT, name: 'A client to retire', scopes: ['reports:read'], audiences: [REPORTS_AUDIENCE] });
  const [firstKey] = await store.keys.list();
  pass(`database migrated (as a deploy step would), first signing key ${short(firstKey?.kid)}, clients ${CALLER_CLIENT}, ${PROBE_CLIENT}, ${LISTER_CLIENT}, ${DISABLED_CLIENT}`);

  balancer = await startBalancer();
  const issuerUrl = `${balancer.url}/oauth`;
  pass(`load balancer on ${balancer.url}: round robin, a request that cannot reach one instance goes to the other`);

  const issuerEnv = { DATABASE_URL: databaseUrl, TABLE_PREFIX: tablePrefix, ISSUER_URL: issuerUrl, REDIS_URL: redisUrl, REDIS_PREFIX: redisPrefix };
  // The APIs fetch nothing before their first request: they start beside the issuers.
  const starting = [
    ...['issuer-1', 'issuer-2'].map((name) => startChild(name, 'issuer-node.ts', issuerEnv)),
    ...['api-1', 'api-2'].map((name) => startChild(name, 'api-node.ts', {
      ISSUER_URL: issuerUrl, API_NAME: name, LISTER_CLIENT_ID: LISTER_CLIENT, LISTER_SECRET: lister.clientSecret, REVOCATION_INTERVAL: String(REVOCATION_INTERVAL),
    })),
  ].map(listening);
  // Awaited below, in two groups: a failure in one group must not leave the other unhandled.
  for (const child of starting) child.catch(() => {});
  const issuers = await Promise.all(starting.slice(0, 2));
  const [issuer1, issuer2] = issuers as [Child, Child];
  balancer.setBackends(issuers.map((i) => i.port));
  const direct = (issuer: Child) => `http://127.0.0.1:${issuer.port}/oauth`;
  const nameOfPort = (port: number) => issuers.find((i) => i.port === port)?.name ?? String(port);
  pass(`issuer-1 on :${issuer1.port} and issuer-2 on :${issuer2.port}, both with issuer ${issuerUrl} (keyCacheTtl 1 s)`);

  const apis = await Promise.all(starting.slice(2));
  pass(`api-1 on :${apis[0]?.port} and api-2 on :${apis[1]?.port}, trusting ${issuerUrl} (JWKS discovered through the balancer)`);

  // The callers start now, so that their start overlaps (a) and (b); they wait for a command to call.
  const callerEnv = {
    ISSUER_URL: issuerUrl, API_URLS: apis.map((a) => `http://127.0.0.1:${a.port}`).join(','), REDIS_URL: redisUrl,
    REDIS_PREFIX: redisPrefix, CLIENT_ID: CALLER_CLIENT, CLIENT_SECRET: caller.clientSecret,
  };
  const callers = ['caller-1', 'caller-2'].map((name) => startChild(name, 'caller-node.ts', { ...callerEnv, CALLER_NAME: name }));

  /** Checks that a token is accepted by both APIs. */
  async function acceptedByBoth(token: IssuedToken): Promise<{ ok: boolean; text: string }> {
    const answers = await Promise.all(apis.map((api) => callApi(api.port, token.token)));
    const ok = answers.every((a, i) => a.status === 200 && a.api === apis[i]?.name && a.token === token.fp);
    return { ok, text: answers.map((a, i) => `${apis[i]?.name} ${a.status}`).join(', ') };
  }

  // (a)
  step('(a) Tokens from either issuer instance verify on either API instance');
  const early: IssuedToken[] = [];
  for (const issuer of issuers) {
    const token = await requestToken(direct(issuer));
    early.push(token);
    const { ok, text } = await acceptedByBoth(token);
    check(ok && token.iss === issuerUrl,
      `${issuer.name} issued token ${token.fp} (kid ${short(token.kid)}, iss ${token.iss}): ${text}`);
  }
  const [jwks1, jwks2] = await Promise.all(issuers.map((i) => jwksKids(direct(i))));
  check(JSON.stringify(jwks1) === JSON.stringify(jwks2), `both instances publish the same JWKS: ${jwks1?.map(short).join(', ')}`,
    `issuer-1: ${jwks1?.join(', ')}; issuer-2: ${jwks2?.join(', ')}`);
  summary.a = { tokens: early.map((t, i) => ({ issuer: issuers[i]?.name, fingerprint: t.fp, kid: t.kid })), accepted: true };

  // (b)
  step('(b) A key rotated on the shared database reaches both instances, no restart');
  const { stdout } = await promisify(execFile)(process.execPath,
    ['--import', 'tsx', CLI, 'keys', 'rotate', '--activate-after', String(ACTIVATE_AFTER), '--table-prefix', tablePrefix, '--json'],
    { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl } });
  const rotated = (JSON.parse(stdout) as { key: { kid: string; activatesAt: string; state: string } }).key;
  const activatesAt = Date.parse(rotated.activatesAt);
  pass(`express-m2m keys rotate --activate-after ${ACTIVATE_AFTER}: key ${short(rotated.kid)}, ${rotated.state}, signs from ${rotated.activatesAt}`);
  const published = await until('both instances publish the new key', 10_000, async () => {
    const sets = await Promise.all(issuers.map((i) => jwksKids(direct(i))));
    return sets.every((s) => s.includes(rotated.kid)) ? sets : undefined;
  });
  check(true, `both instances publish ${short(rotated.kid)} (JWKS: ${published[0]?.map(short).join(', ')})`);
  const rotatedTokens: IssuedToken[] = [];
  for (const issuer of issuers) {
    const token = await until(`${issuer.name} signs with the new key`, Math.max(0, activatesAt - Date.now()) + 15_000, async () => {
      const t = await requestToken(direct(issuer));
      return t.kid === rotated.kid ? t : undefined;
    });
    rotatedTokens.push(token);
    const { ok, text } = await acceptedByBoth(token);
    check(ok, `after activation ${issuer.name} signs with ${short(rotated.kid)}: token ${token.fp} accepted, ${text}`);
  }
  const old = early[0] as IssuedToken;
  const oldAnswer = await acceptedByBoth(old);
  check(oldAnswer.ok, `token ${old.fp}, signed by ${short(old.kid)} before the rotation, is still accepted: ${oldAnswer.text}`);
  summary.b = {
    newKid: rotated.kid, activateAfter: ACTIVATE_AFTER,
    tokens: rotatedTokens.map((t, i) => ({ issuer: issuers[i]?.name, fingerprint: t.fp, kid: t.kid })), acceptedByBothApis: true,
  };

  // (c)
  step(`(c) Two caller processes, ${CALLS_PER_CALLER} concurrent calls each, one Redis cache: one token`);
  await Promise.all(callers.map((c) => c.next('ready')));
  const issuedBefore = await Promise.all(issuers.map((i) => issuedTo(i, CALLER_CLIENT)));
  pass('caller-1 and caller-2 ready (separate processes); the go goes to both at once');
  for (const c of callers) c.send({ cmd: 'burst', calls: CALLS_PER_CALLER });
  const bursts = await Promise.all(callers.map((c) => c.next('burst')));
  const issuedAfter = await Promise.all(issuers.map((i) => issuedTo(i, CALLER_CLIENT)));
  const sources = callers.map((c) => c.drain('token.fetched').map((m) => String(m.source)));
  for (const [i, c] of callers.entries()) {
    const b = bursts[i] as Message;
    const byApi = b.byApi as Record<string, number>;
    const from = sources[i]?.join(', ') === 'endpoint' ? 'the token endpoint' : sources[i]?.join(', ') === 'cache' ? 'the Redis cache' : `[${sources[i]?.join(', ')}]`;
    check(b.ok === CALLS_PER_CALLER && b.calls === CALLS_PER_CALLER,
      `${c.name}: ${String(b.ok)}/${String(b.calls)} calls answered 200 (api-1 ${byApi['api-1'] ?? 0}, api-2 ${byApi['api-2'] ?? 0}); its token came from ${from}`,
      `failures: ${JSON.stringify(b.failures)}`);
  }
  const tokensSeen = [...new Set(bursts.flatMap((b) => b.tokens as string[]))];
  const kidsSeen = [...new Set(bursts.flatMap((b) => b.kids as string[]))];
  check(tokensSeen.length === 1, `the APIs saw one token from both callers: ${tokensSeen.join(', ')} (kid ${kidsSeen.map(short).join(', ')})`);
  const issuedDelta = issuedAfter.map((n, i) => n - (issuedBefore[i] ?? 0));
  const issuedTotal = issuedDelta.reduce((a, b) => a + b, 0);
  const endpointFetches = sources.flat().filter((s) => s === 'endpoint').length;
  check(issuedTotal === 1 && endpointFetches === 1,
    `token.issued to ${CALLER_CLIENT} across both issuer instances: ${issuedTotal} (issuer-1 ${issuedDelta[0]}, issuer-2 ${issuedDelta[1]})`,
    `token requests made by the callers: ${endpointFetches}`);
  summary.c = {
    callers: callers.length, callsPerCaller: CALLS_PER_CALLER, ok: bursts.reduce((n, b) => n + Number(b.ok), 0),
    distinctTokens: tokensSeen.length, tokensIssued: issuedTotal,
    issuedBy: Object.fromEntries(issuers.map((i, k) => [i.name, issuedDelta[k]])),
    tokenSources: Object.fromEntries(callers.map((c, k) => [c.name, sources[k]])),
  };

  // (d)
  step('(d) Stopping one issuer instance fails no request the other can serve');
  const firstToken = tokensSeen[0];
  const balancerBefore = balancer.stats();
  const issued2Before = await issuedTo(issuer2, CALLER_CLIENT);
  for (const c of callers) c.send({ cmd: 'stream' });
  // The demo's own stream through the balancer: token, JWKS and metadata requests in turn.
  const probeResults: { status: number; afterStop: boolean }[] = [];
  let probing = true;
  let issuerStopped = false;
  const probeTargets = [
    () => fetch(`${issuerUrl}/token`, {
      method: 'POST', headers: { authorization: probeAuthorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    }),
    () => fetch(`${issuerUrl}/jwks.json`),
    () => fetch(`${balancer?.url ?? ''}/.well-known/oauth-authorization-server/oauth`),
  ];
  const probeWorkers = [0, 1].map(async (worker) => {
    for (let n = worker; probing; n += 2) {
      const afterStop = issuerStopped;
      let status: number;
      try {
        const res = await (probeTargets[n % probeTargets.length] as () => Promise<Response>)();
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 0;
      }
      probeResults.push({ status, afterStop });
      await sleep(10);
    }
  });
  const servedBy = (port: number) => (balancer?.stats().served[port] ?? 0) - (balancerBefore.served[port] ?? 0);
  await until('issuer-1 serves traffic through the balancer', 15_000, () => Promise.resolve(servedBy(issuer1.port) >= 5 ? true : undefined));
  pass(`steady traffic: caller-1 and caller-2 calling the APIs, and token/JWKS/metadata requests through the balancer (issuer-1 has served ${servedBy(issuer1.port)}, issuer-2 ${servedBy(issuer2.port)})`);

  issuer1.process.kill('SIGTERM');
  const exitCode = await issuer1.exited;
  issuerStopped = true;
  check(exitCode === 0, `issuer-1 stopped with SIGTERM mid-stream (exit ${exitCode}); issuer-2 is the only instance left`);

  for (const c of callers) c.drain('token.fetched');
  for (const c of callers) c.send({ cmd: 'invalidate' });
  await Promise.all(callers.map((c) => c.next('invalidated')));
  const refetched = await Promise.all(callers.map((c) => c.next('token.fetched', 20_000)));
  await until('the demo has sent 20 requests through the balancer since the stop', 15_000,
    () => Promise.resolve(probeResults.filter((r) => r.afterStop).length >= 20 ? true : undefined));
  for (const c of callers) c.send({ cmd: 'stop' });
  const streams = await Promise.all(callers.map((c) => c.next('stream')));
  probing = false;
  await Promise.all(probeWorkers);
  const issued2 = (await issuedTo(issuer2, CALLER_CLIENT)) - issued2Before;

  const newTokens = [...new Set(streams.flatMap((s) => (s.after as Message).tokens as string[]))];
  check(newTokens.length === 1 && newTokens[0] !== firstToken && issued2 === 1,
    `callers' tokens invalidated; the new token ${newTokens.join(', ')} was issued by issuer-2 (token.issued ${issued2}), fetched once for both callers (${refetched.map((m, i) => `${callers[i]?.name} from the ${m.source === 'endpoint' ? 'endpoint' : 'cache'}`).join(', ')})`,
    `new tokens seen: ${newTokens.join(', ')}; issued by issuer-2: ${issued2}`);
  for (const [i, c] of callers.entries()) {
    const s = streams[i] as Message;
    const after = s.after as Message;
    check(s.ok === s.calls && Number(after.calls) >= 1 && after.ok === after.calls,
      `${c.name}: ${String(s.ok)}/${String(s.calls)} calls answered 200, ${String(after.ok)} of them after the invalidation with the new token`,
      `failures: ${JSON.stringify(s.failures)}`);
  }
  const stats = balancer.stats();
  const probeOk = probeResults.filter((r) => r.status === 200).length;
  const probeAfter = probeResults.filter((r) => r.afterStop);
  const rerouted = Object.entries(stats.connectionErrors).filter(([key]) => key.startsWith(`${issuer1.port} `));
  const reroutedCount = rerouted.reduce((n, [, count]) => n + count, 0) - Object.entries(balancerBefore.connectionErrors)
    .filter(([key]) => key.startsWith(`${issuer1.port} `)).reduce((n, [, count]) => n + count, 0);
  check(probeOk === probeResults.length && stats.failed === 0,
    `balancer: ${probeOk}/${probeResults.length} token, JWKS and metadata requests answered 200, ${probeAfter.filter((r) => r.status === 200).length} of them after the stop`,
    `statuses: ${JSON.stringify(probeResults.filter((r) => r.status !== 200).slice(0, 10))}; 502s: ${stats.failed}`);
  check(reroutedCount >= 1,
    `balancer: ${reroutedCount} requests sent on to issuer-2 after a connection error from issuer-1 (${rerouted.map(([key, n]) => `${key.split(' ')[1]} ×${n}`).join(', ')})`);
  const servedTotal = Object.fromEntries(Object.entries(stats.served).map(([port, n]) => [nameOfPort(Number(port)), n]));
  summary.d = {
    stopped: 'issuer-1', exitCode,
    callerCalls: streams.reduce((n, s) => n + Number(s.calls), 0),
    callerFailures: streams.reduce((n, s) => n + Number(s.calls) - Number(s.ok), 0),
    callerCallsAfterInvalidation: streams.reduce((n, s) => n + Number((s.after as Message).calls), 0),
    newTokenIssuedBy: { 'issuer-2': issued2 },
    distinctNewTokens: newTokens.length,
    probeRequests: probeResults.length, probeRequestsAfterStop: probeAfter.length,
    probeFailures: probeResults.length - probeOk,
    balancerFailures: stats.failed, reroutedToIssuer2: reroutedCount, servedBy: servedTotal,
  };

  // (e)
  step(`(e) Taking tokens back: both APIs keep a copy of the revocation list, read every ${REVOCATION_INTERVAL} s`);
  summary.e = await revocationStep({
    issuerUrl, apis: apis.map((a) => ({ name: a.name, port: a.port })), check, pass,
    tokenFor: async (clientId, secret) => {
      const res = await fetch(`${issuerUrl}/token`, {
        method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }),
        headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      });
      return (await res.json() as { access_token: string }).access_token;
    },
    disableWithCli: async (clientId) => {
      await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, 'clients', 'disable', clientId, '--table-prefix', tablePrefix],
        { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl } });
    },
  }, { clientId: PROBE_CLIENT, secret: probe.clientSecret }, { secret: retired.clientSecret });
  summary.ok = true;
}

let code = 1;
try {
  await demo();
  code = 0;
} catch (err) {
  if (!(err instanceof CheckFailed) || !err.printed) say(`  ✗ ${err instanceof Error ? err.message : String(err)}`);
  summary.ok = false;
}
await cleanUp();
if (summary.ok !== true) code = 1;
const seconds = ((Date.now() - started) / 1000).toFixed(1);
summary.durationMs = Date.now() - started;
say();
say(`summary ${JSON.stringify(summary)}`);
say(code === 0 ? `✓ All checks passed in ${seconds} s.` : `✗ A check failed (${seconds} s).`);
process.exit(code);
