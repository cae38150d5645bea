// What a database URL (--database or DATABASE_URL) names, as a Knex configuration, and how to
// talk about it without leaking its password.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { CliError, UsageError } from './errors.js';

/** A resolved database: the Knex configuration and how to talk about it without leaking secrets. */
export interface DatabaseTarget {
  config: Knex.Config;
  /** For messages: a URL with its user info redacted, or a file path. */
  label: string;
  /** The SQLite file, checked to exist before any command but `migrate` creates it by opening it. */
  sqliteFile?: string;
  /** Passwords to scrub from anything printed. */
  secrets: string[];
}

const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/gi;

/** Replaces `user:password@` in every URL of `text` with `***@`. */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

/** The password of a URL, as written and decoded, to scrub from messages. */
export function passwordOf(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password === '' ? [] : [...new Set([password, decodeURIComponent(password)])];
  } catch {
    return [];
  }
}

function sqliteConfig(filename: string): Knex.Config {
  return {
    client: 'sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { exec(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null) => void) {
        // Wait for a running issuer's writes instead of failing with SQLITE_BUSY; the store relies
        // on foreign keys for cascades.
        conn.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;', done);
      },
    },
  };
}

const SUPPORTED_URLS = 'use postgres://, postgresql://, sqlite:PATH, file:PATH, or a path ending in .sqlite, .sqlite3 or .db';

/** The file named by `sqlite:PATH`, `file:PATH` or a bare `*.sqlite`/`.sqlite3`/`.db` path; else undefined. */
function sqlitePath(url: string): string | undefined {
  if (/^sqlite:/i.test(url)) return url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (/^file:\/\//i.test(url)) {
    try {
      return fileURLToPath(url);
    } catch {
      return undefined;
    }
  }
  if (/^file:/i.test(url)) return url.slice('file:'.length);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && /\.(sqlite3?|db)$/i.test(url)) return url;
  return undefined;
}

/**
 * The database `url` names. `source` (`--database` or `DATABASE_URL`) is named in errors: a bad
 * `--database` is bad usage, a bad `DATABASE_URL` a bad environment.
 */
export function targetFromUrl(url: string, source: string, cwd: string, usage: string): DatabaseTarget {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return {
      config: {
        client: 'pg',
        connection: { connectionString: url, connectionTimeoutMillis: 10_000 },
        pool: { min: 0, max: 2 },
        acquireConnectionTimeout: 15_000,
      },
      label: redactUrls(url),
      secrets: passwordOf(url),
    };
  }
  const path = sqlitePath(url);
  if (path === undefined || path === '') {
    const message = `unsupported database URL in ${source}: ${redactUrls(url)}; ${SUPPORTED_URLS}`;
    if (source === '--database') throw new UsageError(message, usage, 'ERR_M2M_INVALID_OPTION');
    throw new CliError(message, 'ERR_M2M_INVALID_ENV');
  }
  const filename = path === ':memory:' ? path : resolve(cwd, path);
  return { config: sqliteConfig(filename), label: `sqlite:${filename}`, sqliteFile: filename, secrets: [] };
}
