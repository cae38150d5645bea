import { expect } from 'chai';
import { spawn } from 'node:child_process';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { PG_URL, REDIS_URL } from './db.js';

/** How a script ended, and what it printed. */
export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script with `node --import tsx` as its npm script would, on the test PostgreSQL and Redis, to the end. */
export function runScript(args: string[]): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      env: { ...process.env, DATABASE_URL: PG_URL, REDIS_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The JSON of the run's `summary {...}` line. */
export function readSummary<T>(run: ScriptRun): T {
  const line = run.stdout.split('\n').find((l) => l.startsWith('summary '));
  if (line === undefined) throw new Error(`the run printed no summary:\n${run.stdout}\n${run.stderr}`);
  return JSON.parse(line.slice('summary '.length)) as T;
}

/** The tables and Redis keys a run left behind under its prefixes. */
export async function leftovers(tablePrefix: string, redisPrefix: string): Promise<{ tables: unknown[]; keys: string[] }> {
  const knex = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const { rows } = await knex.raw<{ rows: unknown[] }>('select tablename from pg_tables where tablename like ?', [`${tablePrefix}%`]);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== '0');
    return { tables: rows, keys };
  } finally {
    await knex.destroy();
    redis.disconnect();
  }
}

/**
 * The two checks every script run ends with: its output holds no secret, token or database
 * password, and nothing of its run is left in PostgreSQL or Redis.
 */
export function itLeavesNothingBehind(get: () => { run: ScriptRun; tablePrefix: string; redisPrefix: string }): void {
  it('prints no secret, no token and no database password', () => {
    const { run } = get();
    const output = run.stdout + run.stderr;
    expect(output).not.to.include('m2m_cs_');
    expect(output).not.to.match(/eyJ[A-Za-z0-9_-]{10,}/);
    expect(output).not.to.include('m2m:m2m@');
  });

  it('leaves no table and no Redis key of its run behind', async () => {
    const { tablePrefix, redisPrefix } = get();
    expect(await leftovers(tablePrefix, redisPrefix)).to.deep.equal({ tables: [], keys: [] });
  });
}
