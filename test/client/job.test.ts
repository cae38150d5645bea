import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const SCRIPT = fileURLToPath(new URL('./job-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Exit { code: number | null; stdout: string; stderr: string }

function runJob(args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    const timer = setTimeout(() => { child.kill(); reject(new Error(`the job hung; stderr: ${stderr}`)); }, 15_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** A port that had a server a moment ago and now refuses connections: a token endpoint that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a short-lived job using tokenClient()', () => {
  let unavailable: Server;
  let unavailableUrl: string;
  let requests = 0;

  before(async () => {
    unavailable = createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}');
    });
    await new Promise<void>((resolve) => unavailable.listen(0, '127.0.0.1', resolve));
    unavailableUrl = `http://127.0.0.1:${(unavailable.address() as AddressInfo).port}/oauth/token`;
  });
  after(() => new Promise<void>((resolve) => unavailable.close(() => resolve())));
  beforeEach(() => { requests = 0; });

  for (const mode of ['getToken', 'fetch']) {
    it(`exits 1 with a TokenRequestError when ${mode}() meets a token endpoint that refuses connections`, async () => {
      const tokenUrl = `http://127.0.0.1:${await closedPort()}/oauth/token`;
      const { code, stdout, stderr } = await runJob([mode, tokenUrl, 'http://127.0.0.1:9/api']);
      expect(code).to.equal(1);
      expect(stdout).to.equal('');
      expect(stderr).to.include('TokenRequestError');
      expect(stderr).to.include('network_error');
      expect(stderr).not.to.include('job-secret-never-printed');
    });

    it(`exits 1 with a TokenRequestError when ${mode}() meets a token endpoint answering 503, after its retries`, async () => {
      const { code, stdout, stderr } = await runJob([mode, unavailableUrl, 'http://127.0.0.1:9/api']);
      expect(code).to.equal(1);
      expect(stdout).to.equal('');
      expect(stderr).to.include('TokenRequestError');
      expect(stderr).not.to.include('job-secret-never-printed');
      expect(requests).to.equal(3);
    });
  }
});
