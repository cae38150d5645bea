/**
 * A guard's local view of an issuer's revocations, kept by polling the issuer's revocation list
 * (`GET <issuer>/revocations?since=<cursor>`) in the background, so that checking a token against
 * it is a map lookup and no request waits on the network for it (but the first, and those after
 * the view went stale).
 */
import type { FetchFunction } from './jwks.js';
import { fetchJson } from './metadata.js';
import { unavailable } from './unavailable.js';

const listUnavailable = (cause: unknown) => unavailable('the revocation list is unavailable', cause);

/** Largest revocation list page read, in bytes (a page holds at most 10 000 entries). */
const MAX_LIST_BYTES = 8 * 1024 * 1024;
/** Pages read in one refresh at most; the rest waits for the next. */
const MAX_PAGES = 100;
/** Polling stops after this long without a check, and starts again at the next one, in ms. */
const IDLE_AFTER = 5 * 60_000;

/** Settings of {@link createRevocationView}; times in milliseconds. */
export interface RevocationViewSettings {
  /** The issuer's revocation list. */
  uri: string;
  /** How often the list is read. */
  interval: number;
  /** How long the view may go without a successful read before tokens are refused with 503. */
  maxStale: number;
  /** Deadline of one read. */
  timeout: number;
  fetch: FetchFunction;
  /** Current time in ms since the epoch, for dropping expired entries. */
  clock: () => number;
  /** Called after each read, successful or not. */
  onRefresh?: (outcome: RevocationReadOutcome) => void;
}

/** A read of the list: how many entries the view holds after it, or why it failed. */
export type RevocationReadOutcome =
  | { ok: true; uri: string; entries: number; durationMs: number }
  | { ok: false; uri: string; error: unknown; durationMs: number };

/** What the view needs of a token: its `jti`, client and `iat` (seconds). */
export interface RevocableToken {
  jti?: unknown;
  clientId: string | undefined;
  iat?: unknown;
}

/** `revoked`, `ok`, or `stale`: the view is too old to say (see {@link RevocationView.whenFresh}). */
export type RevocationStatus = 'ok' | 'revoked' | 'stale';

/** One issuer's revocations as this process knows them. */
export interface RevocationView {
  /** The token's status by the view as it is now; synchronous. */
  status(token: RevocableToken): RevocationStatus;
  /**
   * Resolves once the view is fresh enough to answer: at once when it is, after a read when not.
   *
   * @throws {@link TemporarilyUnavailableError} when it cannot be read (a failed read is not
   *   tried again before `interval` has passed).
   */
  whenFresh(): Promise<void>;
  /** Reads the list now, whatever the timer says. */
  refresh(): Promise<void>;
}

/** An entry of the list on the wire. */
type WireEntry =
  | { type: 'token'; client_id: string; jti: string; exp: number }
  | { type: 'client'; client_id: string; revoked_before: number; exp: number };

function isEntry(value: unknown): value is WireEntry {
  if (value === null || typeof value !== 'object') return false;
  const e = value as Record<string, unknown>;
  if (typeof e.client_id !== 'string' || !Number.isFinite(e.exp)) return false;
  if (e.type === 'token') return typeof e.jti === 'string';
  return e.type === 'client' && Number.isFinite(e.revoked_before);
}

/** One page of the list, checked. */
function readPage(body: Record<string, unknown>): { cursor: string; more: boolean; entries: WireEntry[] } {
  const { cursor, more, revocations } = body;
  if (typeof cursor !== 'string' || typeof more !== 'boolean' || !Array.isArray(revocations) || !revocations.every(isEntry)) {
    throw new Error('the revocation list is malformed');
  }
  return { cursor, more, entries: revocations };
}

/** The revoked tokens and client cutoffs of one list, as read so far. */
function createRevocationSet() {
  /** Revoked jtis, by client id and jti, with their exp (s). */
  const tokens = new Map<string, number>();
  /** Per client: tokens with an iat before `before` (s) are revoked; with the entry's exp (s). */
  const clients = new Map<string, { before: number; exp: number }>();
  return {
    apply(entry: WireEntry): void {
      if (entry.type === 'token') {
        tokens.set(`${entry.client_id}\n${entry.jti}`, entry.exp);
        return;
      }
      const cutoff = clients.get(entry.client_id);
      if (!cutoff || cutoff.before < entry.revoked_before) clients.set(entry.client_id, { before: entry.revoked_before, exp: entry.exp });
    },
    /** Drops the entries whose tokens have all expired. */
    prune(nowSeconds: number): void {
      for (const [key, exp] of tokens) if (exp <= nowSeconds) tokens.delete(key);
      for (const [key, entry] of clients) if (entry.exp <= nowSeconds) clients.delete(key);
    },
    isRevoked({ clientId, jti, iat }: RevocableToken): boolean {
      if (clientId === undefined) return false;
      if (typeof jti === 'string' && tokens.has(`${clientId}\n${jti}`)) return true;
      const cutoff = clients.get(clientId);
      // A token without an iat cannot be shown to postdate a cutoff.
      return cutoff !== undefined && !(typeof iat === 'number' && iat >= cutoff.before);
    },
    size: (): number => tokens.size + clients.size,
  };
}

/**
 * Creates the view of one issuer's revocation list. Reads start at the first
 * {@link RevocationView.status} or {@link RevocationView.whenFresh}, then every `interval` while
 * checks come (the timer is unref'd and stops after five idle minutes). Entries are dropped once
 * their `exp` has passed.
 */
export function createRevocationView(settings: RevocationViewSettings): RevocationView {
  const { uri, interval, maxStale, timeout } = settings;
  const known = createRevocationSet();
  let cursor: string | undefined;
  let syncedAt = Number.NEGATIVE_INFINITY;
  let failedAt = Number.NEGATIVE_INFINITY;
  let lastError: unknown;
  let reading: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let usedAt = 0;

  async function read(): Promise<void> {
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = cursor === undefined ? uri : `${uri}${uri.includes('?') ? '&' : '?'}since=${encodeURIComponent(cursor)}`;
      const { body } = await fetchJson(settings.fetch, url, timeout, 'application/json', MAX_LIST_BYTES);
      const next = readPage(body);
      for (const entry of next.entries) known.apply(entry);
      cursor = next.cursor;
      if (!next.more) break;
    }
    known.prune(settings.clock() / 1000);
  }

  function refresh(): Promise<void> {
    if (reading) return reading;
    const started = performance.now();
    reading = read().then(() => {
      syncedAt = started;
      settings.onRefresh?.({ ok: true, uri, entries: known.size(), durationMs: performance.now() - started });
    }, (err: unknown) => {
      failedAt = performance.now();
      lastError = err;
      settings.onRefresh?.({ ok: false, uri, error: err, durationMs: failedAt - started });
      throw listUnavailable(err);
    }).finally(() => {
      reading = undefined;
      schedule();
    });
    return reading;
  }

  function schedule(): void {
    if (timer !== undefined || performance.now() - usedAt > IDLE_AFTER) return;
    timer = setTimeout(() => {
      timer = undefined;
      refresh().catch(() => undefined);
    }, interval);
    timer.unref();
  }

  function touch(): void {
    usedAt = performance.now();
    if (timer === undefined && reading === undefined) schedule();
  }

  const fresh = (): boolean => performance.now() - syncedAt <= maxStale;

  return {
    status(token) {
      touch();
      if (!fresh()) return 'stale';
      return known.isRevoked(token) ? 'revoked' : 'ok';
    },
    async whenFresh() {
      touch();
      if (fresh()) return;
      if (reading === undefined && performance.now() - failedAt < interval) throw listUnavailable(lastError);
      await refresh();
    },
    refresh,
  };
}
