/**
 * One writer process for the two-writer SQLite test (run by sqlite-writers.test.ts, not by mocha):
 * `node --import tsx rotate-child.ts <sqlite file> <client id> <count>`.
 *
 * Opens the shared file as the CLI and a running issuer each do, waits for `go` on stdin, then
 * makes `count` changes at once (secret rotations and client updates) and prints one JSON line:
 * how many succeeded and the codes or messages of the failures.
 */
import { createInterface } from 'node:readline';
import knexFactory from 'knex';
import { createKnexStore } from '../../lib/index.js';

const [file, clientId, countText] = process.argv.slice(2);
if (file === undefined || clientId === undefined || countText === undefined) {
  process.stderr.write('usage: rotate-child.ts <sqlite file> <client id> <count>\n');
  process.exit(2);
}
const knex = knexFactory({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true });
const store = createKnexStore(knex);
await store.clients.get(clientId);
process.stdout.write('ready\n');
await new Promise<void>((resolve) => {
  const lines = createInterface({ input: process.stdin });
  lines.once('line', () => { lines.close(); resolve(); });
});
const outcomes = await Promise.allSettled(Array.from({ length: Number(countText) }, (_, i) => (i % 4 === 3
  ? store.clients.update(clientId, { name: `writer ${process.pid} ${i}` })
  : store.clients.rotateSecret(clientId, { gracePeriod: 3600 }))));
const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [String((o.reason as { code?: unknown }).code ?? (o.reason as Error).message)] : []));
process.stdout.write(`${JSON.stringify({ ok: outcomes.length - failures.length, failures })}\n`);
await store.clients.flushUsage();
await knex.destroy();
