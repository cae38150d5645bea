import type { Knex } from 'knex';
import { LRUCache } from 'lru-cache';
import type { Client } from '../core/client.js';
import { createTypedEmitter, type TypedEvents } from '../core/events.js';
import { decodeSecretHash } from '../core/secrets.js';
import { createChangeFeed, type StoreEventMap } from './change-feed.js';
import type { TableNames } from './migrations.js';
import { clientFromRow, type ClientRow } from './rows.js';

/** A client with what authentication needs of its secrets. */
export interface CredentialEntry {
  client: Client;
  secrets: { id: string; expiresAt: number | null }[];
  /** The secrets' hashes, decoded once, in the order of `secrets`. */
  hashes: Buffer[];
}

/**
 * Finds a client's entry: a plain value when the cache holds it (no promise, no wait), otherwise
 * a promise. Undefined for an unknown client.
 */
export type CredentialLookup = (clientId: string) => CredentialEntry | undefined | Promise<CredentialEntry | undefined>;

const BUSY_RETRIES = 5;

/**
 * Whether a failed transaction may simply be run again: SQLite busy beyond its busy timeout (the
 * CLI and a running issuer share one file by design), or a PostgreSQL deadlock (a change through
 * the store against SQL typed on the same rows), where the database rolled one side back.
 */
function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === '40P01';
}

/**
 * Runs `work` in a transaction, again (up to {@link BUSY_RETRIES} times, after a short random
 * wait) when SQLite reports the database busy or PostgreSQL a deadlock. The failed attempt was
 * rolled back, so nothing is done twice.
 */
export async function inWriteTransaction<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await knex.transaction(work);
    } catch (err) {
      if (!isRetryable(err) || attempt >= BUSY_RETRIES) throw err;
      await new Promise((resolve) => { setTimeout(resolve, 20 + Math.random() * 80 * (attempt + 1)); });
    }
  }
}

/** Settings of {@link createClientRegistry}; times in milliseconds. */
export interface RegistrySettings {
  /** Most clients cached, and as many unknown ids; 0 turns the cache off. */
  size: number;
  /** Age after which a cached entry is read again on its next use; 0 turns the cache off. */
  ttl: number;
  /** How often the change log is read. */
  pollInterval: number;
  /** How long after the last good poll cached entries answer while the database fails. */
  outageWindow: number;
  /** For the events' dates. */
  clock: () => number;
}

/** The client registry of one store, and the only way its changes should be made. */
export interface ClientRegistry {
  /**
   * Runs a change to `clientId` (or its secrets) in a transaction that first bumps the revision
   * counter, then drops this instance's cached entry of it. Other instances learn of the change
   * from the change log, which the database's triggers write, within their poll interval.
   */
  change<T>(clientId: string, work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  /** The client's entry: from the cache, without a promise when it holds it, or from the database. */
  lookup: CredentialLookup;
  /** `degraded` and `recovered`. */
  events: TypedEvents<StoreEventMap>;
}

/** Adds a stored secret to a client's entry. */
function addSecret(entry: CredentialEntry, id: string, hash: string, expiresAt: number | string | null): void {
  entry.secrets.push({ id, expiresAt: expiresAt === null ? null : Number(expiresAt) });
  entry.hashes.push(decodeSecretHash(hash));
}

/** One client's entry, in one statement (so from one snapshot of the database). */
async function queryCredentials(knex: Knex, t: TableNames, clientId: string): Promise<CredentialEntry | undefined> {
  const rows = await knex(t.clients)
    .leftJoin(t.secrets, `${t.secrets}.client_id`, `${t.clients}.client_id`)
    .where(`${t.clients}.client_id`, clientId)
    .select(`${t.clients}.*`, `${t.secrets}.id as secret_id`, `${t.secrets}.secret_hash`, `${t.secrets}.expires_at`) as
    (ClientRow & { secret_id: string | null; secret_hash: string | null; expires_at: number | string | null })[];
  const first = rows[0];
  if (first === undefined) return undefined;
  const entry: CredentialEntry = { client: clientFromRow(first), secrets: [], hashes: [] };
  for (const r of rows) {
    if (r.secret_id !== null && r.secret_hash !== null) addSecret(entry, r.secret_id, r.secret_hash, r.expires_at);
  }
  return entry;
}

/** A cached answer: the entry (undefined for an unknown id) and when it was read (performance.now()). */
interface Cached {
  entry: CredentialEntry | undefined;
  loadedAt: number;
}

/**
 * The client registry as a bounded cache of the clients in use, filled on demand (unknown ids
 * too, in a cache of their own, so that a flood of made-up ids cannot push real clients out).
 * An entry is dropped when the change log names its client (see `change-feed.ts`), and read again
 * once older than `ttl`. While the database cannot be read, cached entries go on answering for
 * up to `outageWindow` after the last good poll; other lookups fail (the token endpoint answers
 * 503). Memory is bounded by `size`, not by the number of registered clients.
 */
export function createClientRegistry(knex: Knex, t: TableNames, settings: RegistrySettings): ClientRegistry {
  const { size, ttl } = settings;
  const emitter = createTypedEmitter<StoreEventMap>();
  const known = new LRUCache<string, Cached>({ max: Math.max(size, 1) });
  const unknown = new LRUCache<string, Cached>({ max: Math.max(size, 1) });
  const loading = new Map<string, Promise<CredentialEntry | undefined>>();
  // Bumped by every eviction: a load that started before one may have read what it evicted, so
  // its answer serves the requests that were already waiting for it, but is neither cached nor
  // shared with later requests.
  let evictions = 0;

  const control = {
    evict(clientIds: readonly string[]) {
      evictions++;
      for (const id of clientIds) {
        known.delete(id);
        unknown.delete(id);
        loading.delete(id);
      }
    },
    clear() {
      evictions++;
      known.clear();
      unknown.clear();
      loading.clear();
    },
  };
  const feed = createChangeFeed(knex, t, control, {
    interval: settings.pollInterval, outageWindow: settings.outageWindow, clock: settings.clock, emit: emitter.emit,
  });

  function load(clientId: string): Promise<CredentialEntry | undefined> {
    let pending = loading.get(clientId);
    if (pending) return pending;
    const before = evictions;
    pending = queryCredentials(knex, t, clientId).then((entry) => {
      if (evictions === before) (entry ? known : unknown).set(clientId, { entry, loadedAt: performance.now() });
      return entry;
    }).finally(() => {
      if (loading.get(clientId) === pending) loading.delete(clientId);
    });
    loading.set(clientId, pending);
    return pending;
  }

  /** The cached answer when it may be used; reads it again, in its place, once older than `ttl`. */
  function fromCache(clientId: string, outage: boolean): CredentialEntry | undefined | Promise<CredentialEntry | undefined> {
    const hit = known.get(clientId) ?? unknown.get(clientId);
    if (hit === undefined) return load(clientId);
    if (outage || performance.now() - hit.loadedAt < ttl) return hit.entry;
    return load(clientId).catch((err: unknown) => {
      if (feed.trust() === 'outage') return hit.entry;
      throw err;
    });
  }

  async function afterPoll(clientId: string): Promise<CredentialEntry | undefined> {
    await feed.poll();
    const trust = feed.trust();
    return trust === 'none' ? load(clientId) : fromCache(clientId, trust === 'outage');
  }

  async function change<T>(clientId: string, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    try {
      return await inWriteTransaction(knex, async (trx) => {
        // The revision bump comes first: a transaction that reads before it writes cannot upgrade
        // its SQLite lock while another process writes (SQLITE_BUSY at once, whatever the busy
        // timeout); one that writes first waits for the lock instead. Instances of versions that
        // read the counter instead of the change log see the change through it.
        await trx(t.revisions).where({ name: 'clients' }).increment('value', 1);
        return work(trx);
      });
    } finally {
      control.evict([clientId]);
    }
  }

  return {
    change,
    events: emitter.events,
    lookup(clientId) {
      if (size === 0 || ttl === 0) return queryCredentials(knex, t, clientId);
      feed.touch();
      const trust = feed.trust();
      return trust === 'none' ? afterPoll(clientId) : fromCache(clientId, trust === 'outage');
    },
  };
}
