import { sign as cryptoSign, verify as cryptoVerify, type KeyObject, type SignKeyObjectInput, type VerifyKeyObjectInput } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** The digest of a signature algorithm, as node:crypto names it. */
export type SignatureHash = 'sha256' | 'sha384' | 'sha512';

/** A key as node:crypto's sign or verify takes it, with the digest it is used with. */
export interface WorkerKey {
  hash: SignatureHash;
  key: KeyObject | SignKeyObjectInput | VerifyKeyObjectInput;
}

/**
 * The worker's whole program, run with `eval` so that it needs no file of its own (the package
 * runs from dist/ and, in tests, from TypeScript source). A message is either a key to keep or
 * drop, or a batch of triples `[keyId, input, signature]`: a null signature asks for one (the
 * answer is its base64url form), a base64url one asks whether it is valid (true or false). An
 * answer is null where node:crypto threw. Answers come back in one array, in order.
 */
const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const { sign, verify } = require('node:crypto');
const keys = new Map();
parentPort.on('message', (message) => {
  if (!Array.isArray(message)) {
    if (message.key === undefined) keys.delete(message.id);
    else keys.set(message.id, message.key);
    return;
  }
  const answers = new Array(message.length / 3);
  for (let i = 0, j = 0; i < message.length; i += 3, j++) {
    const key = keys.get(message[i]);
    const signature = message[i + 2];
    try {
      answers[j] = signature === null
        ? sign(key.hash, Buffer.from(message[i + 1], 'utf8'), key.key).toString('base64url')
        : verify(key.hash, Buffer.from(message[i + 1], 'latin1'), key.key, Buffer.from(signature, 'base64url'));
    } catch {
      answers[j] = null;
    }
  }
  parentPort.postMessage(answers);
});
`;

/** Signs `input` (UTF-8) through node:crypto's callback form, in libuv's thread pool; resolves to the base64url signature. */
export function signInThreadPool(key: WorkerKey, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    cryptoSign(key.hash, Buffer.from(input, 'utf8'), key.key, (err, signature) => {
      if (err) reject(err);
      else resolve(signature.toString('base64url'));
    });
  });
}

/** Checks the base64url `signature` of `input` (Latin-1) through node:crypto's callback form, in libuv's thread pool. */
export function verifyInThreadPool(key: WorkerKey, input: string, signature: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    cryptoVerify(key.hash, Buffer.from(input, 'latin1'), key.key, Buffer.from(signature, 'base64url'), (err, ok) => {
      if (err) reject(err);
      else resolve(ok);
    });
  });
}

/** One operation asked for, waiting for its batch. */
interface Waiting {
  keyId: number;
  input: string;
  /** base64url signature to check, or null to sign. */
  signature: string | null;
  resolve: (answer: string | boolean) => void;
  reject: (err: Error) => void;
  /** Whether the operation already went to a worker that stopped. */
  retried: boolean;
}

/**
 * A worker thread that signs and verifies in batches: the operations asked for during one turn of
 * the event loop go over in one message, and while a batch is worked on the next one gathers.
 * Under load a batch holds many operations, so the hand-off (a message each way, a thread woken)
 * is paid once per batch rather than once per operation as with node:crypto's callback forms,
 * whose thread-pool job wakes a pool thread every time. For a P-256 signature or an RSA
 * verification (some 20 µs each) that hand-off was the larger cost: in the issuer benchmark the
 * worker took a fifth off the server's CPU time per ES256 token.
 *
 * One worker serves the whole process. It is created on first use and does not keep the process
 * alive while idle. If it stops, the batch it held goes to a new worker once (an operation that
 * fails there too is refused). Where worker threads are not allowed (Node's permission model
 * without `--allow-worker`), operations go to the thread pool one by one instead.
 */
class CryptoWorker {
  private worker: Worker | undefined;
  /** Set when a worker could not be created: the thread pool does the work from then on. */
  private unavailable = false;
  private readonly keys = new Map<number, WorkerKey>();
  private nextKeyId = 0;
  /** The batch being gathered. */
  private gathering: Waiting[] = [];
  /** The batch the worker is working on, if any. */
  private working: Waiting[] | undefined;
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
   * Registers a key; returns its id for {@link sign} and {@link verify}. When `owner` (the signer
   * or signature check using the key) is garbage-collected, the key is removed as by
   * {@link removeKey}: an issuer or JWKS key dropped by its host frees the worker's copy too.
   */
  addKey(key: WorkerKey, owner: object): number {
    const id = ++this.nextKeyId;
    this.keys.set(id, key);
    this.released.register(owner, id);
    this.worker?.postMessage({ id, key });
    return id;
  }

  /**
   * Forgets a key: the worker drops its copy once the operations already asked of it are done (a
   * request may have used the key just before its owner let it go). Removing a key twice is harmless.
   */
  removeKey(id: number): void {
    if (!this.keys.has(id) || this.dropping.includes(id)) return;
    this.dropping.push(id);
    if (this.gathering.length === 0) this.drop();
  }

  /** Signs `input` (UTF-8) with key `keyId`; resolves to the base64url signature. */
  sign(keyId: number, input: string): Promise<string> {
    return this.ask(keyId, input, null) as Promise<string>;
  }

  /** Checks the base64url `signature` of `input` (Latin-1) against key `keyId`. */
  verify(keyId: number, input: string, signature: string): Promise<boolean> {
    return this.ask(keyId, input, signature) as Promise<boolean>;
  }

  /** Stops the worker (for tests of recovery): its batch goes to a new worker. */
  async stop(): Promise<void> {
    await this.worker?.terminate();
  }

  private ask(keyId: number, input: string, signature: string | null): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      this.gathering.push({ keyId, input, signature, resolve, reject, retried: false });
      if (this.working === undefined && !this.scheduled) {
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
    if (this.gathering.length === 0 || this.working !== undefined) return;
    const batch = this.gathering;
    this.gathering = [];
    const worker = this.worker ?? this.start();
    if (worker === undefined) {
      for (const waiting of batch) this.inThreadPool(waiting);
    } else {
      const message: (number | string | null)[] = new Array(batch.length * 3);
      for (let i = 0; i < batch.length; i++) {
        const waiting = batch[i] as Waiting;
        message[3 * i] = waiting.keyId;
        message[3 * i + 1] = waiting.input;
        message[3 * i + 2] = waiting.signature;
      }
      this.working = batch;
      // Keep the process alive while answers are owed; an idle worker does not.
      worker.ref();
      worker.postMessage(message);
    }
    if (this.dropping.length > 0) this.drop();
  };

  private inThreadPool(waiting: Waiting): void {
    const key = this.keys.get(waiting.keyId);
    if (key === undefined) {
      waiting.reject(new Error('the crypto worker does not hold that key'));
      return;
    }
    const done = waiting.signature === null
      ? signInThreadPool(key, waiting.input)
      : verifyInThreadPool(key, waiting.input, waiting.signature);
    done.then(waiting.resolve, waiting.reject);
  }

  private start(): Worker | undefined {
    if (this.unavailable) return undefined;
    let worker: Worker;
    try {
      // execArgv: [] so that none of the host's flags (a loader, --input-type=module) reach this plain CommonJS program.
      worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], name: 'express-m2m crypto' });
    } catch {
      this.unavailable = true;
      return undefined;
    }
    worker.unref();
    for (const [id, key] of this.keys) worker.postMessage({ id, key });
    worker.on('message', (answers: (string | boolean | null)[]) => {
      const batch = this.working ?? [];
      this.working = undefined;
      worker.unref();
      if (this.gathering.length > 0) this.send();
      for (let i = 0; i < batch.length; i++) {
        const waiting = batch[i] as Waiting;
        const answer = answers[i];
        if (answer === null || answer === undefined) waiting.reject(new Error('node:crypto refused the operation'));
        else waiting.resolve(answer);
      }
    });
    // An error in the worker ends it; exit follows either way.
    worker.on('error', () => {});
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const batch = this.working ?? [];
      this.working = undefined;
      // Sign and verify can be asked again: the batch goes first to a new worker, once.
      const again = batch.filter((waiting) => !waiting.retried);
      for (const waiting of batch) {
        if (waiting.retried) waiting.reject(new Error('the crypto worker stopped'));
        waiting.retried = true;
      }
      this.gathering = [...again, ...this.gathering];
      if (this.gathering.length > 0) this.send();
    });
    this.worker = worker;
    return worker;
  }
}

let shared: CryptoWorker | undefined;

/** The process's crypto worker, created on first use. */
export function cryptoWorker(): CryptoWorker {
  shared ??= new CryptoWorker();
  return shared;
}

export type { CryptoWorker };
