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
 * One worker serves the whole process. It is created on first use and does not keep the process
 * alive while idle. If it stops, the batch it held goes to a new worker once (a job that fails
 * there too is refused). Where worker threads are not allowed (Node's permission model without
 * `--allow-worker`), jobs run with the same jsonwebtoken calls on the event loop.
 */
class JwtWorker {
  private worker: Worker | undefined;
  /** Set when a worker could not be created: the event loop does the work from then on. */
  private unavailable = false;
  private readonly keys = new Map<number, JwtKeyEntry>();
  private nextKeyId = 0;
  /** The batch being gathered. */
  private gathering: Waiting[] = [];
  /** Batches sent to the worker and not answered yet, oldest first (the worker answers in order). */
  private working: Waiting[][] = [];
  private scheduled = false;
  /** Keys to drop once the batch being gathered has gone to the worker. */
  private dropping: number[] = [];
  /** Drops the key of an owner that was collected without removing it. */
  private readonly released = new FinalizationRegistry<number>((id) => this.removeKey(id));

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
    this.worker?.postMessage({ id, entry });
    return id;
  }

  /**
   * Forgets a key: the worker drops its copy once the jobs already asked of it are done.
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

  /** Stops the worker (for tests of recovery): its batch goes to a new worker. */
  async stop(): Promise<void> {
    await this.worker?.terminate();
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

  /** Tells the worker to drop the keys removed so far; messages are handled in order. */
  private drop(): void {
    for (const id of this.dropping) {
      this.keys.delete(id);
      this.worker?.postMessage({ id });
    }
    this.dropping = [];
  }

  private readonly send = (): void => {
    this.scheduled = false;
    if (this.gathering.length === 0) return;
    const batch = this.gathering;
    this.gathering = [];
    const worker = this.worker ?? this.start();
    if (worker === undefined) {
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
      this.working.push(batch);
      // Keep the process alive while answers are owed; an idle worker does not.
      worker.ref();
      worker.postMessage(message);
    }
    if (this.dropping.length > 0) this.drop();
  };

  private readonly answered = (answers: JobAnswer[]): void => {
    const batch = this.working.shift() ?? [];
    if (this.working.length === 0) this.worker?.unref();
    for (let i = 0; i < batch.length; i++) settle(batch[i] as Waiting, answers[i]);
  };

  private stopped(worker: Worker): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const batch = this.working.flat();
    this.working = [];
    // Signing and verifying can be asked again: the batch goes first to a new worker, once.
    const again = batch.filter((waiting) => !waiting.retried);
    for (const waiting of batch) {
      if (waiting.retried) waiting.reject(new Error('the JWT worker stopped'));
      waiting.retried = true;
    }
    this.gathering = [...again, ...this.gathering];
    if (this.gathering.length > 0) this.send();
  }

  private start(): Worker | undefined {
    if (this.unavailable) return undefined;
    let worker: Worker;
    try {
      // execArgv: [] so that none of the host's flags (a loader, --input-type=module) reach the worker.
      worker = new Worker(THREAD_URL, { execArgv: [], name: 'express-m2m jwt' });
    } catch {
      this.unavailable = true;
      return undefined;
    }
    worker.unref();
    for (const [id, entry] of this.keys) worker.postMessage({ id, entry });
    worker.on('message', this.answered);
    // An error in the worker ends it; exit follows either way.
    worker.on('error', () => {});
    worker.on('exit', () => this.stopped(worker));
    this.worker = worker;
    return worker;
  }
}

let shared: JwtWorker | undefined;

/** The process's JWT worker, created on first use. */
export function jwtWorker(): JwtWorker {
  shared ??= new JwtWorker();
  return shared;
}

export type { JwtWorker };
