// Shared by bench/guard.ts (the parent) and bench/guard-server.ts (one child per guard under test):
// what a child is told to start, the IPC messages, and the fork helper. The child side answers
// CPU-usage, profiling and counter requests the same way bench/support.ts does for the issuers.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

/** The guards under test, and the bare route. */
export type GuardKind = 'ceiling' | 'express-m2m' | 'express-oauth2-jwt-bearer' | 'express-jwt' | 'passport-jwt';

/** The signing algorithms the benchmark compares. */
export type GuardAlgorithm = 'RS256' | 'ES256';

/** The scope every route requires and every token grants, and the audience every token is for (as in bench/issuer.ts). */
export { AUDIENCE, SCOPE } from './support.js';
/** The `iss` of every token. */
export const ISSUER = 'https://auth.bench.internal/oauth';
/** What every route answers, with res.json. */
export const REPORT = { reports: [{ id: 1, name: 'nightly' }] };

/** What the parent tells a child to start: JSON in argv[2]. */
export interface GuardSpec {
  kind: GuardKind;
  alg: GuardAlgorithm;
  jwksUri: string;
}

/** Parent to child. */
export type GuardParentMessage =
  | { type: 'stop' }
  | { type: 'cpu-usage' }
  | { type: 'verifications' }
  | { type: 'profile-start' }
  | { type: 'profile-stop'; file: string };

/** Child to parent. */
export type GuardChildMessage =
  | { type: 'ready'; url: string }
  | { type: 'failed'; message: string }
  | { type: 'reply'; cpu?: number; count?: number; error?: string };

/** A started guard, as the child's start function returns it. */
export interface StartedGuard {
  url: string;
  /** Signature verifications so far, when the guard can count them (express-m2m), else undefined. */
  verifications(): number | undefined;
  close(): Promise<void>;
}

/** Runs inside a forked child: starts the guard from argv[2] and answers the parent over IPC. */
export function serveGuardChild(start: (spec: GuardSpec) => Promise<StartedGuard>): void {
  const send = (message: GuardChildMessage): void => {
    if (process.send) process.send(message);
  };
  let started: StartedGuard | undefined;
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
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => { void stop(); });
  process.on('disconnect', () => { void stop(); });
  let session: Session | undefined;
  const answer = async (message: Exclude<GuardParentMessage, { type: 'stop' }>): Promise<GuardChildMessage> => {
    switch (message.type) {
      case 'cpu-usage': {
        const { user, system } = process.cpuUsage();
        return { type: 'reply', cpu: user + system };
      }
      case 'verifications': {
        const count = started?.verifications();
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
  process.on('message', (message: GuardParentMessage) => {
    if (message.type === 'stop') {
      void stop();
      return;
    }
    answer(message).then(send, (err: unknown) => send({ type: 'reply', error: String(err) }));
  });
  const spec = JSON.parse(process.argv[2] ?? '{}') as GuardSpec;
  start(spec).then(
    (guard) => {
      started = guard;
      send({ type: 'ready', url: guard.url });
    },
    (err: unknown) => {
      send({ type: 'failed', message: err instanceof Error ? err.stack ?? err.message : String(err) });
      void stop();
    },
  );
}

/** A guard running in a child process, seen from the parent. */
export interface GuardChild {
  spec: GuardSpec;
  label: string;
  url: string;
  cpuUsage(): Promise<number>;
  verifications(): Promise<number | undefined>;
  startProfile(): Promise<void>;
  stopProfile(file: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Forks bench/guard-server.ts for `spec` (its own process and event loop, so an idle guard never
 * slows the one under load) and waits for it to listen.
 */
export function startGuardChild(spec: GuardSpec, label: string): Promise<GuardChild> {
  const script = fileURLToPath(new URL('guard-server.ts', import.meta.url));
  const child: ChildProcess = fork(script, [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  async function stop(): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ type: 'stop' } satisfies GuardParentMessage);
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

  function ask(message: Exclude<GuardParentMessage, { type: 'stop' }>): Promise<Extract<GuardChildMessage, { type: 'reply' }>> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`${label}: exited before answering ${message.type}`));
      child.once('exit', onExit);
      child.once('message', (reply: GuardChildMessage) => {
        child.off('exit', onExit);
        if (reply.type === 'reply' && reply.error === undefined) resolve(reply);
        else reject(new Error(`${label}: ${message.type} failed: ${reply.type === 'reply' ? reply.error : reply.type}`));
      });
      child.send(message);
    });
  }

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${label}: not ready after 60 s`));
    }, 60_000);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited before it was ready (code ${code}, signal ${signal})`));
    };
    child.once('exit', onExit);
    child.once('message', (message: GuardChildMessage) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (message.type !== 'ready') {
        void stop();
        reject(new Error(`${label}: failed to start\n${message.type === 'failed' ? message.message : message.type}`));
        return;
      }
      resolve({
        spec, label, url: message.url, stop,
        cpuUsage: async () => (await ask({ type: 'cpu-usage' })).cpu ?? Number.NaN,
        verifications: async () => (await ask({ type: 'verifications' })).count,
        startProfile: async () => { await ask({ type: 'profile-start' }); },
        stopProfile: async (file) => { await ask({ type: 'profile-stop', file }); },
      });
    });
  });
}
