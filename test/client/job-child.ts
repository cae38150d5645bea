/**
 * A short-lived job as users write one (run by job.test.ts, not by mocha):
 * `node --import tsx job-child.ts <getToken|fetch> <tokenUrl> <apiUrl>`.
 *
 * It awaits the caller at top level with no error handling of its own, as a nightly script
 * does; when the token endpoint is down it must end with the caller's error, not exit quietly.
 */
import { tokenClient } from '../../lib/index.js';

const [mode, tokenUrl, apiUrl] = process.argv.slice(2);
if ((mode !== 'getToken' && mode !== 'fetch') || tokenUrl === undefined || apiUrl === undefined) {
  process.stderr.write('usage: job-child.ts <getToken|fetch> <tokenUrl> <apiUrl>\n');
  process.exit(2);
}

const client = tokenClient({
  tokenUrl, clientId: 'nightly-job', clientSecret: 'job-secret-never-printed',
  allowHttp: true, retry: { retries: 2, minDelay: 0.05, maxDelay: 0.2 },
});
if (mode === 'getToken') await client.getToken();
else await client.fetch(apiUrl);
process.stdout.write('finished\n');
