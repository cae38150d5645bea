import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { createKnexStore } from '../../lib/index.js';
import { sqliteDatabase, type TestDatabase } from '../support/db.js';

const SCRIPT = fileURLToPath(new URL('./rotate-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Writer { child: ChildProcessWithoutNullStreams; ready: Promise<void>; result: Promise<{ ok: number; failures: string[] }> }

function startWriter(file: string, clientId: string, count: number): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, file, clientId, String(count)], { cwd: ROOT });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const lines: string[] = [];
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => { markReady = resolve; });
  createInterface({ input: child.stdout }).on('line', (line) => { if (line === 'ready') markReady(); else lines.push(line); });
  const result = new Promise<{ ok: number; failures: string[] }>((resolve, reject) => {
    child.on('close', (code) => {
      if (code !== 0 || lines.length === 0) reject(new Error(`writer exited ${code}: ${stderr.slice(-1500)}`));
      else resolve(JSON.parse(lines.at(-1) as string) as { ok: number; failures: string[] });
    });
  });
  result.catch(() => {});
  return { child, ready: Promise.race([ready, result.then(() => undefined)]), result };
}

describe('createKnexStore() with two writer processes on one SQLite file', () => {
  let db: TestDatabase;
  beforeEach(() => { db = sqliteDatabase(); });
  afterEach(() => db.destroy());

  it('loses and fails nothing: 2 x 40 concurrent rotations and updates all land', async function () {
    this.timeout(60_000);
    const store = createKnexStore(db.knex);
    await store.migrate();
    await store.clients.create({ clientId: 'shared-job', name: 'j', scopes: ['a'], audiences: ['aud'] });
    const file = (db.knex.client.config as { connection: { filename: string } }).connection.filename;
    const writers = [startWriter(file, 'shared-job', 40), startWriter(file, 'shared-job', 40)];
    try {
      await Promise.all(writers.map((w) => w.ready));
      for (const w of writers) w.child.stdin.end('go\n');
      const results = await Promise.all(writers.map((w) => w.result));
      expect(results).to.deep.equal([{ ok: 40, failures: [] }, { ok: 40, failures: [] }]);
      // Every rotation added a secret (the first one plus 2 x 30 rotations), none expired yet.
      expect(await store.clients.listSecrets('shared-job')).to.have.length(1 + 2 * 30);
    } finally {
      for (const w of writers) if (w.child.exitCode === null) w.child.kill();
    }
  });
});
