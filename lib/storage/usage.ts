/**
 * Last-used bookkeeping off the token path: each use is noted in memory, at most once per
 * `resolution` per secret, and the notes are written in batches on a timer, a few hundred secrets
 * per statement. On SQLite's single connection a token request that needs the database (a cache
 * miss) therefore waits behind at most one short statement, never behind a queue of writes.
 */
import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import type { TableNames } from './migrations.js';

/** How often noted uses are written, in ms. */
const FLUSH_INTERVAL = 1000;
/** Secrets per statement: 3 bound values each, well within SQLite's 999. */
const CHUNK = 200;
/** Most uses noted and not yet written; beyond it new uses wait for the next flush to be noted. */
const MAX_PENDING = 50_000;

/** The last-used recorder of one store. */
export interface UsageRecorder {
  /** Notes that `secretId` was used at `now` (ms since the epoch); writes it later. */
  record(secretId: string, now: number): void;
  /** Writes what is noted, and waits for writes under way. */
  flush(): Promise<void>;
}

/**
 * The `UPDATE` of one chunk: `last_used_at = CASE id WHEN ... END` for the chunk's ids, so that
 * each secret gets its own time in one statement.
 */
async function writeChunk(knex: Knex, t: TableNames, chunk: readonly [string, number][]): Promise<void> {
  const cases = chunk.map(() => 'WHEN ? THEN CAST(? AS BIGINT)').join(' ');
  await knex(t.secrets).whereIn('id', chunk.map(([id]) => id))
    .update({ last_used_at: knex.raw(`CASE id ${cases} END`, chunk.flat()) });
}

/**
 * Creates the recorder. `resolution` is the least time between two writes of one secret, in ms.
 */
export function createUsageRecorder(knex: Knex, t: TableNames, resolution: number): UsageRecorder {
  const lastNoted = new LRUCache<string, number>({ max: 100_000 });
  let pending = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  async function write(batch: Map<string, number>): Promise<void> {
    const rows = [...batch];
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      try {
        await writeChunk(knex, t, chunk);
      } catch {
        // A failed write must never fail a token request; the next use notes it again.
        for (const [id] of chunk) lastNoted.delete(id);
      }
      // Between chunks, requests waiting for the connection go first.
      await new Promise((resolve) => { setImmediate(resolve); });
    }
  }

  function flush(): Promise<void> {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.size > 0) {
      const batch = pending;
      pending = new Map();
      writing = writing.then(() => write(batch));
    }
    return writing;
  }

  return {
    record(secretId, now) {
      const previous = lastNoted.get(secretId);
      if (previous !== undefined && now - previous < resolution) return;
      if (pending.size >= MAX_PENDING) return;
      lastNoted.set(secretId, now);
      pending.set(secretId, now);
      if (timer === undefined) {
        timer = setTimeout(() => { void flush(); }, FLUSH_INTERVAL);
        timer.unref();
      }
    },
    flush,
  };
}
