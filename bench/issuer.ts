// Token-endpoint throughput: express-m2m against node-oidc-provider and a bare Express route, and
// express-m2m again with an OpenTelemetry SDK installed ("+otel": bench/otel-sdk.ts, spans and
// metrics recorded, exported to nowhere), with the ratio of the two.
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
// `--pin` puts this process (autocannon) on CPU 0 and the server under load, every thread of it, on
// CPU 1 (taskset). Unpinned, the scheduler shares two cores between autocannon and the server's
// threads, and a server with more runnable threads (a libuv pool of four signing at once) takes a
// larger share from the load generator; pinned, each server has exactly one core, so tokens/s
// compares the work per token, and rounds vary less (on a shared VM they still vary).
//
// `--profile DIR` adds, in the first round, a profiled run of each server before its measured run
// (node:inspector in the child, so start-up and warm-up are left out; the profiler slows the
// server, so that run is not counted) and prints a summary of each; the .cpuprofile files stay in
// DIR (open them in Chrome DevTools).
//
// Exit code: 0 whatever the bars say (the numbers are information); 1 if any run saw a non-2xx
// response or a connection error, since a benchmark of error responses is worthless.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUDIENCE, SCOPE, TOKEN_REQUEST_BODY, basic, createBenchRun, describeCpus, decodeJwt, parseBenchOptions, printBars, printTable, startChild, summarize,
  type BenchAlgorithm, type ChildServer, type Run, type ServerKind, type Summary,
} from './support.js';

const USAGE = 'usage: npx tsx bench/issuer.ts [--duration SECONDS] [--warmup SECONDS] [--connections N] [--rounds N] [--profile DIR] [--pin]';

const options = parseBenchOptions(USAGE, 1, {}, true);
const { duration, warmup, connections, rounds } = options;
const bench = createBenchRun(options);
const tmp = mkdtempSync(join(tmpdir(), 'm2m-bench-'));
bench.onCleanup(() => rmSync(tmp, { recursive: true, force: true }));

async function start(kind: ServerKind, alg: BenchAlgorithm, extra: { bodyBytes?: number; otel?: boolean } = {}): Promise<ChildServer> {
  const dbFile = join(tmp, `${alg.toLowerCase()}${extra.otel ? '-otel' : ''}.sqlite`);
  return bench.adopt(await startChild({ kind, alg, ...(kind === 'express-m2m' ? { dbFile } : {}), ...extra }));
}

/** A row's name in the table: the server kind, and "+otel" when an OpenTelemetry SDK records in it. */
const rowName = (server: ChildServer): string => `${server.spec.kind}${server.spec.otel ? ' +otel' : ''}`;

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
  console.log(`  ${server.label.padEnd(26)} 200, ${bytes}-byte body${summary}`);
  return bytes;
}

async function measure(server: ChildServer, round: number): Promise<Run> {
  process.stdout.write(`  ${server.label.padEnd(26)} `);
  const run = await bench.measure(server, {
    url: server.tokenUrl, method: 'POST', headers: requestHeaders(server), body: TOKEN_REQUEST_BODY,
  }, round, `${rowName(server).replace(' +', '-')}-${server.spec.alg}`);
  console.log(`${run.rps.toFixed(0)} tokens/s, ${run.cpuPerRequest.toFixed(0)} µs CPU/token`);
  return run;
}

/** A server and its runs summarised. */
type Row = Summary & { server: ChildServer };

function printRows(rows: Row[]): void {
  printTable(['server', 'alg', 'tokens/s', 'p99 ms', 'CPU µs/token', ...(rounds > 1 ? ['tokens/s range'] : [])], rows.map((r) => [
    rowName(r.server), r.server.spec.alg, r.rps.toFixed(0), r.p99.toFixed(1), r.cpuPerRequest.toFixed(0),
    ...(rounds > 1 ? [`${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}`] : []),
  ]));
}

async function main(): Promise<void> {
  console.log(`express-m2m issuer benchmark: ${connections} connections, ${warmup} s warm-up + ${duration} s measured per server`
    + `${rounds > 1 ? `, ${rounds} rounds (medians shown)` : ''}; node ${process.version}, `
    + `${describeCpus(options, 'the server under load')}\n`);

  console.log('starting servers (one process each) ...');
  const [m2mEs, m2mEsOtel, oidcEs, m2mRs, m2mRsOtel, oidcRs] = await Promise.all([
    start('express-m2m', 'ES256'), start('express-m2m', 'ES256', { otel: true }), start('oidc-provider', 'ES256'),
    start('express-m2m', 'RS256'), start('express-m2m', 'RS256', { otel: true }), start('oidc-provider', 'RS256'),
  ]);
  console.log('checking one token request against each ...');
  const tokenBytes = await verify(m2mEs);
  for (const server of [m2mEsOtel, oidcEs, m2mRs, m2mRsOtel, oidcRs]) await verify(server);
  const ceilingChild = await start('ceiling', 'ES256', { bodyBytes: tokenBytes });
  // The ceiling gets exactly express-m2m's request: same Authorization header, same body.
  const ceiling: ChildServer = { ...ceilingChild, clientId: m2mEs.clientId, clientSecret: m2mEs.clientSecret };
  const ceilingBytes = await verify(ceiling);
  if (ceilingBytes !== tokenBytes) throw new Error(`ceiling answers ${ceilingBytes} bytes, express-m2m ${tokenBytes}`);

  // Each +otel row right after the row it is compared with, so that both meet the same background load.
  const order = [m2mEs, m2mEsOtel, oidcEs, ceiling, m2mRs, m2mRsOtel, oidcRs];
  const runs = new Map<ChildServer, Run[]>(order.map((s) => [s, []]));
  for (let round = 1; round <= rounds; round++) {
    console.log(rounds > 1 ? `\nround ${round} of ${rounds}: one server at a time ...` : '\nloading one server at a time ...');
    for (const server of order) runs.get(server)?.push(await measure(server, round));
  }

  const rows: Row[] = order.map((server) => ({ ...summarize(runs.get(server) ?? []), server }));
  console.log('');
  printRows(rows);
  const row = (kind: ServerKind, alg: BenchAlgorithm, otel = false): Row | undefined =>
    rows.find((r) => r.server.spec.kind === kind && r.server.spec.alg === alg && (r.server.spec.otel ?? false) === otel);
  const ratio = (a: Row | undefined, b: Row | undefined): number => (a && b ? a.rps / b.rps : Number.NaN);
  const m2mEsRow = row('express-m2m', 'ES256');
  console.log('');
  printBars([
    { name: 'ES256 express-m2m / oidc-provider', value: ratio(m2mEsRow, row('oidc-provider', 'ES256')), bar: 1.3, percent: false },
    { name: 'ES256 express-m2m / bare ceiling', value: ratio(m2mEsRow, row('ceiling', 'ES256')), percent: true },
    { name: 'RS256 express-m2m / oidc-provider', value: ratio(row('express-m2m', 'RS256'), row('oidc-provider', 'RS256')), bar: 1.0, percent: false },
    { name: 'ES256 express-m2m, OpenTelemetry SDK installed / not', value: ratio(row('express-m2m', 'ES256', true), m2mEsRow), percent: true },
    { name: 'RS256 express-m2m, OpenTelemetry SDK installed / not', value: ratio(row('express-m2m', 'RS256', true), row('express-m2m', 'RS256')), percent: true },
  ]);
  // Tokens per CPU-second, the same comparison with the load generator and the rest of the
  // machine taken out: information, not a bar.
  const efficiency = (a: Row | undefined, b: Row | undefined): string =>
    (a && b ? `${(b.cpuPerRequest / a.cpuPerRequest).toFixed(2)}x` : 'n/a');
  console.log(`\ntokens per server CPU-second, express-m2m relative to: oidc-provider ES256 ${efficiency(m2mEsRow, row('oidc-provider', 'ES256'))}, `
    + `ceiling ${efficiency(m2mEsRow, row('ceiling', 'ES256'))}, `
    + `oidc-provider RS256 ${efficiency(row('express-m2m', 'RS256'), row('oidc-provider', 'RS256'))}; `
    + `with an OpenTelemetry SDK relative to without: ES256 ${efficiency(row('express-m2m', 'ES256', true), m2mEsRow)}, `
    + `RS256 ${efficiency(row('express-m2m', 'RS256', true), row('express-m2m', 'RS256'))}`);
}

await bench.finish(main, (file) => (file.includes('express-m2m') ? 25 : 12));
