import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What one cache-caller-child.ts process printed after its 20 concurrent getToken() calls. */
export interface CallerResult {
  /** sha256 hex of each distinct token it got. */
  fingerprints: string[];
  /** Operations of the cache.error events it saw. */
  cacheErrors: string[];
  /** `source:attempts` of each token.fetched event: `endpoint:1` or `cache:0`. */
  fetched: string[];
}

const SCRIPT = fileURLToPath(new URL('./cache-caller-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Child {
  process: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  result: Promise<CallerResult>;
}

function start(args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const exited = new Promise<number | null>((resolve) => { child.on('close', resolve); });
  const lines = createInterface({ input: child.stdout });
  const output: string[] = [];
  let isReady = false;
  let readyResolve: () => void = () => {};
  const ready = new Promise<void>((resolve) => { readyResolve = resolve; });
  lines.on('line', (line) => {
    if (line === 'ready') {
      isReady = true;
      readyResolve();
    } else {
      output.push(line);
    }
  });
  child.stdin.on('error', () => {}); // a child that died early: its exit code tells why
  const failed = (what: string) => new Error(`${what}: ${stderr.slice(-2000)}`);
  const result = exited.then((code) => {
    if (code !== 0) throw failed(`the caller child exited with ${code}`);
    const last = output.at(-1);
    if (last === undefined) throw failed('the caller child printed no result');
    return JSON.parse(last) as CallerResult;
  });
  // Rejections reach whoever awaits `ready` or `result`; these handlers only keep them from being unhandled.
  result.catch(() => {});
  const endedEarly = exited.then(() => { if (!isReady) throw failed('the caller child ended before it was ready'); });
  endedEarly.catch(() => {});
  return { process: child, ready: Promise.race([ready, endedEarly.then(() => ready)]), result };
}

/**
 * Starts `count` cache-caller-child.ts processes with `args`, waits until every one is ready, then
 * lets them all go at once and returns what each printed.
 */
export async function runCallers(count: number, args: string[]): Promise<CallerResult[]> {
  const children = Array.from({ length: count }, () => start(args));
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.process.stdin.write('go\n');
    return await Promise.all(children.map((c) => c.result));
  } finally {
    for (const c of children) if (c.process.exitCode === null) c.process.kill();
  }
}
