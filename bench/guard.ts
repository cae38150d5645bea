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
//   express-m2m ... +otel   the same two rows with an OpenTelemetry SDK installed (bench/otel-sdk.ts:
//                           spans and metrics recorded, exported to nowhere)
//   express-m2m ... +revocations  the same two rows with the `revocations` option: every request
//                           checked against a local copy of a revocation list of 1000 entries
//                           (served from this process like the JWKS, read every 10 s)
//   peers                   the same token pool (none of them caches verified tokens)
//
// The rows are loaded in turn --rounds times (warm-up in the first round only) and the table shows
// medians: on a shared 2-core VM one 10 s run of the same server varies by 10-30%, and taking turns
// spreads background load over every row alike. `--profile DIR` adds a profiled run of each row in
// the first round (not counted: the profiler slows the server) and prints a summary.
//
// `--pin` puts this process (autocannon) on CPU 0 and the server under load, every thread of it, on
// CPU 1 (taskset). Unpinned, the scheduler shares two cores between autocannon and the server's
// threads, and a server with more runnable threads (a libuv pool of four signing at once) takes a
// larger share from the load generator; pinned, each server has exactly one core, so tokens/s
// compares the work per token, and rounds vary less (on a shared VM they still vary).
//
// Bars: a repeated token at >= 90% of the ceiling's req/s; a fresh token at >= 1.2x
// express-oauth2-jwt-bearer's. On a 2-core machine autocannon competes with the server for CPU:
// the same for every row, so the ratios hold; the absolute numbers are lower than on a machine
// where the load generator has cores of its own. "CPU µs/req" is the server process's own CPU
// time (all threads) per 2xx answer.
//
// Exit code: 0 whatever the bars say; 1 if any run saw a non-2xx answer or a connection error.
import { createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type autocannon from 'autocannon';
import {
  AUDIENCE, ISSUER, REPORT, SCOPE, startGuardChild, type GuardAlgorithm, type GuardChild, type GuardKind,
} from './guard-support.js';
import {
  closeServer, createBenchRun, describeCpus, integerOption, listenOnLoopback, parseBenchOptions, printBars, printTable, summarize, usageError,
  type Run, type Summary,
} from './support.js';

const USAGE = 'usage: npx tsx bench/guard.ts [--duration SECONDS] [--warmup SECONDS] [--connections N] [--pool N] [--rounds N] [--alg RS256,ES256] [--profile DIR] [--pin]';

const options = parseBenchOptions(USAGE, 3, { pool: { type: 'string', default: '4096' }, alg: { type: 'string', default: 'RS256,ES256' } }, true);
const { duration, warmup, connections, rounds } = options;
const poolSize = integerOption(options.extra.pool, 'pool', 1, 100_000, USAGE);
const algorithms = ((list: string[]): GuardAlgorithm[] => {
  if (list.length > 0 && list.every((a): a is GuardAlgorithm => a === 'RS256' || a === 'ES256')) return list;
  return usageError('--alg must list RS256 and/or ES256', USAGE);
})(options.extra.alg.split(',').filter((a) => a !== ''));
const bench = createBenchRun(options);

/** One row of the table. */
type Scenario = 'ceiling' | 'express-m2m repeated' | 'express-m2m fresh' | 'express-m2m repeated +otel' | 'express-m2m fresh +otel'
  | 'express-m2m repeated +revocations' | 'express-m2m fresh +revocations'
  | 'express-oauth2-jwt-bearer' | 'express-jwt' | 'passport-jwt';
const SCENARIOS: { scenario: Scenario; kind: GuardKind; fresh: boolean; otel?: boolean; revocations?: boolean }[] = [
  { scenario: 'ceiling', kind: 'ceiling', fresh: false },
  { scenario: 'express-m2m repeated', kind: 'express-m2m', fresh: false },
  { scenario: 'express-m2m fresh', kind: 'express-m2m', fresh: true },
  { scenario: 'express-m2m repeated +otel', kind: 'express-m2m', fresh: false, otel: true },
  { scenario: 'express-m2m fresh +otel', kind: 'express-m2m', fresh: true, otel: true },
  { scenario: 'express-m2m repeated +revocations', kind: 'express-m2m', fresh: false, revocations: true },
  { scenario: 'express-m2m fresh +revocations', kind: 'express-m2m', fresh: true, revocations: true },
  { scenario: 'express-oauth2-jwt-bearer', kind: 'express-oauth2-jwt-bearer', fresh: true },
  { scenario: 'express-jwt', kind: 'express-jwt', fresh: true },
  { scenario: 'passport-jwt', kind: 'passport-jwt', fresh: true },
];

/** A row of the table: its runs summarised. */
type Row = Summary & { scenario: Scenario; alg: GuardAlgorithm };

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

/**
 * A revocation list of 1000 entries (in the wire format of the issuer's GET /revocations), none
 * of them a token of the benchmark: half revoked jtis, half client cutoffs of other clients.
 */
const revocationList = JSON.stringify({
  cursor: '1000', more: false,
  revocations: Array.from({ length: 1000 }, (_, i) => (i % 2 === 0
    ? { type: 'token', client_id: 'bench-client', jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 3600 }
    : { type: 'client', client_id: `other-${i}`, revoked_before: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 86_400 })),
});

/** Serves the JWKS and the revocation list (past the cursor: nothing new). */
async function startJwks(): Promise<{ jwksUri: string; revocations: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(jwksBody);
    } else if (url.pathname === '/revocations') {
      const body = url.searchParams.has('since') ? '{"cursor":"1000","more":false,"revocations":[]}' : revocationList;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  const port = await listenOnLoopback(server);
  bench.onCleanup(() => closeServer(server));
  return { jwksUri: `http://127.0.0.1:${port}/jwks.json`, revocations: `http://127.0.0.1:${port}/revocations` };
}

// ---- checks and load ----

/** One request with a valid token, one with a tampered signature, one without the scope: 200, 401, 403. */
async function check(child: GuardChild, token: string, key: SigningKey): Promise<void> {
  const send = async (t: string) => {
    const res = await fetch(child.info.url, { headers: { authorization: `Bearer ${t}` } });
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

/** The same Authorization header on every request, or the pool's tokens in turn. */
function requestFor(url: string, token: string, pool: string[] | undefined): Omit<autocannon.Options, 'connections' | 'duration'> {
  let next = 0;
  return {
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(pool ? {
      requests: [{
        setupRequest: (request: autocannon.Request) => {
          const t = pool[next++ % pool.length] as string;
          return { ...request, headers: { ...request.headers, authorization: `Bearer ${t}` } };
        },
      }],
    } : {}),
  };
}

async function measure(child: GuardChild, scenario: Scenario, alg: GuardAlgorithm, token: string, pool: string[] | undefined,
  round: number): Promise<Run> {
  process.stdout.write(`  ${`${scenario} ${alg}`.padEnd(32)} `);
  const run = await bench.measure(child, requestFor(child.info.url, token, pool), round, `guard-${scenario.replace(/ /g, '-')}-${alg}`);
  console.log(`${run.rps.toFixed(0)} req/s${run.counted === undefined ? '' : `, ${run.counted} signature verifications for ${run.ok} requests`}`);
  return run;
}

function printRows(rows: Row[]): void {
  const ceiling = new Map(rows.filter((r) => r.scenario === 'ceiling').map((r) => [r.alg, r.rps]));
  printTable(['guard', 'alg', 'req/s', 'p99 ms', 'CPU µs/req', 'of ceiling', 'verified/req', ...(rounds > 1 ? ['req/s range'] : [])],
    rows.map((r) => [
      r.scenario, r.alg, r.rps.toFixed(0), r.p99.toFixed(1), r.cpuPerRequest.toFixed(0),
      `${((r.rps / (ceiling.get(r.alg) ?? Number.NaN)) * 100).toFixed(0)}%`,
      r.counted === undefined ? '' : (r.counted / r.ok).toFixed(3),
      ...(rounds > 1 ? [`${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}`] : []),
    ]));
}

async function main(): Promise<void> {
  console.log(`express-m2m guard benchmark: ${connections} connections, ${warmup} s warm-up + ${duration} s measured per row, `
    + `token pool of ${poolSize}${rounds > 1 ? `, ${rounds} rounds (medians shown)` : ''}; node ${process.version}, ${describeCpus(options, 'the server under load')}\n`);
  const { jwksUri, revocations: revocationUri } = await startJwks();
  const rows: Row[] = [];
  for (const alg of algorithms) {
    const key = keys[alg];
    process.stdout.write(`${alg}: minting 1 + ${poolSize} tokens ... `);
    const token = await mint(key);
    const pool = await mintPool(key, poolSize);
    console.log(`${Buffer.byteLength(token)}-byte tokens`);
    const started: { scenario: Scenario; child: GuardChild; fresh: boolean }[] = [];
    for (const { scenario, kind, fresh, otel, revocations } of SCENARIOS) {
      const spec = { kind, alg, jwksUri, ...(otel ? { otel } : {}), ...(revocations ? { revocations: revocationUri } : {}) };
      const child = bench.adopt(await startGuardChild(spec, `${scenario} ${alg}`));
      started.push({ scenario, child, fresh });
    }
    for (const { child } of started) await check(child, token, key);
    console.log('  every guard answers 200 to a valid token, 401 to a tampered one, 403 without the scope');
    const runs = new Map<Scenario, Run[]>();
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) console.log(`  round ${round} of ${rounds}`);
      for (const { scenario, child, fresh } of started) {
        const run = await measure(child, scenario, alg, token, fresh ? pool : undefined, round);
        runs.set(scenario, [...(runs.get(scenario) ?? []), run]);
      }
    }
    for (const { scenario } of started) rows.push({ ...summarize(runs.get(scenario) ?? []), scenario, alg });
    await Promise.all(started.map(({ child }) => child.stop()));
    console.log('');
  }

  printRows(rows);
  console.log('');
  const rps = (scenario: Scenario, alg: GuardAlgorithm) => rows.find((r) => r.scenario === scenario && r.alg === alg)?.rps ?? Number.NaN;
  // The same two bars read off the server's CPU time per request (all threads): requests per
  // CPU-second, which background load on a shared machine moves far less than req/s.
  const cpu = (scenario: Scenario, alg: GuardAlgorithm) => rows.find((r) => r.scenario === scenario && r.alg === alg)?.cpuPerRequest ?? Number.NaN;
  printBars(algorithms.flatMap((alg) => {
    const fresh = rps('express-m2m fresh', alg);
    return [
      { name: `${alg} repeated token / bare Express`, value: rps('express-m2m repeated', alg) / rps('ceiling', alg), bar: 0.9, percent: true },
      { name: `${alg} fresh token / express-oauth2-jwt-bearer`, value: fresh / rps('express-oauth2-jwt-bearer', alg), bar: 1.2, percent: false },
      { name: `${alg} repeated token / bare Express, per CPU-second`, value: cpu('ceiling', alg) / cpu('express-m2m repeated', alg), bar: 0.9, percent: true },
      { name: `${alg} fresh token / express-oauth2-jwt-bearer, per CPU-second`, value: cpu('express-oauth2-jwt-bearer', alg) / cpu('express-m2m fresh', alg), bar: 1.2, percent: false },
      { name: `${alg} fresh token / express-jwt`, value: fresh / rps('express-jwt', alg), percent: false },
      { name: `${alg} fresh token / passport-jwt`, value: fresh / rps('passport-jwt', alg), percent: false },
      { name: `${alg} repeated token, OpenTelemetry SDK installed / not`, value: rps('express-m2m repeated +otel', alg) / rps('express-m2m repeated', alg), percent: true },
      { name: `${alg} fresh token, OpenTelemetry SDK installed / not`, value: rps('express-m2m fresh +otel', alg) / rps('express-m2m fresh', alg), percent: true },
      { name: `${alg} repeated token, revocations on / off`, value: rps('express-m2m repeated +revocations', alg) / rps('express-m2m repeated', alg), bar: 0.95, percent: true },
      { name: `${alg} fresh token, revocations on / off`, value: rps('express-m2m fresh +revocations', alg) / rps('express-m2m fresh', alg), bar: 0.95, percent: true },
    ];
  }));
}

await bench.finish(main, () => 20);
