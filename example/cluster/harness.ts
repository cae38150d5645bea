/**
 * What a script that orchestrates child processes needs (the cluster demo, example/cluster/main.ts,
 * and the chaos run, example/chaos/main.ts): children started with `node --import tsx` that speak
 * the JSON-line protocol of shared.ts, and the removal of a run's tables and Redis keys.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import type { Message } from './shared.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A child process and its side of the protocol. */
export interface Child {
  name: string;
  process: ChildProcessWithoutNullStreams;
  port: number;
  /** The next message with this event (already received or still to come). */
  next(event: string, timeoutMs?: number): Promise<Message>;
  /** Removes and returns the messages with this event received so far. */
  drain(event: string): Message[];
  /** Hands every later message with this event to `listener` instead of keeping it for next() or drain(). */
  subscribe(event: string, listener: (message: Message) => void): void;
  send(command: Message): void;
  /** The exit code; -1 when a signal ended it. */
  exited: Promise<number | null>;
}

/** The children of one run. */
export interface ChildProcesses {
  /** Starts `script` (an absolute path) from the repository's root with `env` added to this process's. */
  start(name: string, script: string, env: Record<string, string>): Child;
  /** Every child started, running or not. */
  readonly all: readonly Child[];
}

/** Creates the list of a run's children: each is started through it and stopped by {@link stopChild}. */
export function createChildProcesses(): ChildProcesses {
  const all: Child[] = [];
  return {
    all,
    start(name, script, env) {
      const child = startChild(name, script, env);
      all.push(child);
      return child;
    },
  };
}

function startChild(name: string, script: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const received: Message[] = [];
  const listeners = new Map<string, (message: Message) => void>();
  const waiters: { event: string; resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitCode = code ?? (signal === null ? null : -1);
      for (const w of waiters.splice(0)) w.reject(new Error(`${name} exited (${signal ?? code ?? '?'}) before sending "${w.event}"`));
      resolve(exitCode);
    });
  });
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let message: Message;
    try {
      message = JSON.parse(line) as Message;
    } catch {
      process.stderr.write(`[${name}] ${line}\n`);
      return;
    }
    const listener = listeners.get(String(message.event));
    if (listener) return listener(message);
    const waiter = waiters.findIndex((w) => w.event === message.event);
    if (waiter === -1) received.push(message);
    else waiters.splice(waiter, 1)[0]?.resolve(message);
  });
  createInterface({ input: proc.stderr }).on('line', (line) => { process.stderr.write(`[${name}] ${line}\n`); });
  proc.stdin.on('error', () => {}); // a child that has exited: its exit is reported elsewhere
  return {
    name,
    process: proc,
    port: 0,
    next(event, timeoutMs = 30_000) {
      const found = received.findIndex((m) => m.event === event);
      if (found !== -1) return Promise.resolve(received.splice(found, 1)[0] as Message);
      if (exitCode !== undefined) return Promise.reject(new Error(`${name} has exited`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name} sent no "${event}" within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          event,
          resolve: (m) => { clearTimeout(timer); resolve(m); },
          reject: (e) => { clearTimeout(timer); reject(e); },
        });
      });
    },
    drain(event) {
      const taken = received.filter((m) => m.event === event);
      received.splice(0, received.length, ...received.filter((m) => m.event !== event));
      return taken;
    },
    subscribe(event, listener) { listeners.set(event, listener); },
    send(command) { proc.stdin.write(`${JSON.stringify(command)}\n`); },
    exited,
  };
}

/** Waits for the child's `listening` message and keeps its port. */
export async function listening(child: Child): Promise<Child> {
  child.port = Number((await child.next('listening')).port);
  return child;
}

/** Whether the child has exited. */
export const hasExited = (child: Child): boolean => child.process.exitCode !== null || child.process.signalCode !== null;

/** Stops a child with SIGTERM (and closes its stdin), or SIGKILL when it has not exited within 5 s. */
export async function stopChild(child: Child): Promise<void> {
  if (hasExited(child)) return;
  child.process.kill('SIGTERM');
  child.process.stdin.end();
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 5000);
  await child.exited;
  clearTimeout(timer);
}

/** A URL with its password replaced by `***`, for printing. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Checks that PostgreSQL and Redis answer (connecting `redis`, created with `lazyConnect`), and
 * notes in `reached` which did, so that a cleanup knows what it may touch.
 *
 * @throws Error saying which server is unreachable and how to start it.
 */
export async function reachServices(knex: Knex, redis: Redis, urls: { database: string; redis: string },
  reached: { database: boolean; redis: boolean }): Promise<void> {
  await knex.raw('select 1').catch((err: unknown) => {
    throw new Error(`PostgreSQL at ${redact(urls.database)} is unreachable (${err instanceof Error ? err.message : String(err)}): `
      + 'start it with `bash .ci/services` or set DATABASE_URL', { cause: err });
  });
  reached.database = true;
  // A refused connection rejects with a bare "Connection is closed"; the cause comes as an event.
  let cause: Error | undefined;
  const remember = (err: Error) => { cause ??= err; };
  redis.on('error', remember);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis at ${redact(urls.redis)} is unreachable (${(cause ?? err as Error).message}): start it with \`bash .ci/services\` or set REDIS_URL`,
      { cause: err });
  } finally {
    redis.off('error', remember);
  }
  reached.redis = true;
}

/**
 * Drops the tables whose names start with `tablePrefix` and deletes the Redis keys that start with
 * `redisPrefix` (Redis skipped when `redis` is undefined).
 *
 * @returns How many tables and keys were removed.
 */
export async function removeRunData(knex: Knex, redis: Redis | undefined, tablePrefix: string, redisPrefix: string): Promise<{ tables: number; keys: number }> {
  const { rows } = await knex.raw<{ rows: { tablename: string }[] }>(
    "select tablename from pg_tables where schemaname = current_schema() and tablename like ?", [`${tablePrefix}%`]);
  for (const { tablename } of rows) await knex.raw('drop table if exists ?? cascade', [tablename]);
  // The change log's trigger functions (migration 20261212000000_client_changes) outlive their tables.
  const functions = await knex.raw<{ rows: { proname: string }[] }>(
    'select proname from pg_proc where pronamespace = current_schema()::regnamespace and proname like ?', [`${tablePrefix}%`]);
  for (const { proname } of functions.rows) await knex.raw('drop function if exists ??() cascade', [proname]);
  let keys = 0;
  let cursor = '0';
  do {
    if (redis === undefined) break;
    const [nextCursor, found] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 100);
    if (found.length > 0) keys += await redis.del(...found);
    cursor = nextCursor;
  } while (cursor !== '0');
  return { tables: rows.length, keys };
}
