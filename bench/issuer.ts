// Token-endpoint throughput: express-m2m against node-oidc-provider and a bare Express route.
//
//   npx tsx bench/issuer.ts [--duration 10] [--warmup 3] [--connections 50] [--rounds 1] [--profile DIR]
//
// Each server runs in its own child process (its own event loop; only one is under load at a
// time, the others sit idle). autocannon runs here, in the parent, and loads one server at a time:
// a warm-up (discarded), then the measured run, POST /token with grant_type=client_credentials,
// scope=reports:read and client_secret_basic. Every issuer answers with an RFC 9068 JWT for the
// same audience and scope, so they do comparable work. With --rounds N the servers are loaded in
// turn N times (warm-up in the first round only) and the table shows medians, which evens out
// changes in background load.
//
// Caveat: on a 2-core machine autocannon competes with the server for CPU. That cost is the same
// for all three servers, so the ratios are meaningful; the absolute tokens/s are lower than on a
// machine where the load generator has cores of its own. Any other load on the machine moves the
// numbers too; the "CPU µs/token" column (the server process's own CPU time, all threads, divided
// by the tokens it issued) is much less sensitive to that than tokens/s.
//
// `--profile DIR` records a CPU profile of each server during its first measured run
// (node:inspector in the child, so start-up and warm-up are left out) and prints a summary of
// each; the .cpuprofile files stay in DIR (open them in Chrome DevTools). Profiling slows every
// server somewhat.
//
// Exit code: 0 whatever the bars say (the numbers are information); 1 if any run saw a non-2xx
// response or a connection error, since a benchmark of error responses is worthless.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { summarizeProfile } from './cpu-profile.js';
import {
  AUDIENCE, SCOPE, TOKEN_REQUEST_BODY, basic, decodeJwt, startChild, type BenchAlgorithm, type ChildServer, type ServerKind,
} from './support.js';

const USAGE = 'usage: npx tsx bench/issuer.ts [--duration SECONDS] [--warmup SECONDS] [--connections N] [--rounds N] [--profile DIR]';

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
      rounds: { type: 'string', default: '1' },
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
const rounds = integerOption(args.rounds, 'rounds', 1, 20);
const profileDir = args.profile === undefined ? undefined : resolve(args.profile);
const runStamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');

/** One measured run of one server. */
interface Run {
  rps: number;
  p99: number;
  ok: number;
  non2xx: number;
  /** Server CPU time (all threads) per 2xx response, in microseconds. */
  cpuPerToken: number;
}

const tmp = mkdtempSync(join(tmpdir(), 'm2m-bench-'));
if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
const children: ChildServer[] = [];
/** Profiles written by this run, in order. */
const profiles: string[] = [];
let running: autocannon.Instance | undefined;
let cleaned: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    running?.stop();
    await Promise.allSettled(children.map((c) => c.stop()));
    rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaned;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the servers`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

async function start(kind: ServerKind, alg: BenchAlgorithm, extra: { bodyBytes?: number } = {}): Promise<ChildServer> {
  const child = await startChild({
    kind, alg, ...(kind === 'express-m2m' ? { dbFile: join(tmp, `${alg.toLowerCase()}.sqlite`) } : {}), ...extra,
  });
  children.push(child);
  return child;
}

function requestHeaders(server: ChildServer): Record<string, string> {
  return { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(server.clientId, server.clientSecret) };
}

/**
 * Sends one token request and checks it fully before any load: 200, no-store, a JSON token
 * response, and (for the issuers) a JWT signed with the expected algorithm for the expected
 * audience and scope. Returns the body's byte size.
 */
async function verify(server: ChildServer): Promise<number> {
  const res = await fetch(server.tokenUrl, { method: 'POST', headers: requestHeaders(server), body: TOKEN_REQUEST_BODY });
  const text = await res.text();
  const problems: string[] = [];
  if (res.status !== 200) problems.push(`status ${res.status}: ${text.slice(0, 300)}`);
  if (!/no-store/.test(res.headers.get('cache-control') ?? '')) problems.push('no Cache-Control: no-store');
  if (!/^application\/json/.test(res.headers.get('content-type') ?? '')) problems.push(`content-type ${res.headers.get('content-type')}`);
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    problems.push('body is not JSON');
  }
  if (typeof body.access_token !== 'string') problems.push('no access_token');
  if (String(body.token_type).toLowerCase() !== 'bearer') problems.push(`token_type ${String(body.token_type)}`);
  if (body.scope !== SCOPE) problems.push(`scope ${String(body.scope)}`);
  let summary = '';
  if (server.spec.kind !== 'ceiling' && typeof body.access_token === 'string') {
    try {
      const { header, payload } = decodeJwt(body.access_token);
      if (header.alg !== server.spec.alg) problems.push(`JWT alg ${String(header.alg)}`);
      if (header.typ !== 'at+jwt') problems.push(`JWT typ ${String(header.typ)}`);
      if (payload.aud !== AUDIENCE) problems.push(`JWT aud ${JSON.stringify(payload.aud)}`);
      if (payload.scope !== SCOPE) problems.push(`JWT scope ${JSON.stringify(payload.scope)}`);
      summary = `\n    header ${JSON.stringify(header)}\n    claims ${Object.keys(payload).join(', ')}`;
    } catch (err) {
      problems.push(`access_token is not a JWT: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`${server.label} does not answer a valid token response:\n  ${problems.join('\n  ')}`);
  const bytes = Buffer.byteLength(text);
  console.log(`  ${server.label.padEnd(20)} 200, ${bytes}-byte body${summary}`);
  return bytes;
}

function load(server: ChildServer, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolveRun, rejectRun) => {
    running = autocannon({
      url: server.tokenUrl,
      method: 'POST',
      connections,
      duration: seconds,
      headers: requestHeaders(server),
      body: TOKEN_REQUEST_BODY,
    }, (err, result) => {
      running = undefined;
      if (err) rejectRun(err instanceof Error ? err : new Error(String(err)));
      else resolveRun(result);
    });
  });
}

/** Throws (loudly) when a run saw anything but 2xx responses. */
function checkClean(server: ChildServer, result: autocannon.Result, phase: string): void {
  if (result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && result['2xx'] > 0) return;
  const codes = JSON.stringify(result.statusCodeStats ?? {});
  throw new Error(`${server.label} ${phase}: ${result.non2xx} non-2xx responses, ${result.errors} errors, `
    + `${result.timeouts} timeouts, ${result['2xx']} 2xx (status codes ${codes}). The numbers would be meaningless.`);
}

async function measure(server: ChildServer, round: number): Promise<Run> {
  process.stdout.write(`  ${server.label.padEnd(20)} `);
  if (round === 1 && warmup > 0) {
    process.stdout.write(`warm-up ${warmup} s ... `);
    checkClean(server, await load(server, warmup), 'warm-up');
  }
  process.stdout.write(`measuring ${duration} s ... `);
  const profiling = profileDir !== undefined && round === 1;
  // The profile covers the measured run only: no start-up, no warm-up, no idle time.
  if (profiling) await server.startProfile();
  const cpuBefore = await server.cpuUsage();
  const result = await load(server, duration);
  const cpuAfter = await server.cpuUsage();
  if (profiling) {
    const file = join(profileDir, `${server.spec.kind}-${server.spec.alg}-${runStamp}.cpuprofile`);
    await server.stopProfile(file);
    profiles.push(file);
  }
  checkClean(server, result, 'measured run');
  const run: Run = {
    rps: result.requests.mean, p99: result.latency.p99, ok: result['2xx'], non2xx: result.non2xx,
    cpuPerToken: (cpuAfter - cpuBefore) / result['2xx'],
  };
  console.log(`${run.rps.toFixed(0)} tokens/s, ${run.cpuPerToken.toFixed(0)} µs CPU/token`);
  return run;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** A server's runs summarised: medians, and the sum of non-2xx responses. */
interface Summary {
  server: ChildServer;
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p99: number;
  non2xx: number;
  cpuPerToken: number;
}

function summarize(server: ChildServer, runs: Run[]): Summary {
  const rps = runs.map((r) => r.rps);
  return {
    server, rps: median(rps), rpsMin: Math.min(...rps), rpsMax: Math.max(...rps), p99: median(runs.map((r) => r.p99)),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0), cpuPerToken: median(runs.map((r) => r.cpuPerToken)),
  };
}

function printTable(rows: Summary[]): void {
  const header = ['server', 'alg', 'tokens/s', 'p99 ms', 'non-2xx', 'CPU µs/token', ...(rounds > 1 ? ['tokens/s range'] : [])];
  const cells = rows.map((r) => [
    r.server.spec.kind, r.server.spec.alg, r.rps.toFixed(0), r.p99.toFixed(1), String(r.non2xx), r.cpuPerToken.toFixed(0),
    ...(rounds > 1 ? [`${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}`] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => c.map((v, i) => (i < 2 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

async function main(): Promise<void> {
  console.log(`express-m2m issuer benchmark: ${connections} connections, ${warmup} s warm-up + ${duration} s measured per server`
    + `${rounds > 1 ? `, ${rounds} rounds (medians shown)` : ''}; node ${process.version}, ${availableParallelism()} CPUs `
    + '(autocannon shares them with the server under load)\n');

  console.log('starting servers (one process each) ...');
  const [m2mEs, oidcEs, m2mRs, oidcRs] = await Promise.all([
    start('express-m2m', 'ES256'), start('oidc-provider', 'ES256'), start('express-m2m', 'RS256'), start('oidc-provider', 'RS256'),
  ]);
  console.log('checking one token request against each ...');
  const tokenBytes = await verify(m2mEs);
  await verify(oidcEs);
  await verify(m2mRs);
  await verify(oidcRs);
  const ceilingChild = await start('ceiling', 'ES256', { bodyBytes: tokenBytes });
  // The ceiling gets exactly express-m2m's request: same Authorization header, same body.
  const ceiling: ChildServer = { ...ceilingChild, clientId: m2mEs.clientId, clientSecret: m2mEs.clientSecret };
  const ceilingBytes = await verify(ceiling);
  if (ceilingBytes !== tokenBytes) throw new Error(`ceiling answers ${ceilingBytes} bytes, express-m2m ${tokenBytes}`);

  const order = [m2mEs, oidcEs, ceiling, m2mRs, oidcRs];
  const runs = new Map<ChildServer, Run[]>(order.map((s) => [s, []]));
  for (let round = 1; round <= rounds; round++) {
    console.log(rounds > 1 ? `\nround ${round} of ${rounds}: one server at a time ...` : '\nloading one server at a time ...');
    for (const server of order) runs.get(server)?.push(await measure(server, round));
  }

  const rows = order.map((s) => summarize(s, runs.get(s) ?? []));
  console.log('');
  printTable(rows);
  const row = (kind: ServerKind, alg: BenchAlgorithm): Summary | undefined =>
    rows.find((r) => r.server.spec.kind === kind && r.server.spec.alg === alg);
  const ratio = (a: Summary | undefined, b: Summary | undefined): number => (a && b ? a.rps / b.rps : Number.NaN);
  const m2mEsRow = row('express-m2m', 'ES256');
  const bars = [
    { name: 'ES256 express-m2m / oidc-provider', value: ratio(m2mEsRow, row('oidc-provider', 'ES256')), bar: 1.5, percent: false },
    { name: 'ES256 express-m2m / bare ceiling ', value: ratio(m2mEsRow, row('ceiling', 'ES256')), bar: 0.75, percent: true },
    { name: 'RS256 express-m2m / oidc-provider', value: ratio(row('express-m2m', 'RS256'), row('oidc-provider', 'RS256')), bar: 1.0, percent: false },
  ];
  console.log('');
  for (const b of bars) {
    const shown = b.percent ? `${(b.value * 100).toFixed(0)}%` : `${b.value.toFixed(2)}x`;
    const wanted = b.percent ? `${(b.bar * 100).toFixed(0)}%` : `${b.bar.toFixed(1)}x`;
    console.log(`${b.name}  ${shown.padStart(6)}   bar >= ${wanted.padEnd(4)}  ${b.value >= b.bar ? 'PASS' : 'MISS'}`);
  }
  // Tokens per CPU-second, the same comparison with the load generator and the rest of the
  // machine taken out: information, not a bar.
  const efficiency = (a: Summary | undefined, b: Summary | undefined): string =>
    (a && b ? `${(b.cpuPerToken / a.cpuPerToken).toFixed(2)}x` : 'n/a');
  console.log(`\ntokens per server CPU-second, express-m2m relative to: oidc-provider ES256 ${efficiency(m2mEsRow, row('oidc-provider', 'ES256'))}, `
    + `ceiling ${efficiency(m2mEsRow, row('ceiling', 'ES256'))}, `
    + `oidc-provider RS256 ${efficiency(row('express-m2m', 'RS256'), row('oidc-provider', 'RS256'))}`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error(`\nBENCHMARK FAILED: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 1;
}
await cleanup();
for (const file of profiles) console.log(`\n${summarizeProfile(file, file.includes('express-m2m') ? 25 : 12)}`);
process.exit(exitCode);
