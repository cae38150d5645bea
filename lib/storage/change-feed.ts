/**
 * Follows the client change log (`<prefix>client_changes`, written by the database's triggers):
 * each instance reads the rows past the last one it has seen every `changePollInterval` and hands
 * their client ids to the cache, which drops exactly those. It also tells the cache how far its
 * entries can be trusted: up to `maxLag` after the last poll that succeeded, and, while polls
 * fail, up to `outageWindow` after it (the instance says so with `degraded` and `recovered`).
 */
import type { Knex } from 'knex';
import type { EmitFunction } from '../core/events.js';
import { databaseNowMs } from './change-triggers.js';
import type { TableNames } from './migrations.js';

/** Events of the store's `events` emitter. */
export interface StoreEventMap {
  /**
   * The database could not be read (the change log's poll failed): entries already cached go on
   * answering for up to `outageWindow` after the last good poll, other clients get 503.
   */
  degraded: { error: unknown; since: Date };
  /** The database answers again; `degradedFor` is in milliseconds. */
  recovered: { at: Date; degradedFor: number };
}

/** Rows read per poll at most; a poll that finds more drops the whole cache instead. */
const POLL_BATCH = 1000;
/** How long the change log keeps its rows, in ms. */
export const CHANGE_RETENTION = 3_600_000;
/** An instance that has not read the log for this long may have missed pruned rows: it starts over. */
const FALL_BEHIND = CHANGE_RETENTION / 2;
/** How often an instance prunes the log, in ms (and after each poll while a prune was cut short). */
const PRUNE_INTERVAL = 60_000;
const PRUNE_BATCH = 5000;
/** Polling stops after this long without a lookup, and starts again at the next one. */
const IDLE_AFTER = 30_000;

/** What the feed does to the cache. */
export interface CacheControl {
  /** Drops the entries of these client ids. */
  evict(clientIds: readonly string[]): void;
  /** Drops every entry. */
  clear(): void;
}

/** Settings of {@link createChangeFeed}, in milliseconds. */
export interface ChangeFeedSettings {
  interval: number;
  outageWindow: number;
  clock: () => number;
  emit: EmitFunction<StoreEventMap>;
}

/** How far the cache may be trusted now. */
export type Trust = 'synced' | 'outage' | 'none';

/** The change log seen from one instance. */
export interface ChangeFeed {
  /** Whether cached entries may answer: `synced` (a poll succeeded within `maxLag`), `outage`, or `none`. */
  trust(): Trust;
  /** A poll, the one under way if any; never rejects (failures leave the feed degraded). */
  poll(): Promise<void>;
  /** Records a lookup, which keeps the polling going. */
  touch(): void;
}

/** Creates the change feed of one store; polling starts at the first {@link ChangeFeed.touch}. */
export function createChangeFeed(knex: Knex, t: TableNames, cache: CacheControl, settings: ChangeFeedSettings): ChangeFeed {
  const { interval, outageWindow, clock, emit } = settings;
  const maxLag = interval + 1000;
  let lastSeq: number | undefined;
  let syncedAt = Number.NEGATIVE_INFINITY;
  let degradedSince: number | undefined;
  let polling: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastUse = Number.NEGATIVE_INFINITY;
  let prunedAt = performance.now();
  let pruneMore = false;

  /** Reads the rows past `lastSeq` and drops their clients; starts over when too far behind. */
  async function readChanges(started: number): Promise<void> {
    if (lastSeq === undefined || started - syncedAt > FALL_BEHIND) {
      const row = await knex(t.changes).max('seq as seq').first() as { seq: number | string | null } | undefined;
      cache.clear();
      lastSeq = Number(row?.seq ?? 0);
      return;
    }
    const rows = await knex(t.changes).where('seq', '>', lastSeq).orderBy('seq').limit(POLL_BATCH)
      .select('seq', 'client_id') as { seq: number | string; client_id: string }[];
    if (rows.length === 0) return;
    // A bulk change (an import, a mass update): cheaper to start the cache afresh.
    if (rows.length === POLL_BATCH) cache.clear();
    else cache.evict(rows.map((r) => r.client_id));
    lastSeq = Number(rows.at(-1)?.seq);
  }

  /** Deletes a bounded batch of rows older than the retention, by the database's clock. */
  async function prune(): Promise<void> {
    const started = performance.now();
    if (!pruneMore && started - prunedAt < PRUNE_INTERVAL) return;
    prunedAt = started;
    const old = knex(t.changes).select('seq').where('changed_at', '<', knex.raw(`${databaseNowMs(knex)} - ?`, [CHANGE_RETENTION]))
      .orderBy('seq').limit(PRUNE_BATCH);
    pruneMore = await knex(t.changes).whereIn('seq', old).delete() === PRUNE_BATCH;
  }

  function succeeded(started: number): void {
    syncedAt = started;
    if (degradedSince === undefined) return;
    const degradedFor = performance.now() - degradedSince;
    degradedSince = undefined;
    emit('recovered', { at: new Date(clock()), degradedFor: Math.round(degradedFor) });
  }

  function failed(error: unknown): void {
    if (degradedSince !== undefined) return;
    degradedSince = performance.now();
    emit('degraded', { error, since: new Date(clock()) });
  }

  function schedule(started: number): void {
    if (timer !== undefined || performance.now() - lastUse > IDLE_AFTER) return;
    timer = setTimeout(() => {
      timer = undefined;
      void poll();
    }, Math.max(0, interval - (performance.now() - started)));
    timer.unref();
  }

  function poll(): Promise<void> {
    if (polling) return polling;
    const started = performance.now();
    polling = readChanges(started).then(() => {
      succeeded(started);
      // Pruning is housekeeping: its failure says nothing about the registry.
      return prune().catch(() => undefined);
    }, failed).finally(() => {
      polling = undefined;
      schedule(started);
    });
    return polling;
  }

  return {
    trust() {
      const lag = performance.now() - syncedAt;
      if (lag <= maxLag) return 'synced';
      return degradedSince !== undefined && lag <= outageWindow ? 'outage' : 'none';
    },
    poll,
    touch() {
      lastUse = performance.now();
      if (timer === undefined && polling === undefined) schedule(Number.NEGATIVE_INFINITY);
    },
  };
}
