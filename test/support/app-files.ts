import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withoutNpmEnv } from './packed-app.js';

const run = promisify(execFile);

/**
 * tsx, from this checkout's devDependencies: what runs a TypeScript file in an app, loaded by its
 * path, so that the app holds only what the README installs.
 */
export const TSX = import.meta.resolve('tsx');

/** How a file was run: `node --import tsx` for .ts, plain `node` for .js, .mjs and .cjs. */
function nodeArgs(file: string): string[] {
  return /\.m?ts$/.test(file) ? ['--import', TSX, file] : [file];
}

/** The environment of a file run in the app: the process's own, without npm's variables, plus `env`. */
function fileEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...withoutNpmEnv(), ...env };
}

/** Options of {@link runFile} and {@link startFile}. */
export interface FileRunOptions {
  /** Environment variables the file reads. */
  env?: Record<string, string>;
  /** Working directory; default the app. */
  cwd?: string;
}

/**
 * Writes `code` as `name` in the app `dir` and runs it to its end with node (through tsx for a .ts
 * file); resolves with what it printed on stdout, rejects with the code and both streams.
 */
export async function runFile(dir: string, name: string, code: string, options: FileRunOptions = {}): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, code);
  try {
    const { stdout } = await run(process.execPath, nodeArgs(file), { cwd: options.cwd ?? dir, env: fileEnv(options.env ?? {}), timeout: 60_000 });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${name} failed:\n${code}\n--- stdout\n${stdout ?? ''}\n--- stderr\n${stderr ?? ''}`, { cause: err });
  }
}

/** A file running as a server. */
export interface RunningFile {
  child: ChildProcess;
  /** What it printed on stdout so far. */
  stdout(): string;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Writes `code` as `name` in the app `dir` and starts it; resolves once its stdout holds `ready`,
 * rejects if it exits first, with what it printed.
 */
export function startFile(dir: string, name: string, code: string, ready: string, options: FileRunOptions = {}): Promise<RunningFile> {
  const file = join(dir, name);
  writeFileSync(file, code);
  const child = spawn(process.execPath, nodeArgs(file), { cwd: options.cwd ?? dir, env: fileEnv(options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running: RunningFile = {
    child,
    stdout: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes(ready)) resolve(running);
    });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString('utf8'); });
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before printing ${JSON.stringify(ready)}:\n--- stdout\n${out}\n--- stderr\n${err}`)));
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1, for a file that must know its port before it listens. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
