import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import knexFactory from 'knex';
import { packedApp, type PackedApp } from '../support/packed-app.js';
import { freePort, startFile, type RunningFile } from '../support/app-files.js';
import { fileSample, sampleWith } from '../support/readme-samples.js';

const run = promisify(execFile);

/** The quick start's curl command, run as printed but for the port, with `secret` in CLIENT_SECRET. */
async function curl(port: number, secret: string): Promise<Record<string, unknown>> {
  const command = (sampleWith('curl -s -u').split('\n')[0] as string).replaceAll('3000', String(port));
  const { stdout } = await run('sh', ['-c', command], { env: { ...process.env, CLIENT_SECRET: secret } });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The clients the quick start's SQLite file holds. */
async function clientsIn(dir: string): Promise<unknown[]> {
  const knex = knexFactory({ client: 'sqlite3', connection: { filename: join(dir, 'auth.sqlite') }, useNullAsDefault: true });
  try {
    return await knex('m2m_clients').select('client_id');
  } finally {
    await knex.destroy();
  }
}

describe('README: the issuer quick start', function () {
  this.timeout(120_000);
  let app: PackedApp;
  before(async function () {
    this.timeout(20 * 60_000); // packs and installs the package (installing sqlite3 compiles it)
    app = await packedApp();
  });

  /** Starts issuer.ts from the app, in `cwd` (where it keeps ./auth.sqlite), once it listens. */
  async function startQuickStart(cwd: string, port: number): Promise<RunningFile> {
    return startFile(app.dir, 'issuer.ts', fileSample('issuer.ts'), 'issuer on ', { cwd, env: { PORT: String(port) } });
  }

  it('runs as a file: prints the client\'s secret, and its curl command gets a token with it', async () => {
    const cwd = mkdtempSync(join(app.dir, 'quick-start-'));
    const port = await freePort();
    const issuer = await startQuickStart(cwd, port);
    try {
      const [first = '', second] = issuer.stdout().split('\n');
      const [clientId, clientSecret = ''] = first.split(' ');
      expect([clientId, clientSecret.slice(0, 7), second]).to.deep.equal(['nightly-report', 'm2m_cs_', `issuer on http://127.0.0.1:${port}/oauth`]);
      const body = await curl(port, clientSecret);
      expect({ ...body, access_token: '' }).to.deep.equal({ access_token: '', token_type: 'Bearer', expires_in: 300, scope: 'reports:read' });
      const payload = jwt.decode(body.access_token as string) as jwt.JwtPayload;
      expect([payload.iss, payload.sub, payload.aud]).to.deep.equal([`http://127.0.0.1:${port}/oauth`, 'nightly-report', 'https://reports.internal']);
    } finally {
      await issuer.stop();
    }
  });

  it('starts again on the same SQLite file without registering a second client', async () => {
    const cwd = mkdtempSync(join(app.dir, 'quick-start-'));
    const firstPort = await freePort();
    const first = await startQuickStart(cwd, firstPort);
    await first.stop();
    const secret = first.stdout().split('\n')[0]?.split(' ')[1] ?? '';
    const port = await freePort();
    const again = await startQuickStart(cwd, port);
    try {
      expect(again.stdout()).to.equal(`issuer on http://127.0.0.1:${port}/oauth\n`);
      expect(await clientsIn(cwd)).to.deep.equal([{ client_id: 'nightly-report' }]);
      // The secret of the first start still gets a token: the client is the one registered then.
      expect((await curl(port, secret)).scope).to.equal('reports:read');
    } finally {
      await again.stop();
    }
  });
});
