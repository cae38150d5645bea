/**
 * The nightly job of the example: the archival service calls the reports API through the caller,
 * which obtains a token, reuses it, refreshes it before it expires, and attaches it.
 *
 *   npx tsx example/nightly-job.ts   # alone (the issuer and the reports API must be running)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tokenClient } from '../lib/index.js';
import { DEMO_CLIENT, REPORTS_AUDIENCE, exampleConfig, type ExampleConfig } from './config.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads the reports until the caller has refreshed its token once, then tries a write it has no
 * scope for. Resolves when done; rejects if a step does not go as it should.
 */
export async function runNightlyJob(config: ExampleConfig, issuer: string, reportsUrl: string, log = console.log): Promise<void> {
  const reports = tokenClient({
    issuer,
    clientId: DEMO_CLIENT,
    clientSecret: readFileSync(config.jobSecretFile, 'utf8').trim(),
    scope: 'reports:read',
    audience: REPORTS_AUDIENCE,
  });
  let refreshed = false;
  reports.events.on('token.fetched', (e) => {
    const valid = Math.round((e.expiresAt.getTime() - Date.now()) / 1000);
    if (e.refresh) refreshed = true;
    log(e.refresh
      ? `[job] token refreshed ahead of expiry in the background (new one valid ${valid} s)`
      : `[job] token obtained from ${e.tokenUrl ?? issuer} (valid ${valid} s, scope ${e.scope})`);
  });
  reports.events.on('token.refresh_failed', (e) => log(`[job] refresh failed, still using the current token: ${e.error.message}`));

  let fetched = 0;
  reports.events.on('token.fetched', () => { fetched++; });
  // Read until one run has gone out with a refreshed token.
  for (let run = 1, last = false; !last; run++) {
    last = refreshed;
    const before = fetched;
    const res = await reports.fetch(`${reportsUrl}/reports`);
    if (res.status !== 200) throw new Error(`GET /reports answered ${res.status}`);
    const body = await res.json() as { reports: unknown[] };
    if (fetched === before) {
      const token = await reports.getToken();
      log(`[job] token reused (expires in ${Math.round((token.expiresAt.getTime() - Date.now()) / 1000)} s)`);
    }
    log(`[job] run ${run}: GET /reports succeeded, ${body.reports.length} reports`);
    if (!last) await sleep(config.jobInterval * 1000);
  }
  const write = await reports.fetch(`${reportsUrl}/reports`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'archive' }),
  });
  const refusal = await write.json() as { error?: string };
  if (write.status !== 403) throw new Error(`POST /reports answered ${write.status}, not 403`);
  log(`[job] POST /reports refused with 403 ${refusal.error ?? ''} (${write.headers.get('www-authenticate') ?? ''}): the job may only read`);
  log('[job] done');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = exampleConfig();
  await runNightlyJob(config, process.env.ISSUER_URL ?? `http://127.0.0.1:${config.issuerPort}/oauth`,
    process.env.REPORTS_URL ?? `http://127.0.0.1:${config.reportsPort}`);
}
