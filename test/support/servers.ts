import type { Probe } from './server-probe.js';

/** URL of the PostgreSQL server the tests use; .ci/services starts it. */
export const PG_URL = process.env.M2M_TEST_PG_URL ?? 'postgres://m2m:m2m@127.0.0.1:55432/m2m_test';
/** URL of the Redis server the tests use; .ci/services starts it. */
export const REDIS_URL = process.env.M2M_TEST_REDIS_URL ?? 'redis://127.0.0.1:56379';

/** The servers some tests need besides SQLite. */
export type ServerName = 'postgres' | 'redis';

/** Each server's URL and the name people know it by. */
export const SERVERS: Record<ServerName, { url: string; title: string; variable: string }> = {
  postgres: { url: PG_URL, title: 'PostgreSQL', variable: 'M2M_TEST_PG_URL' },
  redis: { url: REDIS_URL, title: 'Redis', variable: 'M2M_TEST_REDIS_URL' },
};

/**
 * What test/support/servers-plugin.ts found before the spec files were loaded, and what was
 * skipped for it. Kept on globalThis: mocha may load the plugin as CommonJS and the spec files as
 * ES modules, which gives each its own instance of this module. No probes (mocha run without
 * .mocharc.json): every server counts as up, so its tests run (and fail loudly).
 */
interface State {
  probes: Partial<Record<ServerName, Probe>>;
  /** Pending blocks (their tests counted at the end, once defined) and single tests, with the servers they lacked. */
  skips: { what: Mocha.Suite | 'a test'; lacking: ServerName[] }[];
}
const KEY = Symbol.for('express-m2m/test/servers');
const state: State = ((globalThis as { [KEY]?: State })[KEY] ??= { probes: {}, skips: [] });

/** Records what the probe before the run found. Called once, by the mocha plugin. */
export function recordProbes(found: Record<ServerName, Probe>): void {
  state.probes = found;
}

/** Why `server` is missing, or undefined when it answered (or was never probed). */
export function whyMissing(server: ServerName): string | undefined {
  const found = state.probes[server];
  return found && !found.up ? found.reason : undefined;
}

/**
 * Skips what needs `servers` when one of them did not answer the probe before the run. Called
 * with the `this` of a describe() callback (a `function`, not an arrow) as its first statement,
 * it marks that block pending: its tests show as pending and none of its hooks run, so nothing
 * tries to connect. Called with the `this` of a test, it skips that test.
 *
 * This stands in for describe.skip / it.skip, which would skip for everyone: here the probe
 * decides, and CI (M2M_TEST_REQUIRE_SERVERS=1) fails before any test runs instead.
 */
export function requiresServers(ctx: Mocha.Suite | Mocha.Context, ...servers: ServerName[]): void {
  const lacking = servers.filter((server) => whyMissing(server) !== undefined);
  if (lacking.length === 0) return;
  if ('skip' in ctx) {
    state.skips.push({ what: 'a test', lacking });
    ctx.skip();
  } else {
    // What describe.skip does: hooks added to a pending block are dropped, its tests are pending.
    if (!ctx.isPending()) state.skips.push({ what: ctx, lacking });
    ctx.pending = true;
  }
}

/** How many tests requiresServers() skipped, and for want of which servers. */
export function skipped(): { tests: number; lacking: ServerName[] } {
  return {
    tests: state.skips.reduce((sum, { what }) => sum + (what === 'a test' ? 1 : what.total()), 0),
    lacking: (Object.keys(SERVERS) as ServerName[]).filter((server) => state.skips.some(({ lacking }) => lacking.includes(server))),
  };
}
