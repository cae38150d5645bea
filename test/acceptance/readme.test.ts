import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** The first ```lang block after `heading` in README.md. */
function sample(heading: string, lang: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(heading));
  const match = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!match?.[1]) throw new Error(`no ${lang} sample under ${heading}`);
  return match[1];
}

describe('README', () => {
  it('runs the issuer quick start as written, and its curl command gets a token', async () => {
    // Inside the checkout (.tmp/ is ignored by git) so that the sample's imports of express and
    // knex resolve as they would in a user's project.
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, '.tmp', 'readme-'));
    const port = 41000 + Math.floor(Math.random() * 9000);
    // The sample as printed, with two substitutions: the package name resolves to this checkout's
    // source, and the port is a free one. It prints the client id and secret, then listens.
    const code = sample('## Issuer quick start', 'ts')
      .replace("from 'express-m2m'", `from ${JSON.stringify(join(ROOT, 'lib/index.ts'))}`)
      .replaceAll('3000', String(port));
    const file = join(dir, 'quick-start.ts');
    writeFileSync(file, code);
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const printed = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0] as string);
        });
        child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
        child.once('exit', () => reject(new Error(`the sample exited:\n${out}`)));
      });
      const [clientId = '', clientSecret = ''] = printed.split(' ');
      expect(clientSecret).to.match(/^m2m_cs_/);
      const curl = sample('## Issuer quick start', 'sh').split('\n')[0] as string;
      let stdout = '';
      for (let attempt = 0; attempt < 50 && stdout === ''; attempt++) {
        try {
          ({ stdout } = await run('sh', ['-c', curl.replaceAll('3000', String(port))], { env: { ...process.env, CLIENT_ID: clientId, CLIENT_SECRET: clientSecret } }));
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100)); // not listening yet
        }
      }
      const body = JSON.parse(stdout) as { access_token: string };
      expect({ ...body, access_token: '' }).to.deep.equal({ access_token: '', token_type: 'Bearer', expires_in: 300, scope: 'reports:read' });
      const payload = jwt.decode(body.access_token) as jwt.JwtPayload;
      expect([payload.iss, payload.sub, payload.aud]).to.deep.equal([`http://127.0.0.1:${port}/oauth`, clientId, 'https://reports.internal']);
    } finally {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
