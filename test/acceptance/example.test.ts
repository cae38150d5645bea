import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { request } from '../support/http.js';

const run = promisify(execFile);

/** Starts example/main.ts as `npm run example` would, and collects its output. */
function startExample(env: Record<string, string>): { child: ChildProcess; output: () => string; line: (re: RegExp) => Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...waiters]) {
      const match = out.split('\n').find((l) => w.re.test(l));
      if (match !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(match);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return {
    child,
    output: () => out,
    line: (re) => new Promise((resolve, reject) => {
      const found = out.split('\n').find((l) => re.test(l));
      if (found !== undefined) { resolve(found); return; }
      waiters.push({ re, resolve });
      child.once('exit', () => reject(new Error(`example exited before printing ${re}:\n${out}`)));
    }),
  };
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

describe('the example (npm run example)', () => {
  let dir: string;
  let env: Record<string, string>;
  let issuer: string;
  let reports: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'm2m-example-'));
    const base = 40000 + Math.floor(Math.random() * 10000);
    env = {
      ISSUER_PORT: String(base), REPORTS_PORT: String(base + 1), M2M_SQLITE_FILE: join(dir, 'issuer.sqlite'),
      DEMO_TOKEN_LIFETIME: '3', JOB_INTERVAL: '0.5',
    };
    issuer = `http://127.0.0.1:${base}/oauth`;
    reports = `http://127.0.0.1:${base + 1}`;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The job's lines, in order, with the changing numbers blanked. */
  function jobSteps(output: string): string[] {
    return output.split('\n').filter((l) => l.startsWith('[job]')).map((l) => l
      .replace(/\d+ s\b/g, 'N s').replace(/run \d+/, 'run N'));
  }

  it('creates the database and the demo client, its curl commands get tokens, and the job reads, reuses, refreshes and is refused a write', async () => {
    const example = startExample(env);
    try {
      await example.line(/\[issuer\] listening on/);
      const basicCurl = (await example.line(/curl -s -u/)).trim();
      const postCurl = (await example.line(/curl -s -d grant_type/)).trim();
      expect(example.output()).to.match(/its secret, shown this once: m2m_cs_[A-Za-z0-9_-]{49}\n/);
      for (const command of [basicCurl, postCurl]) {
        const { stdout } = await run('sh', ['-c', command]);
        const body = JSON.parse(stdout) as { access_token: string; token_type: string; expires_in: number; scope: string };
        expect({ ...body, access_token: '' }).to.deep.equal({ access_token: '', token_type: 'Bearer', expires_in: 3, scope: 'reports:read' });
        const payload = jwt.decode(body.access_token) as jwt.JwtPayload;
        expect([payload.iss, payload.sub, payload.aud]).to.deep.equal([issuer, 'archival-service', 'https://reports.internal']);
      }
      await example.line(/\[example\] .* are still up/);
      const steps = jobSteps(example.output());
      expect(steps[0]).to.equal(`[job] token obtained from ${issuer}/token (valid N s, scope reports:read)`);
      expect(steps[1]).to.equal('[job] run N: GET /reports succeeded, 2 reports');
      expect(steps).to.include('[job] token reused (expires in N s)');
      const refreshed = steps.indexOf('[job] token refreshed ahead of expiry in the background (new one valid N s)');
      expect(refreshed).to.be.greaterThan(1);
      expect(steps.slice(-4)).to.deep.equal([
        '[job] token reused (expires in N s)',
        '[job] run N: GET /reports succeeded, 2 reports',
        '[job] POST /reports refused with 403 insufficient_scope (Bearer realm="https://reports.internal", error="insufficient_scope", '
          + 'error_description="the token lacks a required scope", scope="reports:write"): the job may only read',
        '[job] done',
      ]);
      expect(example.output()).to.include('[reports] GET /reports by archival-service');
      // Operations: one admin call made with the ops client's token, and the metrics it left.
      expect(example.output()).to.include('[ops] GET /admin/clients with a token: archival-service, archive-signer, ops-console\n');
      // The secretless job: a key, no secret; its token given back when it is done.
      expect(example.output()).to.include('[issuer] created secretless client "archive-signer" (private_key_jwt): the issuer holds its public key only\n');
      expect(example.output()).to.include('[signer] GET /reports succeeded with a token got by a signed assertion (no secret anywhere), 2 reports\n'
        + '[signer] done early: token given back to the issuer (POST /revoke)\n');
      const scraped = await request(`${new URL(issuer).origin}/metrics`);
      expect(scraped.status).to.equal(200);
      expect(scraped.headers['content-type']).to.match(/^text\/plain/);
      expect(scraped.text).to.match(/^m2m_guard_decisions_total\{m2m_outcome="insufficient_scope",otel_scope_name="express-m2m"\} 1$/m);
      expect(scraped.text).to.match(/^m2m_caller_refreshes_total\{m2m_outcome="success",otel_scope_name="express-m2m"\} [1-9]/m);
      const unauthenticated = await request(`${new URL(issuer).origin}/admin/clients`);
      expect(unauthenticated.status).to.equal(401);

      // The API as a user would try it: no token, then a token from the printed curl command.
      const anonymous = await request(`${reports}/reports`);
      // RFC 6750 §3.1: a request with no token gets the challenge alone, no error code.
      expect([anonymous.status, anonymous.headers['www-authenticate'], anonymous.text])
        .to.deep.equal([401, 'Bearer realm="https://reports.internal"', '']);
      const { stdout } = await run('sh', ['-c', basicCurl]);
      const token = (JSON.parse(stdout) as { access_token: string }).access_token;
      const read = await request(`${reports}/reports`, { headers: { authorization: `Bearer ${token}` } });
      expect([read.status, (read.json as { reports: unknown[] }).reports.length]).to.deep.equal([200, 2]);
      expect(example.output()).to.not.match(/Error|at .*\.ts:\d+/);
    } finally {
      expect(await stop(example.child)).to.equal(0);
    }
    expect(example.output()).to.match(/\[example\] stopping\n$/);
  });

  it('reuses the database on a second start, prints no secret, and the job runs again', async () => {
    const example = startExample(env);
    try {
      await example.line(/already exists/);
      await example.line(/\[job\] done/);
      await example.line(/\[signer\] done early/);
      const res = await request(`${issuer}/jwks.json`);
      expect([res.status, (res.json as { keys: unknown[] }).keys.length]).to.deep.equal([200, 1]);
      expect(example.output()).not.to.include('m2m_cs_');
    } finally {
      expect(await stop(example.child)).to.equal(0);
    }
  });
});
