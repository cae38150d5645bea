// The knexfile the CLI falls back on when neither --database nor DATABASE_URL names a database:
// ./knexfile.js, .mjs, .cjs or .ts in the working directory, in the environment NODE_ENV names.
// A knexfile.ts needs a Node.js that imports TypeScript: the CLI run under tsx (`npm run m2m` in
// this repository, NODE_OPTIONS="--import tsx" elsewhere) or Node.js 22.18 and later.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { passwordOf, type DatabaseTarget } from './database-url.js';
import { CliError, quote } from './errors.js';

/** The knexfiles the CLI looks for in the working directory, in this order. */
export const KNEXFILES: readonly string[] = ['knexfile.js', 'knexfile.mjs', 'knexfile.cjs', 'knexfile.ts'];

/** The first of {@link KNEXFILES} that exists in `cwd`, as an absolute path. */
export function findKnexfile(cwd: string): string | undefined {
  return KNEXFILES.map((name) => resolve(cwd, name)).find((file) => existsSync(file));
}

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

async function importKnexfile(file: string): Promise<unknown> {
  try {
    const mod = await import(pathToFileURL(file).href) as { default?: unknown };
    return await (mod.default ?? mod);
  } catch (err) {
    if (file.endsWith('.ts') && (err as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new CliError(`cannot load ${file}: Node.js ${process.version} cannot import TypeScript by itself. `
        + 'Run the CLI under tsx (NODE_OPTIONS="--import tsx" npx express-m2m ...) or on Node.js 22.18 or later, '
        + 'give a knexfile.js, knexfile.mjs or knexfile.cjs instead, or set DATABASE_URL', 'ERR_M2M_KNEXFILE', { cause: err });
    }
    throw new CliError(`cannot load ${file}: ${firstLine(err)}`, 'ERR_M2M_KNEXFILE', { cause: err });
  }
}

/** The passwords a Knex `connection` holds: in a URL string, a `connectionString` or a `password`. */
function connectionSecrets(connection: unknown): string[] {
  if (typeof connection === 'string') return passwordOf(connection);
  if (!connection || typeof connection !== 'object') return [];
  const { connectionString, password } = connection as { connectionString?: unknown; password?: unknown };
  return [
    ...(typeof connectionString === 'string' ? passwordOf(connectionString) : []),
    ...(typeof password === 'string' && password !== '' ? [password] : []),
  ];
}

/** The database of `file`'s environment `NODE_ENV` (default `development`). */
export async function targetFromKnexfile(file: string, env: Readonly<Record<string, string | undefined>>, cwd: string): Promise<DatabaseTarget> {
  const environment = env.NODE_ENV || 'development';
  const all = ((await importKnexfile(file)) ?? {}) as Record<string, unknown>;
  const config = (typeof all.client === 'string' ? all : Object.hasOwn(all, environment) ? all[environment] : undefined) as Knex.Config | undefined;
  if (!config || typeof config !== 'object') {
    throw new CliError(`${file} has no ${quote(environment)} environment (chosen by NODE_ENV)`, 'ERR_M2M_KNEXFILE');
  }
  const connection = config.connection as unknown;
  const filename = connection && typeof connection === 'object' ? (connection as { filename?: unknown }).filename : undefined;
  const isSqlite = typeof config.client === 'string' && /sqlite/.test(config.client);
  return {
    config: { ...config, ...(isSqlite && config.useNullAsDefault === undefined ? { useNullAsDefault: true } : {}) },
    label: `${file} (${environment})`,
    ...(isSqlite && typeof filename === 'string' && filename !== ':memory:' ? { sqliteFile: resolve(cwd, filename) } : {}),
    secrets: connectionSecrets(connection),
  };
}
