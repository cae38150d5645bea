import { sign as cryptoSign, type SignKeyObjectInput } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * The worker's whole program, run with `eval` so that it needs no file of its own (the package
 * runs from dist/ and, in tests, from TypeScript source). A message is either a key to keep or
 * drop, or a batch `[keyId, signingInput, keyId, signingInput, ...]`, answered with one
 * base64url signature per input (null where signing failed) in the same order.
 */
const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const { sign } = require('node:crypto');
const keys = new Map();
parentPort.on('message', (message) => {
  if (!Array.isArray(message)) {
    if (message.options === undefined) keys.delete(message.id);
    else keys.set(message.id, message.options);
    return;
  }
  const signatures = new Array(message.length >> 1);
  for (let i = 0; i < message.length; i += 2) {
    try {
      signatures[i >> 1] = sign('sha256', Buffer.from(message[i + 1], 'utf8'), keys.get(message[i])).toString('base64url');
    } catch {
      signatures[i >> 1] = null;
    }
  }
  parentPort.postMessage(signatures);
});
`;

/** One signature asked for, waiting for its batch. */
interface Waiting {
  keyId: number;
  input: string;
  resolve: (signature: string) => void;
  reject: (err: Error) => void;
}

/**
 * A worker thread that signs in batches: the signing inputs gathered during one turn of the event
 * loop go over in one message, and while a batch is being signed the next one gathers. Under load
 * a batch holds many tokens, so the hand-off (a message each way, a thread woken) is paid once per
 * batch rather than once per token as with `crypto.sign`'s callback form, whose thread-pool job
 * wakes a pool thread for every signature. For P-256, where the signature itself takes some 20 µs,
 * that hand-off was the larger cost: in the benchmark the worker took a fifth off the server's CPU
 * time per ES256 token.
 *
 * One worker serves every signer in the process. It is created on first use, does not keep the
 * process alive while idle, and is replaced if it ever stops (the signatures it held fail). Where
 * worker threads are not allowed (Node's permission model without `--allow-worker`), signatures go
 * to the thread pool one by one instead.
 */
class SigningWorker {
  private worker: Worker | undefined;
  /** Set when a worker could not be created: the thread pool signs from then on. */
  private unavailable = false;
  private readonly keys = new Map<number, SignKeyObjectInput>();
  private nextKeyId = 0;
  /** The batch being gathered. */
  private gathering: Waiting[] = [];
  /** The batch the worker is signing, if any. */
  private signing: Waiting[] | undefined;
  private scheduled = false;
  /** Keys to drop once the batch being gathered has gone to the worker. */
  private dropping: number[] = [];

  /** How many keys the worker holds (for tests). */
  get keyCount(): number {
    return this.keys.size;
  }

  /** Registers a key; returns its id for {@link sign}. */
  addKey(options: SignKeyObjectInput): number {
    const id = ++this.nextKeyId;
    this.keys.set(id, options);
    this.worker?.postMessage({ id, options });
    return id;
  }

  /**
   * Forgets a key: the worker drops its copy once the signatures already asked of it are made
   * (a request may have called the signer just before the issuer moved to a new key).
   */
  removeKey(id: number): void {
    if (!this.keys.has(id)) return;
    this.dropping.push(id);
    if (this.gathering.length === 0) this.drop();
  }

  /** Tells the worker to drop the keys removed so far; messages are handled in order. */
  private drop(): void {
    for (const id of this.dropping) {
      this.keys.delete(id);
      this.worker?.postMessage({ id });
    }
    this.dropping = [];
  }

  /** Signs `input` (SHA-256) with key `keyId`; resolves to the base64url signature. */
  sign(keyId: number, input: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.gathering.push({ keyId, input, resolve, reject });
      if (this.signing === undefined && !this.scheduled) {
        this.scheduled = true;
        // After the poll phase: every request read in this turn joins the batch.
        setImmediate(this.send);
      }
    });
  }

  private readonly send = (): void => {
    this.scheduled = false;
    if (this.gathering.length === 0 || this.signing !== undefined) return;
    const batch = this.gathering;
    this.gathering = [];
    const worker = this.worker ?? this.start();
    if (worker === undefined) {
      for (const waiting of batch) this.signInThreadPool(waiting);
    } else {
      const message: (number | string)[] = new Array(batch.length * 2);
      for (let i = 0; i < batch.length; i++) {
        const waiting = batch[i] as Waiting;
        message[2 * i] = waiting.keyId;
        message[2 * i + 1] = waiting.input;
      }
      this.signing = batch;
      // Keep the process alive while signatures are owed; an idle worker does not.
      worker.ref();
      worker.postMessage(message);
    }
    if (this.dropping.length > 0) this.drop();
  };

  private signInThreadPool(waiting: Waiting): void {
    const options = this.keys.get(waiting.keyId);
    if (options === undefined) {
      waiting.reject(new Error('the signing worker could not sign'));
      return;
    }
    cryptoSign('sha256', Buffer.from(waiting.input, 'utf8'), options, (err, signature) => {
      if (err) waiting.reject(new Error('the signing worker could not sign'));
      else waiting.resolve(signature.toString('base64url'));
    });
  }

  private start(): Worker | undefined {
    if (this.unavailable) return undefined;
    let worker: Worker;
    try {
      // execArgv: [] so that none of the host's flags (a loader, --input-type=module) reach this plain CommonJS program.
      worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], name: 'express-m2m signer' });
    } catch {
      this.unavailable = true;
      return undefined;
    }
    worker.unref();
    for (const [id, options] of this.keys) worker.postMessage({ id, options });
    worker.on('message', (signatures: (string | null)[]) => {
      const batch = this.signing ?? [];
      this.signing = undefined;
      worker.unref();
      if (this.gathering.length > 0) this.send();
      for (let i = 0; i < batch.length; i++) {
        const waiting = batch[i] as Waiting;
        const signature = signatures[i];
        if (typeof signature === 'string') waiting.resolve(signature);
        else waiting.reject(new Error('the signing worker could not sign'));
      }
    });
    // An error in the worker ends it; exit follows either way.
    worker.on('error', () => {});
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const batch = this.signing ?? [];
      this.signing = undefined;
      for (const waiting of batch) waiting.reject(new Error('the signing worker stopped'));
      // Whatever gathered meanwhile goes to a new worker.
      if (this.gathering.length > 0) this.send();
    });
    this.worker = worker;
    return worker;
  }

  /** Stops the worker (for tests of recovery): the batch it holds fails, the next one starts a new worker. */
  async stop(): Promise<void> {
    await this.worker?.terminate();
  }
}

let shared: SigningWorker | undefined;

/** The process's signing worker, created on first use. */
export function signingWorker(): SigningWorker {
  shared ??= new SigningWorker();
  return shared;
}

export type { SigningWorker };
