/**
 * Mocha plugin, loaded through `require` in .mocharc.json before any spec file: probes PostgreSQL
 * and Redis once, so that requiresServers() (test/support/servers.ts) and `databases`
 * (test/support/db.ts) know, while the spec files are loaded, which servers are there.
 *
 * - A missing server's tests are skipped (pending; the database matrices run on SQLite alone), and
 *   one line after mocha's summary says which, and how to start the servers.
 * - With M2M_TEST_REQUIRE_SERVERS=1 (.ci/run sets it), a missing server fails the run at once,
 *   before any test, so CI can never skip those tests unnoticed.
 */
import { probe } from './server-probe.js';
import { recordProbes, SERVERS, skipped, whyMissing, type ServerName } from './servers.js';

const names = Object.keys(SERVERS) as ServerName[];
const found = await Promise.all(names.map((name) => probe(name, SERVERS[name].url)));
recordProbes(Object.fromEntries(names.map((name, i) => [name, found[i]])) as Parameters<typeof recordProbes>[0]);

/** "no PostgreSQL at 127.0.0.1:55432 (connection refused)", without the URL's credentials. */
const absent = (servers: ServerName[]) => servers
  .map((name) => `no ${SERVERS[name].title} at ${new URL(SERVERS[name].url).host} (${whyMissing(name)})`).join(', ');
const variables = (servers: ServerName[]) => servers.map((name) => SERVERS[name].variable).join(' / ');

const missing = names.filter((name) => whyMissing(name) !== undefined);
if (missing.length > 0 && !['', '0', undefined].includes(process.env.M2M_TEST_REQUIRE_SERVERS)) {
  process.stderr.write(`M2M_TEST_REQUIRE_SERVERS is set, and there is ${absent(missing)}: start ${missing.length === 1 ? 'it' : 'them'} with \`bash .ci/services\` `
    + `(as root), or point ${variables(missing)} at running ones.\n`);
  process.exit(1);
}

/**
 * After mocha's own summary: the one line that says what was skipped and how to run it. The
 * database matrices lose their PostgreSQL half without a trace in mocha's counts, so a missing
 * PostgreSQL is always named.
 */
export function mochaGlobalTeardown(): void {
  const { tests, lacking } = skipped();
  const servers = names.filter((name) => lacking.includes(name) || (name === 'postgres' && missing.includes(name)));
  if (servers.length === 0) return;
  const what = [
    ...(tests > 0 ? [`${tests} test${tests === 1 ? '' : 's'} (pending above)`] : []),
    ...(missing.includes('postgres') ? ['the PostgreSQL half of the database matrices'] : []),
  ].join(' and ');
  process.stdout.write(`  Skipped ${what}: ${absent(servers)}. To run them too: \`sudo bash .ci/services\` (it installs Debian `
    + `packages) starts PostgreSQL and Redis, or point ${variables(servers)} at your own.\n\n`);
}
