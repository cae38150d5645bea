/**
 * What the cluster demo's processes share: settings from the environment, the JSON-line protocol
 * between the demo (example/cluster/main.ts) and its child processes, and token fingerprints.
 *
 * Children print one JSON object per line on stdout (events) and read one JSON object per line on
 * stdin (commands). Nothing else goes to stdout; no line ever holds a secret or a token.
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';

/** The audience of the demo's reports API. */
export const REPORTS_AUDIENCE = 'https://reports.internal';
/** The client the two caller processes share. */
export const CALLER_CLIENT = 'nightly-report';
/** The client the demo itself uses for its checks, kept apart so that the callers' token count stays exact. */
export const PROBE_CLIENT = 'cluster-probe';
/** The CI PostgreSQL server (`bash .ci/services`), used when DATABASE_URL is not set. */
export const DEFAULT_DATABASE_URL = 'postgres://m2m:m2m@127.0.0.1:55432/m2m_test';
/** The CI Redis server (`bash .ci/services`), used when REDIS_URL is not set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:56379';

/** A message on a child's stdout or stdin. */
export interface Message {
  event?: string;
  cmd?: string;
  [field: string]: unknown;
}

/** The first 12 hex characters of a token's SHA-256: enough to compare tokens, useless to replay one. */
export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/** An environment variable a child cannot run without (the demo always sets it). */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    process.stderr.write(`${name} is not set: this script is started by example/cluster/main.ts\n`);
    process.exit(2);
  }
  return value;
}

/** Prints one event line for the parent. */
export function send(message: Message): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/**
 * Runs `handle` for each command line from the parent, one at a time. When stdin closes (the parent
 * is gone, however it ended) `onClose` runs, so that no child outlives the demo.
 */
export function onCommands(handle: (command: Message) => Promise<void> | void, onClose: () => Promise<void> | void): void {
  const lines = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  lines.on('line', (line) => {
    let command: Message;
    try {
      command = JSON.parse(line) as Message;
    } catch {
      process.stderr.write('ignored a line that is not JSON\n');
      return;
    }
    queue = queue.then(() => handle(command)).catch((err: unknown) => {
      process.stderr.write(`command ${String(command.cmd)} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  lines.on('close', () => { void queue.then(onClose); });
}

/** Milliseconds to wait. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms); });

/** What a child reports of itself: memory, and promise rejections nothing handled. */
export interface ProcessHealth {
  /** Resident set size, in bytes. */
  rss: number;
  /** V8 heap in use, in bytes. */
  heapUsed: number;
  /** Rejections no handler caught, since the process started. */
  unhandledRejections: number;
}

/**
 * Counts this process's unhandled promise rejections (and prints each on stderr) instead of
 * letting the first one end the process, so that a run can report how many there were.
 *
 * @returns A function that reads the process's health.
 */
export function watchHealth(): () => ProcessHealth {
  let unhandledRejections = 0;
  process.on('unhandledRejection', (reason) => {
    unhandledRejections++;
    process.stderr.write(`unhandled rejection: ${reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason)}\n`);
  });
  return () => {
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heapUsed, unhandledRejections };
  };
}
