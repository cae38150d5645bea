/**
 * The program of the JWT worker thread ({@link ./jwt-worker.ts}): it keeps registered keys and
 * answers batches of jobs with jsonwebtoken, through {@link runJob}. A message is a key to keep
 * (`{ id, entry }`) or drop (`{ id }`), or a batch of quadruples `[kind, keyId, data, now]`,
 * answered with one array of {@link JobAnswer}s, in order.
 */
import { parentPort } from 'node:worker_threads';
import { runJob, type JobAnswer, type JobKind, type JwtKeyEntry } from './jwt-jobs.js';

const keys = new Map<number, JwtKeyEntry>();
const port = parentPort;
if (port === null) throw new Error('jwt-worker-thread runs as a worker thread only');

port.on('message', (message: { id: number; entry?: JwtKeyEntry } | unknown[]) => {
  if (!Array.isArray(message)) {
    if (message.entry === undefined) keys.delete(message.id);
    else keys.set(message.id, message.entry);
    return;
  }
  const answers: JobAnswer[] = new Array(message.length / 4);
  for (let i = 0, j = 0; i < message.length; i += 4, j++) {
    answers[j] = runJob(keys.get(message[i + 1] as number), message[i] as JobKind, message[i + 2], message[i + 3] as number);
  }
  port.postMessage(answers);
});
