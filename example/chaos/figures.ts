/**
 * The chaos run's call figures: the callers' per-second ticks added up over the run, by time
 * window, by cause of failure, and apart for the disabled client once it was disabled.
 */

/** What the calls of one client that ended within one tick saw (sent by caller-node.ts). */
export interface Bucket {
  clientId: string;
  /** Whether these calls started after the client was disabled. */
  withdrawn: boolean;
  calls: number;
  ok: number;
  /** Failed calls by what failed. */
  failed: Record<string, number>;
  /** Calls answered 200, by the kid of the token the API accepted. */
  kids: Record<string, number>;
  /** When the last call answered 200 ended (ms since the epoch). */
  lastOkAt?: number;
}

/** Token events of one caller process within one tick (sent by caller-node.ts). */
export interface TokenTick {
  /** Tokens from the token endpoint. */
  endpoint: number;
  /** Tokens another process had stored in Redis. */
  cache: number;
  /** Token requests retried. */
  retries: number;
  /** Background refreshes that failed (the current token still served). */
  refreshFailed: number;
}

/** One cause of failed calls over the run. */
export interface Cause {
  /** Failed calls of clients not disabled at the time. */
  enabled: number;
  /** Failed calls of the disabled client, started after it was disabled. */
  withdrawn: number;
  /** Seconds since the start of the load of the first and last tick that held one. */
  first: number;
  last: number;
}

/** Calls that ended within one window of the timeline. */
export interface Window {
  from: number;
  calls: number;
  ok: number;
  failedEnabled: number;
  failedWithdrawn: number;
  /** Failed calls of clients not disabled, by cause. */
  causes: Record<string, number>;
  /** The callers' token events. */
  tokens: TokenTick;
}

/** The calls' totals. */
export interface Totals {
  made: number;
  ok: number;
  /** Calls of the disabled client started after it was disabled. */
  madeWithdrawn: number;
  failedEnabled: number;
  failedWithdrawn: number;
  /** Calls by client id. */
  byClient: Record<string, { calls: number; ok: number; failed: number }>;
  /** Calls answered 200, by kid. */
  kids: Record<string, { calls: number; first: number; last: number }>;
}

/** Adds up ticks. Times are given in ms since the epoch and kept as seconds since `start`. */
export function createTally(start: number, window: number) {
  const windows: Window[] = [];
  const causes: Record<string, Cause> = {};
  const totals: Totals = { made: 0, ok: 0, madeWithdrawn: 0, failedEnabled: 0, failedWithdrawn: 0, byClient: {}, kids: {} };
  const lastOkAt: Record<string, number> = {};

  function add(at: number, buckets: readonly Bucket[], tokens: TokenTick): void {
    const t = Math.max(0, (at - start) / 1000);
    // A tick covers the second before it: it belongs to the window where that second started.
    const index = Math.max(0, Math.floor((t - 0.5) / window));
    while (windows.length <= index) {
      windows.push({
        from: windows.length * window, calls: 0, ok: 0, failedEnabled: 0, failedWithdrawn: 0, causes: {},
        tokens: { endpoint: 0, cache: 0, retries: 0, refreshFailed: 0 },
      });
    }
    const w = windows[index] as Window;
    for (const name of ['endpoint', 'cache', 'retries', 'refreshFailed'] as const) w.tokens[name] += tokens[name];
    for (const b of buckets) {
      const failed = b.calls - b.ok;
      w.calls += b.calls;
      w.ok += b.ok;
      totals.made += b.calls;
      totals.ok += b.ok;
      const client = (totals.byClient[b.clientId] ??= { calls: 0, ok: 0, failed: 0 });
      client.calls += b.calls;
      client.ok += b.ok;
      client.failed += failed;
      if (b.withdrawn) {
        totals.madeWithdrawn += b.calls;
        w.failedWithdrawn += failed;
        totals.failedWithdrawn += failed;
      } else {
        w.failedEnabled += failed;
        totals.failedEnabled += failed;
      }
      for (const [cause, n] of Object.entries(b.failed)) {
        const c = (causes[cause] ??= { enabled: 0, withdrawn: 0, first: t, last: t });
        if (b.withdrawn) c.withdrawn += n;
        else {
          c.enabled += n;
          w.causes[cause] = (w.causes[cause] ?? 0) + n;
        }
        c.last = t;
      }
      for (const [kid, n] of Object.entries(b.kids)) {
        const k = (totals.kids[kid] ??= { calls: 0, first: t, last: t });
        k.calls += n;
        k.last = t;
      }
      if (b.lastOkAt !== undefined && b.lastOkAt > (lastOkAt[b.clientId] ?? 0)) lastOkAt[b.clientId] = b.lastOkAt;
    }
  }

  return {
    add,
    windows: (): readonly Window[] => windows,
    causes: (): Readonly<Record<string, Cause>> => causes,
    totals: (): Readonly<Totals> => totals,
    /** When a call of the client last ended with 200 (ms since the epoch). */
    lastOkAt: (clientId: string): number | undefined => lastOkAt[clientId],
  };
}
