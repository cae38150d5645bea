// Resource-server throughput: requireScope() against express-oauth2-jwt-bearer, express-jwt +
// jwks-rsa, passport-jwt + jwks-rsa and a bare Express route.
//
//   npm run bench:guard            (builds, then runs this file)
//   npx tsx bench/guard.ts [--duration 10] [--warmup 3] [--connections 50] [--pool 4096] [--rounds 3] [--alg RS256,ES256] [--profile DIR]
//
// Each guard runs in its own child process (bench/guard-server.ts: an Express 5 app, GET /reports
// behind the guard, scope reports:read required, the same JSON answer); autocannon runs here and
// loads one at a time: a warm-up (discarded), then the measured run. The JWKS is served from this
// process on loopback and is fetched once per guard, during the checks before any load.
//
// Per algorithm (RS256 and ES256, keys generated here, tokens minted here with the same claims):
//   ceiling                 the bare route, no guard, requests carrying the same Authorization header
//   express-m2m repeated    one token sent again and again (a service caller reusing its token)
//   express-m2m fresh       a pool of --pool distinct tokens sent in turn; with the pool larger than
//                           the verified-token cache (1000 by default), every request misses the cache
//                           and is verified in full: the child counts its signature verifications
//                           and the count is printed next to the request count
//   peers                   the same token pool (none of them caches verified tokens)
//
// The rows are loaded in turn --rounds times (warm-up in the first round only) and the table shows
// medians: on a shared 2-core VM one 10 s run of the same server varies by 10-30%, and taking turns
// spreads background load over every row alike. `--profile DIR` records a CPU profile of each row's
// first measured run and prints a summary.
//
// Bars: a repeated token at >= 90% of the ceiling's req/s; a fresh token at >= 1.2x
// express-oauth2-jwt-bearer's. On a 2-core machine autocannon competes with the server for CPU:
// the same for every row, so the ratios hold; the absolute numbers are lower than on a machine
// where the load generator has cores of its own. "CPU µs/req" is the server process's own CPU
// time (all threads) per 2xx answer.
//
// Exit code: 0 whatever the bars say; 1 if any run saw a non-2xx answer or a connection error.
import { createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { summarizeProfile } from './cpu-profile.js';
import {
  AUDIENCE, ISSUER, REPORT, SCOPE, startGuardChild, type GuardAlgorithm, type GuardChild, type GuardKind,
} from './guard-support.js';

const USAGE = 'usage: npx tsx bench/guard.ts [--duration SECONDS] [--warmup SECONDS] [--connections N] [--pool N] [--rounds N] [--alg RS256,ES256] [--profile DIR]';

function integerOption(value: string | undefined, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

function parseOptions() {
  return parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      pool: { type: 'string', default: '4096' },
      rounds: { type: 'string', default: '3' },
      alg: { type: 'string', default: 'RS256,ES256' },
      profile: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }).values;
}
let args: ReturnType<typeof parseOptions>;
try {
  args = parseOptions();
} catch (err) {
  console.error(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const duration = integerOption(args.duration, 'duration', 1, 600);
const warmup = integerOption(args.warmup, 'warmup', 0, 600);
const connections = integerOption(args.connections, 'connections', 1, 1000);
const poolSize = integerOption(args.pool, 'pool', 1, 100_000);
const rounds = integerOption(args.rounds, 'rounds', 1, 20);
function algorithmsOption(value: string | undefined): GuardAlgorithm[] {
  const list = (value ?? '').split(',').filter((a) => a !== '');
  if (list.length === 0 || !list.every((a) => a === 'RS256' || a === 'ES256')) {
    console.error(`--alg must list RS256 and/or ES256\n${USAGE}`);
    process.exit(2);
  }
  return list as GuardAlgorithm[];
}
const algorithms = algorithmsOption(args.alg);
const profileDir = args.profile === undefined ? undefined : resolve(args.profile);
if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
const runStamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');

/** One row of the table. */
type Scenario = 'ceiling' | 'express-m2m repeated' | 'express-m2m fresh' | 'express-oauth2-jwt-bearer' | 'express-jwt' | 'passport-jwt';
const SCENARIOS: { scenario: Scenario; kind: GuardKind; fresh: boolean }[] = [
  { scenario: 'ceiling', kind: 'ceiling', fresh: false },
  { scenario: 'express-m2m repeated', kind: 'express-m2m', fresh: false },
  { scenario: 'express-m2m fresh', kind: 'express-m2m', fresh: true },
  { scenario: 'express-oauth2-jwt-bearer', kind: 'express-oauth2-jwt-bearer', fresh: true },
  { scenario: 'express-jwt', kind: 'express-jwt', fresh: true },
  { scenario: 'passport-jwt', kind: 'passport-jwt', fresh: true },
];

interface Result {
  scenario: Scenario;
  alg: GuardAlgorithm;
  rps: number;
  p99: number;
  ok: number;
  cpuPerRequest: number;
  /** express-m2m only: signature verifications during the measured run. */
  verified: number | undefined;
}

const children: GuardChild[] = [];
const profiles: string[] = [];
let running: autocannon.Instance | undefined;
let jwksServer: Server | undefined;
let cleaned: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    running?.stop();
    await Promise.allSettled(children.splice(0).map((c) => c.stop()));
    if (jwksServer) {
      jwksServer.closeAllConnections();
      await new Promise<void>((done) => jwksServer?.close(() => done()));
    }
  })();
  return cleaned;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the servers`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

// ---- keys, JWKS, tokens ----

interface SigningKey {
  alg: GuardAlgorithm;
  kid: string;
  privateKey: KeyObject;
}

const keys: Record<GuardAlgorithm, SigningKey> = {
  RS256: { alg: 'RS256', kid: randomUUID(), privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey },
  ES256: { alg: 'ES256', kid: randomUUID(), privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey },
};
const jwksBody = JSON.stringify({
  keys: Object.values(keys).map((k) => ({ ...createPublicKey(k.privateKey).export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })),
});

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An RFC 9068 access token, signed in the thread pool (so a pool of RSA tokens uses both cores). */
function mint(key: SigningKey, overrides: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const input = `${encode({ alg: key.alg, typ: 'at+jwt', kid: key.kid })}.${encode({
    iss: ISSUER, sub: 'bench-client', aud: AUDIENCE, exp: now + 3600, iat: now, jti: randomUUID(), client_id: 'bench-client', scope: SCOPE,
    ...overrides,
  })}`;
  const options = key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' as const } : { key: key.privateKey };
  return new Promise((done, fail) => {
    sign('sha256', Buffer.from(input), options, (err, signature) => (err ? fail(err) : done(`${input}.${signature.toString('base64url')}`)));
  });
}

async function mintPool(key: SigningKey, size: number): Promise<string[]> {
  const pool: string[] = [];
  for (let i = 0; i < size; i += 256) {
    pool.push(...await Promise.all(Array.from({ length: Math.min(256, size - i) }, () => mint(key))));
  }
  return pool;
}

async function startJwks(): Promise<string> {
  jwksServer = createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(jwksBody);
  });
  await new Promise<void>((done) => jwksServer?.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
}

// ---- checks and load ----

/** One request with a valid token, one with a tampered signature, one without the scope: 200, 401, 403. */
async function check(child: GuardChild, token: string, key: SigningKey): Promise<void> {
  const send = async (t: string) => {
    const res = await fetch(child.url, { headers: { authorization: `Bearer ${t}` } });
    return { status: res.status, body: await res.text() };
  };
  const problems: string[] = [];
  const ok = await send(token);
  if (ok.status !== 200 || ok.body !== JSON.stringify(REPORT)) problems.push(`valid token: ${ok.status} ${ok.body.slice(0, 200)}`);
  if (child.spec.kind !== 'ceiling') {
    const [h, p, s = ''] = token.split('.');
    const flipped = Buffer.from(s, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    const tampered = await send(`${h}.${p}.${flipped.toString('base64url')}`);
    if (tampered.status !== 401) problems.push(`tampered token: ${tampered.status}, not 401`);
    const noScope = await send(await mint(key, { scope: 'reports:other' }));
    if (noScope.status !== 403) problems.push(`token without the scope: ${noScope.status}, not 403`);
  }
  if (problems.length > 0) throw new Error(`${child.label} does not guard correctly:\n  ${problems.join('\n  ')}`);
}

function load(url: string, seconds: number, token: string, pool: string[] | undefined): Promise<autocannon.Result> {
  let next = 0;
  return new Promise((done, fail) => {
    running = autocannon({
      url,
      connections,
      duration: seconds,
      headers: { authorization: `Bearer ${token}` },
      ...(pool ? {
        requests: [{
          setupRequest: (request: autocannon.Request) => {
            const t = pool[next++ % pool.length] as string;
            return { ...request, headers: { ...request.headers, authorization: `Bearer ${t}` } };
          },
        }],
      } : {}),
    }, (err, result) => {
      running = undefined;
      if (err) fail(err instanceof Error ? err : new Error(String(err)));
      else done(result);
    });
  });
}

function checkClean(label: string, result: autocannon.Result, phase: string): void {
  if (result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && result['2xx'] > 0) return;
  throw new Error(`${label} ${phase}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, `
    + `${result['2xx']} 2xx (status codes ${JSON.stringify(result.statusCodeStats ?? {})}). The numbers would be meaningless.`);
}

async function measure(child: GuardChild, scenario: Scenario, alg: GuardAlgorithm, token: string, pool: string[] | undefined,
  round: number): Promise<Result> {
  process.stdout.write(`  ${`${scenario} ${alg}`.padEnd(32)} `);
  if (round === 1 && warmup > 0) {
    process.stdout.write(`warm-up ${warmup} s ... `);
    checkClean(child.label, await load(child.url, warmup, token, pool), 'warm-up');
  }
  process.stdout.write(`measuring ${duration} s ... `);
  const profiling = profileDir !== undefined && round === 1;
  if (profiling) await child.startProfile();
  const verifiedBefore = await child.verifications();
  const cpuBefore = await child.cpuUsage();
  const result = await load(child.url, duration, token, pool);
  const cpuAfter = await child.cpuUsage();
  const verifiedAfter = await child.verifications();
  if (profiling && profileDir !== undefined) {
    const file = join(profileDir, `guard-${scenario.replace(/ /g, '-')}-${alg}-${runStamp}.cpuprofile`);
    await child.stopProfile(file);
    profiles.push(file);
  }
  checkClean(child.label, result, 'measured run');
  const verified = verifiedBefore === undefined || verifiedAfter === undefined ? undefined : verifiedAfter - verifiedBefore;
  const row: Result = {
    scenario, alg, rps: result.requests.mean, p99: result.latency.p99, ok: result['2xx'],
    cpuPerRequest: (cpuAfter - cpuBefore) / result['2xx'], verified,
  };
  console.log(`${row.rps.toFixed(0)} req/s${verified === undefined ? '' : `, ${verified} signature verifications for ${result['2xx']} requests`}`);
  return row;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** One row from its runs: medians of req/s, p99 and CPU, sums of requests and verifications, the req/s range. */
function summarize(runs: Result[]): Result & { range: string } {
  const first = runs[0] as Result;
  const rpsValues = runs.map((r) => r.rps);
  const verified = runs.every((r) => r.verified !== undefined) ? runs.reduce((n, r) => n + (r.verified ?? 0), 0) : undefined;
  return {
    scenario: first.scenario, alg: first.alg, rps: median(rpsValues), p99: median(runs.map((r) => r.p99)),
    ok: runs.reduce((n, r) => n + r.ok, 0), cpuPerRequest: median(runs.map((r) => r.cpuPerRequest)), verified,
    range: `${Math.min(...rpsValues).toFixed(0)}-${Math.max(...rpsValues).toFixed(0)}`,
  };
}

function printTable(rows: (Result & { range: string })[]): void {
  const ceiling = new Map(rows.filter((r) => r.scenario === 'ceiling').map((r) => [r.alg, r.rps]));
  const header = ['guard', 'alg', 'req/s', 'p99 ms', 'CPU µs/req', 'of ceiling', 'verified/req', ...(rounds > 1 ? ['req/s range'] : [])];
  const cells = rows.map((r) => [
    r.scenario, r.alg, r.rps.toFixed(0), r.p99.toFixed(1), r.cpuPerRequest.toFixed(0),
    `${((r.rps / (ceiling.get(r.alg) ?? Number.NaN)) * 100).toFixed(0)}%`,
    r.verified === undefined ? '' : (r.verified / r.ok).toFixed(3),
    ...(rounds > 1 ? [r.range] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => c.map((v, i) => (i < 2 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

async function main(): Promise<void> {
  console.log(`express-m2m guard benchmark: ${connections} connections, ${warmup} s warm-up + ${duration} s measured per row, `
    + `token pool of ${poolSize}${rounds > 1 ? `, ${rounds} rounds (medians shown)` : ''}; node ${process.version}, ${availableParallelism()} CPUs (autocannon shares them with the server under load)\n`);
  const jwksUri = await startJwks();
  const rows: (Result & { range: string })[] = [];
  for (const alg of algorithms) {
    const key = keys[alg];
    process.stdout.write(`${alg}: minting 1 + ${poolSize} tokens ... `);
    const token = await mint(key);
    const pool = await mintPool(key, poolSize);
    console.log(`${Buffer.byteLength(token)}-byte tokens`);
    const started: { scenario: Scenario; child: GuardChild; fresh: boolean }[] = [];
    for (const { scenario, kind, fresh } of SCENARIOS) {
      const child = await startGuardChild({ kind, alg, jwksUri }, `${scenario} ${alg}`);
      children.push(child);
      started.push({ scenario, child, fresh });
    }
    for (const { child } of started) await check(child, token, key);
    console.log('  every guard answers 200 to a valid token, 401 to a tampered one, 403 without the scope');
    const runs = new Map<Scenario, Result[]>();
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) console.log(`  round ${round} of ${rounds}`);
      for (const { scenario, child, fresh } of started) {
        const run = await measure(child, scenario, alg, token, fresh ? pool : undefined, round);
        runs.set(scenario, [...(runs.get(scenario) ?? []), run]);
      }
    }
    for (const { scenario } of started) rows.push(summarize(runs.get(scenario) ?? []));
    await Promise.all(started.map(({ child }) => child.stop()));
    children.splice(0);
    console.log('');
  }

  printTable(rows);
  console.log('');
  const rps = (scenario: Scenario, alg: GuardAlgorithm) => rows.find((r) => r.scenario === scenario && r.alg === alg)?.rps ?? Number.NaN;
  for (const alg of algorithms) {
    const bars = [
      { name: `${alg} repeated token / bare Express`, value: rps('express-m2m repeated', alg) / rps('ceiling', alg), bar: 0.9, percent: true },
      { name: `${alg} fresh token / express-oauth2-jwt-bearer`, value: rps('express-m2m fresh', alg) / rps('express-oauth2-jwt-bearer', alg), bar: 1.2, percent: false },
      { name: `${alg} fresh token / express-jwt`, value: rps('express-m2m fresh', alg) / rps('express-jwt', alg), bar: undefined, percent: false },
      { name: `${alg} fresh token / passport-jwt`, value: rps('express-m2m fresh', alg) / rps('passport-jwt', alg), bar: undefined, percent: false },
    ];
    for (const b of bars) {
      const shown = b.percent ? `${(b.value * 100).toFixed(0)}%` : `${b.value.toFixed(2)}x`;
      const verdict = b.bar === undefined ? '' : `bar >= ${b.percent ? `${b.bar * 100}%` : `${b.bar.toFixed(1)}x`}  ${b.value >= b.bar ? 'PASS' : 'MISS'}`;
      console.log(`${b.name.padEnd(46)} ${shown.padStart(6)}   ${verdict}`);
    }
  }
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error(`\nBENCHMARK FAILED: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 1;
}
await cleanup();
for (const file of profiles) console.log(`\n${summarizeProfile(file, 20)}`);
process.exit(exitCode);
