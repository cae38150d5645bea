// Caller overhead: requests per second through tokenClient's `client.fetch` (a cached token
// attached to every request) against plain `fetch` with a fixed `Authorization: Bearer` header,
// to the same local API; and the axios adapter (`client.axios(axios.create())`) against an axios
// instance with a fixed header.
//
//   npm run bench:caller           (builds, then runs this file)
//   npx tsx bench/caller.ts [--duration 10] [--warmup 3] [--connections 50] [--rounds 3] [--slices 5] [--profile DIR]
//
// The API is a bare node:http server in a child process (bench/caller-target.ts: GET /reports, a
// 39-byte JSON answer when the request carries exactly the benchmark's token, else 401), so that
// it never shares an event loop with the load. The token endpoint runs in this process and issues
// one opaque token of JWT size with a day's expires_in: the client's first call fetches it before
// any load, and every measured run must make zero token requests (checked after each slice; the
// count is printed). The client is the compiled package (dist/, npm run build), as users run it.
//
// The load runs here: --connections async loops, each sending one request, reading the whole
// body and sending the next. Every request carries `accept: application/json` too, so that
// client.fetch merges its header into the caller's. Rows:
//   fetch                    fetch(url, { headers: { accept, authorization: 'Bearer <token>' } })
//   client.fetch             client.fetch(url, { headers: { accept } })
//   client.fetch (Headers)   client.fetch(url, { headers }) with one shared Headers instance
//   axios                    axios.create({ headers: { Authorization } }).get(url, { headers: { accept } })
//   client.axios             client.axios(axios.create()).get(url, { headers: { accept } })
// After a warm-up of --warmup seconds per row, each of --rounds rounds gives every row --duration
// seconds, cut into --slices slices that take turns (every other pass in reverse order): on a
// shared 2-core VM throughput drifts by 10-30% within a minute, and a row measured 40 s after its
// baseline would carry that drift into the ratio; 2 s slices side by side cancel most of it. The
// table shows medians over the rounds. "load CPU µs/req" is this process's CPU time per request:
// the cost of the calling side, where the client's extra work lands; "target CPU µs/req" is the
// API's. `--profile DIR` records a CPU profile of this process (the load) during each row's first
// slice and prints a summary.
//
// Bar (issue 4): client.fetch at >= 95% of plain fetch's req/s. The Headers row and the axios
// ratio are reported without a bar. On a 2-core machine the load and the API share the CPU: the
// same for every row, so the ratios hold.
//
// Exit code: 0 whatever the bar says; 1 if any request failed (a non-200, a short body, a network
// error), the API's count disagrees with the load's, or a measured run requested a token.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import axios from 'axios';
import type * as M2M from '../lib/index.js';
import type { CallerTargetInfo, CallerTargetSpec } from './caller-target.js';
import { summarizeProfile } from './cpu-profile.js';
import {
  closeServer, createBenchRun, forkChild, integerOption, listenOnLoopback, median, parseBenchOptions, printBars, printTable, type ChildHandle,
} from './support.js';

// The compiled package (npm run build), as users run it.
const { tokenClient } = (await import(new URL('../dist/lib/index.js', import.meta.url).href)) as typeof M2M;

const USAGE = 'usage: npx tsx bench/caller.ts [--duration SECONDS] [--warmup SECONDS] [--connections N] [--rounds N] [--slices N] [--profile DIR]';

const options = parseBenchOptions(USAGE, 3, { slices: { type: 'string', default: '5' } });
const { duration, warmup, connections, rounds, profileDir, runStamp } = options;
const slices = integerOption(options.extra.slices, 'slices', 1, 100, USAGE);
const sliceSeconds = duration / slices;
const bench = createBenchRun(options);

/** One row of the table. */
type RowName = 'fetch' | 'client.fetch' | 'client.fetch (Headers)' | 'axios' | 'client.axios';

/** One request, body read in full; throws unless the answer is the API's 200 with its body. */
type Send = () => Promise<void>;

/** One measured (or warm-up) run of one row. */
interface Run {
  rps: number;
  p99: number;
  ok: number;
  failed: number;
  firstError: unknown;
  /** This process's CPU time per request, µs. */
  loadCpu: number;
  /** The API's CPU time per request, µs. */
  targetCpu: number;
}

// ---- the token endpoint (in this process: it is called once) ----

/** The size of an RS256 RFC 9068 token with a few claims, so the header costs what a real one does. */
const TOKEN = [40, 260, 342].map((n) => randomBytes(n).toString('base64url')).join('.');
const CLIENT_ID = 'bench-caller';
const CLIENT_SECRET = randomBytes(24).toString('base64url');

async function startTokenEndpoint(): Promise<{ tokenUrl: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      if (req.method !== 'POST' || req.url !== '/token' || form.get('grant_type') !== 'client_credentials') {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_request' }));
        return;
      }
      requests++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' })
        .end(JSON.stringify({ access_token: TOKEN, token_type: 'Bearer', expires_in: 86_400, scope: 'reports:read' }));
    });
  });
  const port = await listenOnLoopback(server);
  bench.onCleanup(() => closeServer(server));
  return { tokenUrl: `http://127.0.0.1:${port}/token`, requests: () => requests };
}

// ---- load ----

/** What one slice of load adds to a row's run. */
interface Slice {
  latencies: number[];
  failed: number;
  firstError: unknown;
  /** Seconds from the first request to the last answer. */
  elapsed: number;
  /** CPU time of this process and of the API, µs. */
  loadCpu: number;
  targetCpu: number;
  /** How far the API's count of 200 answers moved. */
  served: number;
}

/** --connections loops, each sending one request after the other, for `seconds`. */
async function load(send: Send, seconds: number, target: ChildHandle<CallerTargetSpec, CallerTargetInfo>): Promise<Slice> {
  const latencies: number[] = [];
  let failed = 0;
  let firstError: unknown;
  const servedBefore = (await target.count()) ?? Number.NaN;
  const targetBefore = await target.cpuUsage();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const sent = performance.now();
      try {
        await send();
        latencies.push(performance.now() - sent);
      } catch (err) {
        failed++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const targetCpu = (await target.cpuUsage()) - targetBefore;
  const served = ((await target.count()) ?? Number.NaN) - servedBefore;
  return { latencies, failed, firstError, elapsed, loadCpu: cpu.user + cpu.system, targetCpu, served };
}

/** A row's run: its slices of one round put together. */
function runOf(slices: readonly Slice[]): Run {
  const latencies = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const ok = latencies.length;
  const sum = (pick: (s: Slice) => number) => slices.reduce((n, s) => n + pick(s), 0);
  return {
    rps: ok / sum((s) => s.elapsed), p99: latencies[Math.max(0, Math.ceil(ok * 0.99) - 1)] ?? Number.NaN, ok,
    failed: sum((s) => s.failed), firstError: slices.find((s) => s.failed > 0)?.firstError,
    loadCpu: sum((s) => s.loadCpu) / ok, targetCpu: sum((s) => s.targetCpu) / ok,
  };
}

/** Throws when a run saw a failed request: the numbers would be meaningless. */
function checkClean(row: RowName, run: Run, phase: string): void {
  if (run.failed === 0 && run.ok > 0) return;
  const cause = run.firstError instanceof Error ? run.firstError.message : String(run.firstError);
  throw new Error(`${row} ${phase}: ${run.failed} failed requests of ${run.ok + run.failed} (first: ${cause})`);
}

/** Starts this process's CPU profiler; the returned function stops it and writes `file`. */
async function profileThisProcess(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
  };
}

// ---- the rows ----

function rowsFor(url: string, bodyLength: number, client: M2M.TokenClient): { name: RowName; send: Send }[] {
  const check = (status: number, length: number): void => {
    if (status !== 200 || length !== bodyLength) throw new Error(`status ${status}, ${length}-byte body`);
  };
  const authorization = `Bearer ${TOKEN}`;
  const sharedHeaders = new Headers({ accept: 'application/json' });
  const plainAxios = axios.create({ headers: { Authorization: authorization } });
  // The adapter installs its interceptors on the instance it is given and returns it.
  const clientAxios = client.axios(axios.create());
  const axiosLength = (data: unknown): number => Buffer.byteLength(JSON.stringify(data));
  return [
    {
      name: 'fetch',
      send: async () => {
        const res = await fetch(url, { headers: { accept: 'application/json', authorization } });
        check(res.status, (await res.arrayBuffer()).byteLength);
      },
    },
    {
      name: 'client.fetch',
      send: async () => {
        const res = await client.fetch(url, { headers: { accept: 'application/json' } });
        check(res.status, (await res.arrayBuffer()).byteLength);
      },
    },
    {
      name: 'client.fetch (Headers)',
      send: async () => {
        const res = await client.fetch(url, { headers: sharedHeaders });
        check(res.status, (await res.arrayBuffer()).byteLength);
      },
    },
    {
      name: 'axios',
      send: async () => {
        const res = await plainAxios.get(url, { headers: { accept: 'application/json' } });
        check(res.status, axiosLength(res.data));
      },
    },
    {
      name: 'client.axios',
      send: async () => {
        const res = await clientAxios.get(url, { headers: { accept: 'application/json' } });
        check(res.status, axiosLength(res.data));
      },
    },
  ];
}

async function main(): Promise<void> {
  console.log(`express-m2m caller benchmark: ${connections} concurrent loops, ${warmup} s warm-up + ${duration} s measured per row `
    + `and round in ${slices} slices, ${rounds} round${rounds > 1 ? 's (medians shown)' : ''}; node ${process.version}, ${availableParallelism()} CPUs (the load shares them with the API)\n`);
  const endpoint = await startTokenEndpoint();
  const target = bench.adopt(await forkChild<CallerTargetSpec, CallerTargetInfo>('caller-target.ts', { token: TOKEN }, 'caller target'));
  const { url, body } = target.info;
  const bodyLength = Buffer.byteLength(body);
  const client = tokenClient({ tokenUrl: endpoint.tokenUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'reports:read' });
  const rows = rowsFor(url, bodyLength, client);

  // Checks: the API refuses a request without the token; the first client call fetches the token.
  const bare = await fetch(url);
  await bare.arrayBuffer();
  if (bare.status !== 401) throw new Error(`the API answers ${bare.status} without a token, not 401`);
  for (const row of rows) {
    try {
      await row.send();
    } catch (err) {
      throw new Error(`${row.name} fails before the load: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  const tokenRequests = endpoint.requests();
  if (tokenRequests !== 1) throw new Error(`the checks made ${tokenRequests} token requests, not 1`);
  console.log(`every row gets 200 and the ${bodyLength}-byte body; the API answers 401 without a token; `
    + `1 token request (the client's first call), a ${TOKEN.length}-character token\n`);

  if (warmup > 0) {
    process.stdout.write(`warm-up ${warmup} s per row ...`);
    for (const row of rows) {
      const slice = await load(row.send, warmup, target);
      checkClean(row.name, runOf([slice]), 'warm-up');
      process.stdout.write(` ${row.name}`);
    }
    console.log('\n');
  }

  const runs = new Map<RowName, Run[]>(rows.map((r) => [r.name, []]));
  let served = 0;
  let sliceCount = 0;
  for (let round = 1; round <= rounds; round++) {
    process.stdout.write(`round ${round} of ${rounds}: ${slices} slice${slices > 1 ? 's' : ''} of ${sliceSeconds} s per row `);
    const taken = new Map<RowName, Slice[]>(rows.map((r) => [r.name, []]));
    for (let k = 0; k < slices; k++) {
      // Every other slice in reverse, so that no row always follows the same one.
      for (const row of sliceCount % 2 === 0 ? rows : [...rows].reverse()) {
        const profileFile = profileDir !== undefined && round === 1 && k === 0
          ? join(profileDir, `caller-${row.name.replace(/\W+/g, '-')}-${runStamp}.cpuprofile`) : undefined;
        const stopProfile = profileFile === undefined ? undefined : await profileThisProcess(profileFile);
        const slice = await load(row.send, sliceSeconds, target);
        await stopProfile?.();
        checkClean(row.name, runOf([slice]), 'measured run');
        if (slice.served !== slice.latencies.length) {
          throw new Error(`${row.name}: the API served ${slice.served} requests, the load saw ${slice.latencies.length}`);
        }
        if (endpoint.requests() !== tokenRequests) throw new Error(`${row.name}: ${endpoint.requests() - tokenRequests} token requests during the load`);
        served += slice.served;
        taken.get(row.name)?.push(slice);
      }
      sliceCount++;
      process.stdout.write('.');
    }
    console.log('');
    for (const row of rows) {
      const run = runOf(taken.get(row.name) ?? []);
      runs.get(row.name)?.push(run);
      console.log(`  ${row.name.padEnd(24)} ${run.rps.toFixed(0).padStart(6)} req/s, p99 ${run.p99.toFixed(1)} ms, ${run.loadCpu.toFixed(0)} µs CPU/req here`);
    }
  }
  console.log(`\ntoken requests: ${tokenRequests} before the load, ${endpoint.requests() - tokenRequests} during `
    + `${rounds * slices * rows.length} measured slices (${served} requests, each counted by the API)\n`);

  const summary = (name: RowName) => {
    const list = runs.get(name) ?? [];
    const rps = list.map((r) => r.rps);
    return {
      rps: median(rps), min: Math.min(...rps), max: Math.max(...rps), p99: median(list.map((r) => r.p99)),
      loadCpu: median(list.map((r) => r.loadCpu)), targetCpu: median(list.map((r) => r.targetCpu)),
    };
  };
  const baselineOf = (name: RowName): RowName => (name === 'axios' || name === 'client.axios' ? 'axios' : 'fetch');
  printTable(['row', 'baseline', 'req/s', 'p99 ms', 'load CPU µs/req', 'target CPU µs/req', 'of baseline', ...(rounds > 1 ? ['req/s range'] : [])],
    rows.map(({ name }) => {
      const s = summary(name);
      const base = summary(baselineOf(name));
      return [
        name, name === baselineOf(name) ? '' : baselineOf(name), s.rps.toFixed(0), s.p99.toFixed(1), s.loadCpu.toFixed(1), s.targetCpu.toFixed(1),
        `${((s.rps / base.rps) * 100).toFixed(1)}%`, ...(rounds > 1 ? [`${s.min.toFixed(0)}-${s.max.toFixed(0)}`] : []),
      ];
    }));
  console.log('');
  // Each round's pair of runs, for how much the ratio moves from round to round.
  const perRound = (name: RowName) => (runs.get(name) ?? []).map((r, i) => r.rps / (runs.get(baselineOf(name))?.[i]?.rps ?? Number.NaN));
  for (const name of ['client.fetch', 'client.fetch (Headers)', 'client.axios'] as const) {
    console.log(`${`${name} / ${baselineOf(name)}`.padEnd(34)} per round: ${perRound(name).map((v) => `${(v * 100).toFixed(1)}%`).join(', ')}`);
  }
  console.log('');
  const ratio = (name: RowName) => summary(name).rps / summary(baselineOf(name)).rps;
  printBars([
    { name: 'client.fetch / fetch (medians)', value: ratio('client.fetch'), bar: 0.95, percent: true },
    { name: 'client.fetch (Headers) / fetch', value: ratio('client.fetch (Headers)'), percent: true },
    { name: 'client.axios / axios', value: ratio('client.axios'), percent: true },
  ]);
  if (profileDir !== undefined) {
    for (const { name } of rows) {
      console.log(`\n${summarizeProfile(join(profileDir, `caller-${name.replace(/\W+/g, '-')}-${runStamp}.cpuprofile`), 20)}`);
    }
  }
}

await bench.finish(main, () => 20);
