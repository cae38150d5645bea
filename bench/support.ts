// Shared by the benchmarks (bench/issuer.ts, bench/guard.ts) and the servers they fork: command-line
// options, the child-process protocol (start, CPU usage, a counter, CPU profiles, stop), the
// measured autocannon run, medians and the printed table.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { summarizeProfile } from './cpu-profile.js';

/** The token-endpoint servers under test (bench/issuer.ts). */
export type ServerKind = 'express-m2m' | 'oidc-provider' | 'ceiling';

/** The signing algorithms the benchmarks compare. */
export type BenchAlgorithm = 'ES256' | 'RS256';

/** What every server grants: the same scope and audience, so the tokens carry the same claims. */
export const SCOPE = 'reports:read';
export const AUDIENCE = 'https://reports.internal';
/** Token lifetime in seconds, the same for every issuer (express-m2m's default). */
export const TOKEN_LIFETIME = 300;

/** `Authorization: Basic` per RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export function basic(clientId: string, clientSecret: string): string {
  const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

/** The token request body every server receives (the ceiling parses it too). */
export const TOKEN_REQUEST_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE }).toString();

/** No-store headers of RFC 6749 §5.1, as express-m2m sends them. */
export const NO_STORE_HEADERS: Readonly<Record<string, string>> = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/** Decodes the header and payload of a compact JWS without verifying it (for display only). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${parts.length} parts`);
  const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
  return { header: header ?? {}, payload: payload ?? {} };
}

// ---- command line ----

/** The options every benchmark takes. */
export interface BenchOptions {
  /** Seconds of each measured run. */
  duration: number;
  /** Seconds of the warm-up before each server's first measured run (0: none). */
  warmup: number;
  /** autocannon's concurrent connections. */
  connections: number;
  /** How many times every row is measured; the table shows medians. */
  rounds: number;
  /** Where the CPU profiles of each row's profiled run go (created), or undefined for none. */
  profileDir: string | undefined;
  /** A timestamp for file names, the same for the whole run. */
  runStamp: string;
  /**
   * `--pin`: the load generator (this process) on CPU 0 and the server under load on CPU 1, every
   * thread of it (taskset), so that each server has one core of its own whatever threads it starts.
   */
  pin: boolean;
  /** The CPUs this process could use at start (before `--pin` narrowed them). */
  cpus: number;
}

/** `--pin` needs two CPUs and taskset: true when both are there; a usage error (exit 2) otherwise. */
function canPin(usage: string): true {
  if (availableParallelism() < 2) usageError('--pin needs two CPUs', usage);
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
  } catch {
    usageError('--pin needs taskset (util-linux)', usage);
  }
  return true;
}

/** How the run shares the machine, for the first line of a benchmark's output: `server` names what is loaded. */
export function describeCpus(options: BenchOptions, server: string): string {
  return options.pin
    ? `${options.cpus} CPUs, pinned: autocannon on CPU 0, ${server} on CPU 1`
    : `${options.cpus} CPUs (autocannon shares them with ${server})`;
}

/** An extra string option of {@link parseBenchOptions}. */
type ExtraOption = { type: 'string'; default: string };

/** Prints `message` and the usage line to stderr and exits with 2. */
export function usageError(message: string, usage: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

/** `value` as an integer from `min` to `max`, else a usage error naming `--name`. */
export function integerOption(value: string | undefined, name: string, min: number, max: number, usage: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) usageError(`--${name} must be an integer from ${min} to ${max}`, usage);
  return n;
}

/**
 * Parses `--duration 10 --warmup 3 --connections 50 --rounds N --profile DIR --help` (and, with
 * `pinnable`, `--pin`) plus `extra` string options from process.argv; prints `usage` and exits on
 * `--help` (0) or a bad option (2), an unusable `--pin` included.
 */
export function parseBenchOptions<E extends Record<string, ExtraOption>>(usage: string, defaultRounds: number, extra: E, pinnable = false):
  BenchOptions & { extra: { [K in keyof E]: string } } {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '3' },
        connections: { type: 'string', default: '50' },
        rounds: { type: 'string', default: String(defaultRounds) },
        profile: { type: 'string' },
        // Only where every server under load goes through measure(), which places it.
        ...(pinnable ? { pin: { type: 'boolean' as const, default: false } } : {}),
        help: { type: 'boolean', default: false },
        ...extra,
      },
    }).values;
  } catch (err) {
    usageError((err as Error).message, usage);
  }
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  const text = (name: string): string | undefined => (typeof values[name] === 'string' ? values[name] : undefined);
  const profile = text('profile');
  const profileDir = profile === undefined ? undefined : resolve(profile);
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  return {
    duration: integerOption(text('duration'), 'duration', 1, 600, usage),
    warmup: integerOption(text('warmup'), 'warmup', 0, 600, usage),
    connections: integerOption(text('connections'), 'connections', 1, 1000, usage),
    rounds: integerOption(text('rounds'), 'rounds', 1, 20, usage),
    profileDir,
    runStamp: new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, ''),
    pin: values.pin === true && canPin(usage),
    cpus: availableParallelism(),
    extra: Object.fromEntries(Object.keys(extra).map((name) => [name, text(name) ?? ''])) as { [K in keyof E]: string },
  };
}

// ---- child processes ----

/** A request from the parent that every child answers with a {@link ReplyMessage}. */
export type ChildRequest =
  | { type: 'cpu-usage' }
  | { type: 'memory' }
  | { type: 'count' }
  | { type: 'profile-start' }
  | { type: 'profile-stop'; file: string };

/** What the parent sends to a child: stop, or a request. */
export type ParentMessage = { type: 'stop' } | ChildRequest;

/** A child's answer: CPU time used so far (all threads, microseconds), its RSS (bytes), its counter, or an error. */
export interface ReplyMessage {
  type: 'reply';
  cpu?: number;
  rss?: number;
  count?: number;
  error?: string;
}

/** What a child sends: ready (with what the parent needs to load it), failed to start, or a reply. */
export type ChildMessage<Info> = { type: 'ready'; info: Info } | { type: 'failed'; message: string } | ReplyMessage;

/** What a child's start function hands back. */
export interface StartedProcess<Info> {
  /** Sent to the parent with `ready`: URLs, credentials. */
  info: Info;
  /** A counter the parent may read before and after a run (express-m2m's signature verifications), if any. */
  count?: () => number;
  close(): Promise<void>;
}

/**
 * Runs inside a forked child: starts what the spec in argv[2] describes, reports `ready` (or
 * `failed`) over IPC, answers CPU-usage, counter and profiling requests, and closes on `stop` or
 * when the parent goes away.
 */
export function serveProcess<Spec, Info>(start: (spec: Spec) => Promise<StartedProcess<Info>>): void {
  const send = (message: ChildMessage<Info>): void => {
    if (process.send) process.send(message);
  };
  let started: StartedProcess<Info> | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await started?.close();
    } finally {
      if (process.connected) process.disconnect();
      process.exit(0);
    }
  };
  // Ctrl-C reaches the whole process group; the parent orders the shutdown, so the child waits
  // for its `stop` (or for the IPC channel to close if the parent is gone).
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => { void stop(); });
  process.on('disconnect', () => { void stop(); });
  let session: Session | undefined;
  const answer = async (message: ChildRequest): Promise<ReplyMessage> => {
    switch (message.type) {
      case 'cpu-usage': {
        const { user, system } = process.cpuUsage();
        return { type: 'reply', cpu: user + system };
      }
      case 'memory':
        return { type: 'reply', rss: process.memoryUsage.rss() };
      case 'count': {
        const count = started?.count?.();
        return count === undefined ? { type: 'reply' } : { type: 'reply', count };
      }
      case 'profile-start':
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        return { type: 'reply' };
      case 'profile-stop': {
        if (!session) throw new Error('the profiler is not running');
        const { profile } = await session.post('Profiler.stop');
        session.disconnect();
        session = undefined;
        writeFileSync(message.file, JSON.stringify(profile));
        return { type: 'reply' };
      }
    }
  };
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stop') {
      void stop();
      return;
    }
    answer(message).then(send, (err: unknown) => send({ type: 'reply', error: String(err) }));
  });
  const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
  start(spec).then(
    (s) => {
      started = s;
      send({ type: 'ready', info: s.info });
    },
    (err: unknown) => {
      send({ type: 'failed', message: err instanceof Error ? err.stack ?? err.message : String(err) });
      void stop();
    },
  );
}

/** A child process seen from the parent. */
export interface ChildHandle<Spec, Info> {
  spec: Spec;
  label: string;
  /** What the child reported with `ready`. */
  info: Info;
  pid: number | undefined;
  /** CPU time the child has used so far, all threads, in microseconds (`process.cpuUsage()`). */
  cpuUsage(): Promise<number>;
  /** The child's resident set size, in bytes. */
  rss(): Promise<number>;
  /** The child's counter, or undefined when it keeps none. */
  count(): Promise<number | undefined>;
  /** Starts the child's CPU profiler (node:inspector), so that a profile covers exactly one run. */
  startProfile(): Promise<void>;
  /** Stops the profiler and has the child write the .cpuprofile to `file`. */
  stopProfile(file: string): Promise<void>;
  /** Asks the child to close and exit; kills it (by its pid) if it has not exited within 5 s. */
  stop(): Promise<void>;
}

/**
 * Forks `script` (a file of bench/ that calls {@link serveProcess}) with `spec`, in its own
 * process (its own event loop, so an idle server never slows the one under load), and waits up
 * to `timeout` ms for it to report ready.
 */
export function forkChild<Spec, Info>(script: string, spec: Spec, label: string, timeout = 60_000): Promise<ChildHandle<Spec, Info>> {
  const child: ChildProcess = fork(fileURLToPath(new URL(script, import.meta.url)), [JSON.stringify(spec)], {
    // Every server runs under the same tsx loader and NODE_ENV, so none gets a different runtime;
    // TypeScript is compiled once at load, not per request.
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once('exit', () => done());
  });

  async function stop(): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ type: 'stop' } satisfies ParentMessage);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((done) => { timer = setTimeout(() => done(true), 5000); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  // One request at a time: the parent awaits each answer before it sends the next.
  function ask(message: ChildRequest): Promise<ReplyMessage> {
    return new Promise((done, fail) => {
      const onExit = () => fail(new Error(`${label}: exited before answering ${message.type}`));
      child.once('exit', onExit);
      child.once('message', (reply: ChildMessage<Info>) => {
        child.off('exit', onExit);
        if (reply.type === 'reply' && reply.error === undefined) done(reply);
        else fail(new Error(`${label}: ${message.type} failed: ${reply.type === 'reply' ? reply.error : reply.type}`));
      });
      child.send(message);
    });
  }

  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      void stop();
      fail(new Error(`${label}: not ready after ${timeout} ms`));
    }, timeout);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      fail(new Error(`${label}: exited before it was ready (code ${code}, signal ${signal})`));
    };
    child.once('exit', onExit);
    child.once('message', (message: ChildMessage<Info>) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (message.type !== 'ready') {
        void stop();
        fail(new Error(`${label}: failed to start\n${message.type === 'failed' ? message.message : message.type}`));
        return;
      }
      done({
        spec, label, info: message.info, pid: child.pid, stop,
        cpuUsage: async () => (await ask({ type: 'cpu-usage' })).cpu ?? Number.NaN,
        rss: async () => (await ask({ type: 'memory' })).rss ?? Number.NaN,
        count: async () => (await ask({ type: 'count' })).count,
        startProfile: async () => { await ask({ type: 'profile-start' }); },
        stopProfile: async (file) => { await ask({ type: 'profile-stop', file }); },
      });
    });
  });
}

/** Starts `server` listening on an ephemeral loopback port; resolves with the port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', fail);
      done();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Closes a server, its keep-alive connections included. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((done) => server.close(() => done()));
}

// ---- issuer children (bench/m2m-server.ts, oidc-provider-server.ts, ceiling-server.ts) ----

/** What bench/issuer.ts tells a token-endpoint child to start: JSON in argv[2]. */
export interface ChildSpec {
  kind: ServerKind;
  alg: BenchAlgorithm;
  /** express-m2m: the SQLite file to create (inside a temp directory the parent owns and removes). */
  dbFile?: string;
  /** ceiling: the byte size of the JSON body to answer with. */
  bodyBytes?: number;
  /** express-m2m: install an OpenTelemetry SDK (bench/otel-sdk.ts) before the issuer: what recording costs. */
  otel?: boolean;
}

/** Where a token-endpoint child takes requests, and the client it registered. */
export interface TokenEndpointInfo {
  /** Absolute URL of the token endpoint. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

/** A started token-endpoint server, as a child's serving function returns it. */
export interface StartedServer extends TokenEndpointInfo {
  close(): Promise<void>;
}

/** Runs inside a forked token-endpoint child: {@link serveProcess} for a {@link ChildSpec}. */
export function serveChild(start: (spec: ChildSpec) => Promise<StartedServer>): void {
  serveProcess<ChildSpec, TokenEndpointInfo>(async (spec) => {
    const { tokenUrl, clientId, clientSecret, close } = await start(spec);
    return { info: { tokenUrl, clientId, clientSecret }, close };
  });
}

/** A token-endpoint server running in a child process, seen from the parent. */
export type ChildServer = ChildHandle<ChildSpec, TokenEndpointInfo> & TokenEndpointInfo;

const SCRIPTS: Record<ServerKind, string> = {
  'express-m2m': 'm2m-server.ts',
  'oidc-provider': 'oidc-provider-server.ts',
  ceiling: 'ceiling-server.ts',
};

/** Forks the token-endpoint server for `spec` and waits for it to report ready. */
export async function startChild(spec: ChildSpec): Promise<ChildServer> {
  const handle = await forkChild<ChildSpec, TokenEndpointInfo>(SCRIPTS[spec.kind], spec, `${spec.kind}${spec.otel ? ' +otel' : ''} ${spec.alg}`);
  return { ...handle, ...handle.info };
}

// ---- load, measurement, summaries ----

/** One measured run of one row. */
export interface Run {
  /** Mean requests per second. */
  rps: number;
  /** 99th percentile latency, in milliseconds. */
  p99: number;
  /** 2xx answers. */
  ok: number;
  /** Server CPU time (all threads) per 2xx answer, in microseconds. */
  cpuPerRequest: number;
  /** How far the child's counter moved during the run, when it keeps one. */
  counted: number | undefined;
}

/** A row's runs summarised: medians, sums, and the req/s range. */
export interface Summary extends Run {
  rpsMin: number;
  rpsMax: number;
}

/** The child a run loads, as {@link BenchRun.measure} needs it. */
type Measurable = Pick<ChildHandle<unknown, unknown>, 'label' | 'pid' | 'cpuUsage' | 'count' | 'startProfile' | 'stopProfile' | 'stop'>;

/**
 * Sets the CPU affinity of every thread of process `pid` to `cpu` (`taskset -a -cp`); threads it
 * starts later (a worker, libuv's pool) inherit it.
 */
function pinProcess(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** With `--pin`: puts this process (autocannon) on CPU 0; what it needs was checked with the options. */
function pinLoadGenerator(): void {
  pinProcess(process.pid, 0);
}

/** One benchmark process: its options, children, the autocannon run under way, profiles and exit. */
export interface BenchRun {
  readonly options: BenchOptions;
  /** Registers a child (or anything with `stop`) to stop at cleanup; returns it. */
  adopt<T extends { stop(): Promise<void> }>(child: T): T;
  /** Registers more cleanup, run after the children have stopped. */
  onCleanup(fn: () => Promise<void> | void): void;
  /** Runs autocannon with the run's connections; `stop`ped by a signal. */
  load(request: Omit<autocannon.Options, 'connections'>): Promise<autocannon.Result>;
  /**
   * Loads `child`: a warm-up in round 1 (when --warmup > 0), with --profile a profiled run in
   * round 1 (its CPU profile in `profileName`, not counted), then the measured run, with its CPU
   * time and counter. Prints progress without a newline; throws when a run saw anything but 2xx
   * answers.
   */
  measure(child: Measurable, request: Omit<autocannon.Options, 'connections' | 'duration'>, round: number, profileName: string): Promise<Run>;
  /** Runs `main`, cleans up, prints the profile summaries (`top(file)` lines each) and exits: 1 on failure. */
  finish(main: () => Promise<void>, top: (file: string) => number): Promise<never>;
}

/** Throws (loudly) when a run saw anything but 2xx answers. */
function checkClean(label: string, result: autocannon.Result, phase: string): void {
  if (result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && result['2xx'] > 0) return;
  throw new Error(`${label} ${phase}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, `
    + `${result['2xx']} 2xx (status codes ${JSON.stringify(result.statusCodeStats ?? {})}). The numbers would be meaningless.`);
}

/** Creates the {@link BenchRun}, with SIGINT and SIGTERM stopping everything it holds. */
export function createBenchRun(options: BenchOptions): BenchRun {
  const stoppable: { stop(): Promise<void> }[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  const profiles: string[] = [];
  let running: autocannon.Instance | undefined;
  let cleaned: Promise<void> | undefined;
  if (options.pin) pinLoadGenerator();

  function cleanup(): Promise<void> {
    cleaned ??= (async () => {
      running?.stop();
      await Promise.allSettled(stoppable.map((c) => c.stop()));
      for (const fn of cleanups) await fn();
    })();
    return cleaned;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping the servers`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }

  function load(request: Omit<autocannon.Options, 'connections'>): Promise<autocannon.Result> {
    return new Promise((done, fail) => {
      running = autocannon({ ...request, connections: options.connections }, (err, result) => {
        running = undefined;
        if (err) fail(err instanceof Error ? err : new Error(String(err)));
        else done(result);
      });
    });
  }

  async function measure(child: Measurable, request: Omit<autocannon.Options, 'connections' | 'duration'>, round: number,
    profileName: string): Promise<Run> {
    // Again before every run: cheap, and it reaches threads started since the last one.
    if (options.pin && child.pid !== undefined) pinProcess(child.pid, 1);
    if (round === 1 && options.warmup > 0) {
      process.stdout.write(`warm-up ${options.warmup} s ... `);
      checkClean(child.label, await load({ ...request, duration: options.warmup }), 'warm-up');
    }
    if (options.profileDir !== undefined && round === 1) {
      // A run of its own, left out of the figures (the profiler slows the server): the profile
      // covers loaded time only, no start-up, no warm-up, no idle time.
      const profileFile = join(options.profileDir, `${profileName}-${options.runStamp}.cpuprofile`);
      process.stdout.write(`profiling ${options.duration} s (not counted) ... `);
      await child.startProfile();
      const profiled = await load({ ...request, duration: options.duration });
      await child.stopProfile(profileFile);
      profiles.push(profileFile);
      checkClean(child.label, profiled, 'profiled run');
    }
    process.stdout.write(`measuring ${options.duration} s ... `);
    const countBefore = await child.count();
    const cpuBefore = await child.cpuUsage();
    const result = await load({ ...request, duration: options.duration });
    const cpuAfter = await child.cpuUsage();
    const countAfter = await child.count();
    checkClean(child.label, result, 'measured run');
    return {
      rps: result.requests.mean, p99: result.latency.p99, ok: result['2xx'], cpuPerRequest: (cpuAfter - cpuBefore) / result['2xx'],
      counted: countBefore === undefined || countAfter === undefined ? undefined : countAfter - countBefore,
    };
  }

  async function finish(main: () => Promise<void>, top: (file: string) => number): Promise<never> {
    let exitCode = 0;
    try {
      await main();
    } catch (err) {
      console.error(`\nBENCHMARK FAILED: ${err instanceof Error ? err.message : String(err)}`);
      exitCode = 1;
    }
    await cleanup();
    for (const file of profiles) console.log(`\n${summarizeProfile(file, top(file))}`);
    process.exit(exitCode);
  }

  return {
    options,
    adopt: (child) => { stoppable.push(child); return child; },
    onCleanup: (fn) => { cleanups.push(fn); },
    load, measure, finish,
  };
}

/** The median of `values` (NaN for none). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** One row from its runs: medians of req/s, p99 and CPU, sums of answers and counts, the req/s range. */
export function summarize(runs: readonly Run[]): Summary {
  const rps = runs.map((r) => r.rps);
  return {
    rps: median(rps), rpsMin: Math.min(...rps), rpsMax: Math.max(...rps), p99: median(runs.map((r) => r.p99)),
    ok: runs.reduce((n, r) => n + r.ok, 0), cpuPerRequest: median(runs.map((r) => r.cpuPerRequest)),
    counted: runs.every((r) => r.counted !== undefined) ? runs.reduce((n, r) => n + (r.counted ?? 0), 0) : undefined,
  };
}

/** Prints a table: the first two columns left-aligned, the others right-aligned. */
export function printTable(header: readonly string[], cells: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) => c.map((v, i) => (i < 2 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

/** A ratio to print, with the bar it must reach (if any). */
export interface Bar {
  name: string;
  value: number;
  bar?: number;
  /** Shown as a percentage rather than as `1.23x`. */
  percent: boolean;
}

/** Prints each ratio, and PASS or MISS against its bar. */
export function printBars(bars: readonly Bar[]): void {
  const show = (value: number, percent: boolean) => (percent ? `${(value * 100).toFixed(0)}%` : `${value.toFixed(2)}x`);
  const width = Math.max(...bars.map((b) => b.name.length));
  for (const b of bars) {
    const verdict = b.bar === undefined ? '' : `bar >= ${show(b.bar, b.percent).padEnd(5)} ${b.value >= b.bar ? 'PASS' : 'MISS'}`;
    console.log(`${b.name.padEnd(width)}  ${show(b.value, b.percent).padStart(6)}   ${verdict}`.trimEnd());
  }
}
