import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

/** The servers under test. */
export type ServerKind = 'express-m2m' | 'oidc-provider' | 'ceiling';

/** The signing algorithms the benchmark compares. */
export type BenchAlgorithm = 'ES256' | 'RS256';

/** What every server grants: the same scope and audience, so the tokens carry the same claims. */
export const SCOPE = 'reports:read';
export const AUDIENCE = 'https://reports.internal';
/** Token lifetime in seconds, the same for every issuer (express-m2m's default). */
export const TOKEN_LIFETIME = 300;

/** What the parent tells a child to start: passed as JSON in argv[2]. */
export interface ChildSpec {
  kind: ServerKind;
  alg: BenchAlgorithm;
  /** express-m2m: the SQLite file to create (inside a temp directory the parent owns and removes). */
  dbFile?: string;
  /** ceiling: the byte size of the JSON body to answer with. */
  bodyBytes?: number;
}

/** What a child reports once it listens and is ready to issue. */
export interface ReadyMessage {
  type: 'ready';
  /** Absolute URL of the token endpoint. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

/** What a child reports when it could not start. */
export interface FailedMessage {
  type: 'failed';
  message: string;
}

/** What the parent sends to a child: stop, or a request answered with a {@link ReplyMessage}. */
export type ParentMessage =
  | { type: 'stop' }
  | { type: 'profile-start' }
  | { type: 'profile-stop'; file: string }
  | { type: 'cpu-usage' };

/** A child's answer to a request: CPU time used so far (all threads, microseconds), or an error. */
export interface ReplyMessage {
  type: 'reply';
  cpu?: { user: number; system: number };
  error?: string;
}

/** A started server, as a child serving function returns it. */
export interface StartedServer {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

/** `Authorization: Basic` per RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export function basic(clientId: string, clientSecret: string): string {
  const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

/** The token request body every server receives (the ceiling parses it too). */
export const TOKEN_REQUEST_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE }).toString();

/** No-store headers of RFC 6749 §5.1, as express-m2m sends them. */
export const NO_STORE_HEADERS: Readonly<Record<string, string>> = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/**
 * Runs inside a forked child: starts one server from the spec in argv[2], reports `ready` (or
 * `failed`) over IPC, and closes it on `stop` or when the parent goes away.
 */
export function serveChild(start: (spec: ChildSpec) => Promise<StartedServer>): void {
  const send = (message: ReadyMessage | FailedMessage | ReplyMessage): void => {
    if (process.send) process.send(message);
  };
  let server: StartedServer | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await server?.close();
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
  const answer = async (message: Exclude<ParentMessage, { type: 'stop' }>): Promise<ReplyMessage> => {
    switch (message.type) {
      case 'cpu-usage':
        return { type: 'reply', cpu: process.cpuUsage() };
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
  const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
  start(spec).then(
    (started) => {
      server = started;
      send({ type: 'ready', tokenUrl: started.tokenUrl, clientId: started.clientId, clientSecret: started.clientSecret });
    },
    (err: unknown) => {
      send({ type: 'failed', message: err instanceof Error ? err.stack ?? err.message : String(err) });
      void stop();
    },
  );
}

/** A server running in a child process, seen from the parent. */
export interface ChildServer {
  spec: ChildSpec;
  label: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  pid: number | undefined;
  /** Starts the child's CPU profiler (node:inspector), so that a profile covers exactly one run. */
  startProfile(): Promise<void>;
  /** Stops the profiler and has the child write the .cpuprofile to `file`. */
  stopProfile(file: string): Promise<void>;
  /** CPU time the child has used so far, all threads, in microseconds (`process.cpuUsage()`). */
  cpuUsage(): Promise<number>;
  /** Asks the child to close and exit; kills it (by its pid) if it has not exited within 5 s. */
  stop(): Promise<void>;
}

const SCRIPTS: Record<ServerKind, string> = {
  'express-m2m': 'm2m-server.ts',
  'oidc-provider': 'oidc-provider-server.ts',
  ceiling: 'ceiling-server.ts',
};

/** Options of {@link startChild}. */
export interface StartChildOptions {
  /** Maximum wait for `ready`, in milliseconds. Default 60 000. */
  timeout?: number;
}

/**
 * Forks one server in its own process (its own event loop, so an idle server never slows the one
 * under load) and waits for it to report ready.
 */
export function startChild(spec: ChildSpec, options: StartChildOptions = {}): Promise<ChildServer> {
  const script = fileURLToPath(new URL(SCRIPTS[spec.kind], import.meta.url));
  const child: ChildProcess = fork(script, [JSON.stringify(spec)], {
    // Every server, oidc-provider included, runs under the same tsx loader and NODE_ENV, so none
    // gets a different runtime; TypeScript is compiled once at load, not per request.
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const label = `${spec.kind} ${spec.alg}`;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      if (child.connected) child.send({ type: 'stop' } satisfies ParentMessage);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), 5000); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }

  // One request at a time: the parent awaits each answer before it sends the next.
  function request(message: Exclude<ParentMessage, { type: 'stop' }>): Promise<ReplyMessage> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`${label}: exited before answering ${message.type}`));
      child.once('exit', onExit);
      child.once('message', (reply: ReplyMessage) => {
        child.off('exit', onExit);
        if (reply.error === undefined) resolve(reply);
        else reject(new Error(`${label}: ${message.type} failed: ${reply.error}`));
      });
      child.send(message);
    });
  }

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${label}: not ready after ${options.timeout ?? 60_000} ms`));
    }, options.timeout ?? 60_000);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited before it was ready (code ${code}, signal ${signal})`));
    };
    child.once('exit', onExit);
    child.once('message', (message: ReadyMessage | FailedMessage) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (message.type === 'failed') {
        void stop();
        reject(new Error(`${label}: failed to start\n${message.message}`));
        return;
      }
      resolve({
        spec, label, tokenUrl: message.tokenUrl, clientId: message.clientId, clientSecret: message.clientSecret,
        pid: child.pid, stop,
        startProfile: async () => { await request({ type: 'profile-start' }); },
        stopProfile: async (file) => { await request({ type: 'profile-stop', file }); },
        cpuUsage: async () => {
          const { cpu } = await request({ type: 'cpu-usage' });
          return cpu ? cpu.user + cpu.system : Number.NaN;
        },
      });
    });
  });
}

/** Decodes the header and payload of a compact JWS without verifying it (for display only). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${parts.length} parts`);
  const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
  return { header: header ?? {}, payload: payload ?? {} };
}
