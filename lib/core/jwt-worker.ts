import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { runJob, reviveError, SIGN, VERIFY, type JobAnswer, type JobKind, type JwtKeyEntry } from './jwt-jobs.js';

export type { JwtKeyEntry } from './jwt-jobs.js';

/**
 * The worker's program: jwt-worker-thread.js beside this module when built; from the TypeScript
 * source (tests, tsx), a small starter that registers tsx's loader in the worker first.
 */
const THREAD_URL = new URL(
  import.meta.url.endsWith('.ts') ? './jwt-worker-thread.source.mjs' : './jwt-worker-thread.js', import.meta.url);

/** One job asked for, waiting for its batch. */
interface Waiting {
  kind: JobKind;
  keyId: number;
  data: unknown;
  now: number;
  resolve: (answer: string | null) => void;
  reject: (err: Error) => void;
  /** Whether the job already went to a worker that stopped. */
  retried: boolean;
}

function settle(waiting: Waiting, answer: JobAnswer | undefined): void {
  if (answer === undefined) waiting.reject(new Error('the JWT worker gave no answer'));
  else if (answer !== null && typeof answer === 'object') waiting.reject(reviveError(answer));
  else waiting.resolve(answer);
}

/**
 * A worker thread that signs and verifies JWTs with jsonwebtoken, in batches: the jobs asked for
 * during one turn of the event loop go over in one message, and the hand-off (a message each way,
 * a thread woken) is paid once per batch, not once per token. A batch is sent as soon as its turn
 * ends, without waiting for the batches before it (the worker answers them in order): waiting made
 * the event loop and the worker take turns instead of working at once. The signature, the costly
 * step of a token, runs on another core while the event loop goes on parsing and answering.
 *
 * One pool serves the whole process: a thread started on first use, and for verification a
 * second one (where two cores are available) only while the first still owes a batch, so that
 * signature checks can use both cores under load. Idle threads do not keep the process alive. If a
 * thread stops, the batches it held go to a new thread once (a job that fails there too is
 * refused). Where worker threads are not allowed (Node's permission model without
 * `--allow-worker`), jobs run with the same jsonwebtoken calls on the event loop.
 */
/** One worker thread and the batches it owes answers for, oldest first (it answers in order). */
interface Thread {
  worker: Worker;
  working: Waiting[][];
}

class JwtWorker {
  /** Running threads; at most `size`, started as load needs them. */
  private threads: Thread[] = [];
  /** Set when a worker could not be created: the event loop does the work from then on. */
  private unavailable = false;
  private readonly keys = new Map<number, JwtKeyEntry>();
  private nextKeyId = 0;
  /** The batch being gathered. */
  private gathering: Waiting[] = [];
  private scheduled = false;
  /** Keys to drop once the batch being gathered has gone to the workers. */
  private dropping: number[] = [];
  /** Drops the key of an owner that was collected without removing it. */
  private readonly released = new FinalizationRegistry<number>((id) => this.removeKey(id));

  /** @param size - Most threads: a second one starts only while the first still owes a batch. */
  constructor(private readonly size: number) {}

  /** How many keys the worker holds (for tests). */
  get keyCount(): number {
    return this.keys.size;
  }

  /**
   * Registers a key with its jsonwebtoken options; returns its id for {@link sign} and
   * {@link verify}. When `owner` (the signer or verifier using the key) is garbage-collected, the
   * key is removed as by {@link removeKey}.
   */
  addKey(entry: JwtKeyEntry, owner: object): number {
    const id = ++this.nextKeyId;
    this.keys.set(id, entry);
    this.released.register(owner, id);
    for (const thread of this.threads) thread.worker.postMessage({ id, entry });
    return id;
  }

  /**
   * Forgets a key: the workers drop their copies once the jobs already asked of them are done.
   * Removing a key twice is harmless.
   */
  removeKey(id: number): void {
    if (!this.keys.has(id) || this.dropping.includes(id)) return;
    this.dropping.push(id);
    if (this.gathering.length === 0) this.drop();
  }

  /** `jwt.sign(claims, key, options)` with key `keyId`; resolves to the compact JWT. */
  sign(keyId: number, claims: object): Promise<string> {
    return this.ask(SIGN, keyId, claims, 0) as Promise<string>;
  }

  /**
   * `jwt.verify(token, key, options)` with key `keyId` and `now` (milliseconds) as the clock;
   * resolves when the token is valid, rejects with jsonwebtoken's error when it is not.
   */
  async verify(keyId: number, token: string, now: number): Promise<void> {
    await this.ask(VERIFY, keyId, token, now);
  }

  /** Stops the worker threads (for tests of recovery): their batches go to new threads. */
  async stop(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  private ask(kind: JobKind, keyId: number, data: unknown, now: number): Promise<string | null> {
    return new Promise((resolve, reject) => {
      this.gathering.push({ kind, keyId, data, now, resolve, reject, retried: false });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the poll phase: every request read in this turn joins the batch.
        setImmediate(this.send);
      }
    });
  }

  /** Tells the workers to drop the keys removed so far; messages are handled in order. */
  private drop(): void {
    for (const id of this.dropping) {
      this.keys.delete(id);
      for (const thread of this.threads) thread.worker.postMessage({ id });
    }
    this.dropping = [];
  }

  /**
   * The thread for a batch: an idle thread, else a new one while there is room, else the one owing
   * the fewest batches. Signing stays on the first thread: a second one measured slower for the
   * issuer (RS256 0.82x against 0.99x node-oidc-provider), while verification gained from it
   * (guard, fresh ES256 tokens: 1.18x against 1.06x express-oauth2-jwt-bearer).
   */
  private pick(batch: readonly Waiting[]): Thread | undefined {
    if (batch.some((waiting) => waiting.kind === SIGN)) return this.threads[0] ?? this.start();
    const idle = this.threads.find((thread) => thread.working.length === 0);
    if (idle) return idle;
    if (this.threads.length < this.size) return this.start() ?? this.threads[0];
    return this.threads.reduce((a, b) => (b.working.length < a.working.length ? b : a));
  }

  private readonly send = (): void => {
    this.scheduled = false;
    if (this.gathering.length === 0) return;
    const batch = this.gathering;
    this.gathering = [];
    const thread = this.pick(batch);
    if (thread === undefined) {
      for (const w of batch) settle(w, runJob(this.keys.get(w.keyId), w.kind, w.data, w.now));
    } else {
      const message: unknown[] = new Array(batch.length * 4);
      for (let i = 0; i < batch.length; i++) {
        const waiting = batch[i] as Waiting;
        message[4 * i] = waiting.kind;
        message[4 * i + 1] = waiting.keyId;
        message[4 * i + 2] = waiting.data;
        message[4 * i + 3] = waiting.now;
      }
      thread.working.push(batch);
      // Keep the process alive while answers are owed; an idle worker does not.
      thread.worker.ref();
      thread.worker.postMessage(message);
    }
    if (this.dropping.length > 0) this.drop();
  };

  private answered(thread: Thread, answers: JobAnswer[]): void {
    const batch = thread.working.shift() ?? [];
    if (thread.working.length === 0) thread.worker.unref();
    for (let i = 0; i < batch.length; i++) settle(batch[i] as Waiting, answers[i]);
  }

  private stopped(thread: Thread): void {
    const index = this.threads.indexOf(thread);
    if (index === -1) return;
    this.threads.splice(index, 1);
    const batch = thread.working.flat();
    thread.working = [];
    // Signing and verifying can be asked again: the batch goes first to a new worker, once.
    const again = batch.filter((waiting) => !waiting.retried);
    for (const waiting of batch) {
      if (waiting.retried) waiting.reject(new Error('the JWT worker stopped'));
      waiting.retried = true;
    }
    this.gathering = [...again, ...this.gathering];
    if (this.gathering.length > 0) this.send();
  }

  private start(): Thread | undefined {
    if (this.unavailable) return undefined;
    let worker: Worker;
    try {
      // execArgv: [] so that none of the host's flags (a loader, --input-type=module) reach the worker.
      worker = new Worker(THREAD_URL, { execArgv: [], name: 'express-m2m jwt' });
    } catch {
      this.unavailable = true;
      return undefined;
    }
    const thread: Thread = { worker, working: [] };
    worker.unref();
    for (const [id, entry] of this.keys) worker.postMessage({ id, entry });
    worker.on('message', (answers: JobAnswer[]) => this.answered(thread, answers));
    // An error in the worker ends it; exit follows either way.
    worker.on('error', () => {});
    worker.on('exit', () => this.stopped(thread));
    this.threads.push(thread);
    return thread;
  }
}

let shared: JwtWorker | undefined;

/** The process's JWT worker, created on first use: up to two threads where two cores are available. */
export function jwtWorker(): JwtWorker {
  shared ??= new JwtWorker(Math.min(2, availableParallelism()));
  return shared;
}

export type { JwtWorker };
