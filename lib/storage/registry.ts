import type { Knex } from 'knex';
import type { Client } from '../core/client.js';
import { decodeSecretHash } from '../core/secrets.js';
import type { TableNames } from './migrations.js';
import { clientFromRow, type ClientRow, type SecretRow } from './rows.js';

/** A client with what authentication needs of its secrets. */
export interface CredentialEntry {
  client: Client;
  secrets: { id: string; expiresAt: number | null }[];
  /** The secrets' hashes, decoded once, in the order of `secrets`. */
  hashes: Buffer[];
}

/**
 * Finds a client's entry: a plain value while the registry copy is fresh (no promise, no wait),
 * otherwise a promise. Undefined for an unknown client.
 */
export type CredentialLookup = (clientId: string) => CredentialEntry | undefined | Promise<CredentialEntry | undefined>;

const BUSY_RETRIES = 5;
/** How long past its ttl the last snapshot may answer while the database cannot be read, in ms. */
export const STALE_LIMIT = 60_000;
/** Least time between two attempts to read a failing database, in ms. */
const RETRY_GAP = 1_000;
/** Longest a request waits on a slow database before the last snapshot answers it, in ms. */
const STALE_WAIT = 1_000;
/** Least time between two background checks of the snapshot, in ms. */
const MIN_POLL = 100;

/**
 * Runs `work` in a transaction, again (up to {@link BUSY_RETRIES} times, after a short random
 * wait) when SQLite reports the database busy beyond its busy timeout: the CLI and a running
 * issuer share one file by design. The failed attempt was rolled back, so nothing is done twice.
 */
export async function inWriteTransaction<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await knex.transaction(work);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || attempt >= BUSY_RETRIES) throw err;
      await new Promise((resolve) => { setTimeout(resolve, 20 + Math.random() * 80 * (attempt + 1)); });
    }
  }
}

/** The client registry of one store, and the only way its changes should be made. */
export interface ClientRegistry {
  /**
   * Runs a change in a transaction that first bumps the revision counter (so every instance sees
   * the change when it commits), then drops this instance's snapshot so it sees the change at once.
   */
  change<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  /** The client's entry: from the snapshot, without a promise while it is fresh, or from the database. */
  lookup: CredentialLookup;
}

/** Adds a stored secret to a client's entry. */
function addSecret(entry: CredentialEntry, id: string, hash: string, expiresAt: number | string | null): void {
  entry.secrets.push({ id, expiresAt: expiresAt === null ? null : Number(expiresAt) });
  entry.hashes.push(decodeSecretHash(hash));
}

/** The whole registry at one revision of the database. */
interface Snapshot {
  entries: Map<string, CredentialEntry>;
  revision: string;
  /** performance.now() of the last check against the database. */
  checkedAt: number;
}

async function readRevision(knex: Knex, t: TableNames): Promise<string> {
  const row = await knex(t.revisions).where({ name: 'clients' }).first('value') as { value: number | string } | undefined;
  return String(row?.value ?? 0);
}

async function loadSnapshot(knex: Knex, t: TableNames, revision: string): Promise<Snapshot> {
  const [clientRows, secretRows] = await Promise.all([
    knex<ClientRow>(t.clients).select('*'),
    knex<SecretRow>(t.secrets).select('id', 'client_id', 'secret_hash', 'expires_at'),
  ]);
  const entries = new Map<string, CredentialEntry>();
  for (const row of clientRows) entries.set(row.client_id, { client: clientFromRow(row), secrets: [], hashes: [] });
  for (const row of secretRows) {
    const entry = entries.get(row.client_id);
    if (entry) addSecret(entry, row.id, row.secret_hash, row.expires_at);
  }
  return { entries, revision, checkedAt: performance.now() };
}

/** One client's entry, straight from the database (the registry copy turned off). */
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

/**
 * The client registry as one in-memory snapshot, checked against the database's revision counter
 * at most once per `ttl`. The snapshot holds every client and secret hash, so that a known and an
 * unknown client id are both answered from memory, in the same time. When the database cannot be
 * read, the last snapshot goes on answering for up to {@link STALE_LIMIT} past its ttl (changes
 * made meanwhile are seen once the database answers again), so that an outage of a few seconds
 * stops no token issuance.
 *
 * While lookups use it (one within {@link STALE_LIMIT}), the snapshot is also checked in the
 * background once per `ttl`, not only when a lookup finds it old: a client disabled while the
 * database still answered is seen within `ttl` even when no request came before an outage began,
 * so the stale copy served through the outage never predates a change by more than that. The
 * timer is unref'd and stops by itself once lookups stop.
 *
 * @param ttl - Milliseconds the snapshot is trusted before the revision is read again; 0 turns
 *   the snapshot off (one query per lookup).
 */
export function createClientRegistry(knex: Knex, t: TableNames, ttl: number): ClientRegistry {
  let snapshot: Snapshot | undefined;
  let refreshing: Promise<Snapshot> | undefined;
  let generation = 0;

  async function bumpRevision(trx: Knex.Transaction): Promise<void> {
    await trx(t.revisions).where({ name: 'clients' }).increment('value', 1);
  }

  async function change<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    try {
      return await inWriteTransaction(knex, async (trx) => {
        // The revision bump comes first: a transaction that reads before it writes cannot upgrade
        // its SQLite lock while another process writes (SQLITE_BUSY at once, whatever the busy
        // timeout); one that writes first waits for the lock instead. On PostgreSQL it serialises
        // changes on the revision row, which they are anyway.
        await bumpRevision(trx);
        return work(trx);
      });
    } finally {
      // A refresh already under way may have read the rows before the change: its result must
      // not become the snapshot.
      generation++;
      snapshot = undefined;
      refreshing = undefined;
    }
  }

  /** When the last refresh failed (performance.now()). */
  let failedAt = Number.NEGATIVE_INFINITY;

  function refresh(): Promise<Snapshot> {
    if (refreshing) return refreshing;
    const started = generation;
    const previous = snapshot;
    const promise = (async () => {
      const revision = await readRevision(knex, t);
      const next = previous && previous.revision === revision
        ? { ...previous, checkedAt: performance.now() }
        : await loadSnapshot(knex, t, revision);
      if (generation === started) snapshot = next;
      return next;
    })().catch((err: unknown) => {
      failedAt = performance.now();
      throw err;
    }).finally(() => {
      if (refreshing === promise) refreshing = undefined;
    });
    refreshing = promise;
    return promise;
  }

  let poller: NodeJS.Timeout | undefined;
  let usedAt = 0;

  function poll(): void {
    if (performance.now() - usedAt > STALE_LIMIT) {
      clearInterval(poller);
      poller = undefined;
      return;
    }
    // A failure is remembered in failedAt; lookups then serve the stale snapshot.
    refresh().catch(() => undefined);
  }

  /** Notes a lookup, and keeps the snapshot checked in the background while lookups come. */
  function used(now: number): void {
    usedAt = now;
    if (poller !== undefined) return;
    poller = setInterval(poll, Math.max(ttl, MIN_POLL));
    poller.unref();
  }

  function currentSnapshot(): Snapshot | Promise<Snapshot> {
    // Freshness runs on the monotonic clock, not the injectable one: a test clock that stands
    // still must not freeze the registry.
    const now = performance.now();
    used(now);
    if (snapshot && now - snapshot.checkedAt < ttl) return snapshot;
    // While the database fails, the last snapshot keeps answering for a bounded time, and the
    // database is asked again at most once per RETRY_GAP; requests never wait on it for long.
    const stale = snapshot && now - snapshot.checkedAt < ttl + STALE_LIMIT ? snapshot : undefined;
    if (stale && now - failedAt < RETRY_GAP) return stale;
    const fresh = refresh();
    if (!stale) return fresh;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Snapshot>((resolve) => { timer = setTimeout(() => resolve(stale), STALE_WAIT); });
    return Promise.race([fresh.catch(() => stale), deadline]).finally(() => clearTimeout(timer));
  }

  return {
    change,
    lookup(clientId) {
      if (ttl === 0) return queryCredentials(knex, t, clientId);
      const current = currentSnapshot();
      return current instanceof Promise ? current.then((fresh) => fresh.entries.get(clientId)) : current.entries.get(clientId);
    },
  };
}
