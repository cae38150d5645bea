import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { request } from '../support/http.js';

const run = promisify(execFile);

/** Starts example/issuer.ts as `npm run example` would, and collects its output. */
function startExample(env: Record<string, string>): { child: ChildProcess; output: () => string; line: (re: RegExp) => Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/issuer.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('example/issuer.ts', () => {
  let dir: string;
  let env: Record<string, string>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'm2m-example-'));
    env = { ISSUER_PORT: String(40000 + Math.floor(Math.random() * 10000)), M2M_SQLITE_FILE: join(dir, 'issuer.sqlite') };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the database and a demo client, and its two printed curl commands obtain tokens', async () => {
    const example = startExample(env);
    try {
      await example.line(/listening on/);
      const basicCurl = (await example.line(/curl -s -u/)).trim();
      const postCurl = (await example.line(/curl -s -d grant_type/)).trim();
      expect(example.output()).to.match(/its secret, shown this once: m2m_cs_[A-Za-z0-9_-]{49}\n/);
      for (const command of [basicCurl, postCurl]) {
        const { stdout } = await run('sh', ['-c', command]);
        const body = JSON.parse(stdout) as { access_token: string; token_type: string; expires_in: number; scope: string };
        expect({ ...body, access_token: '' }).to.deep.equal({ access_token: '', token_type: 'Bearer', expires_in: 300, scope: 'reports:read' });
        const payload = jwt.decode(body.access_token) as jwt.JwtPayload;
        expect([payload.iss, payload.sub, payload.aud]).to.deep.equal([`http://127.0.0.1:${env.ISSUER_PORT}/oauth`, 'archival-service', 'https://reports.internal']);
      }
      await example.line(/token issued to archival-service/);
    } finally {
      expect(await stop(example.child)).to.equal(0);
    }
  });

  it('reuses the database on a second start, without printing a secret', async () => {
    const example = startExample(env);
    try {
      await example.line(/already exists/);
      const res = await request(`http://127.0.0.1:${env.ISSUER_PORT}/oauth/jwks.json`);
      expect([res.status, (res.json as { keys: unknown[] }).keys.length]).to.deep.equal([200, 1]);
      expect(example.output()).not.to.include('m2m_cs_');
    } finally {
      expect(await stop(example.child)).to.equal(0);
    }
  });
});
