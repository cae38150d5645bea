/**
 * The whole example: the issuer, the reports API, the nightly job (a client secret) and the
 * archive signer (secretless: a private key and signed assertions), on SQLite.
 *
 *   npm run example
 *   ISSUER_PORT=5000 REPORTS_PORT=5001 M2M_SQLITE_FILE=/tmp/demo.sqlite DEMO_TOKEN_LIFETIME=10 npm run example
 *
 * The job runs once; the issuer and the API stay up for curl until Ctrl-C.
 */
import { runSignerJob } from './archive-signer.js';
import { exampleConfig } from './config.js';
import { startIssuerService } from './issuer.js';
import { runNightlyJob } from './nightly-job.js';
import { listClientsAsOps } from './operations.js';
import { startReportsApi } from './reports-api.js';

const config = exampleConfig();
const issuer = await startIssuerService(config);
const reports = await startReportsApi(config, issuer.issuer);

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('[example] stopping');
  await reports.close();
  await issuer.close();
  process.exit(code);
}
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

try {
  await runNightlyJob(config, issuer.issuer, reports.url);
  await runSignerJob(config, issuer.issuer, reports.url);
  await listClientsAsOps(config, issuer.issuer);
  console.log(`[example] the issuer (${issuer.issuer}) and the reports API (${reports.url}) are still up; Ctrl-C stops them`);
} catch (err) {
  console.error('[example] the nightly job failed:', err instanceof Error ? err.message : err);
  await stop(1);
}
