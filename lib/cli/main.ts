#!/usr/bin/env node
// The express-m2m bin: parses the command line, opens the database and runs one command.
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parseCommandLine } from './args.js';
import { EXIT_OK, type CliIo } from './command.js';
import { COMMANDS } from './commands.js';
import { redactUrls, resolveDatabase, tablePrefix, withDatabase } from './database.js';
import { CliError } from './errors.js';
import { reportError } from './report.js';

export type { CliIo } from './command.js';

/** The version in the package.json of express-m2m, found by the package's own name. */
function packageVersion(): string {
  const manifest = createRequire(import.meta.url)('express-m2m/package.json') as { version?: unknown };
  return String(manifest.version);
}

/** A flag given before `--`, seen even when the rest of the command line is wrong. */
function hasFlag(argv: readonly string[], flag: string): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes(flag);
}

function keyEncryptionKey(env: CliIo['env']): string | undefined {
  const kek = env.M2M_KEY_ENCRYPTION_KEY || undefined;
  if (kek !== undefined && kek.length < 32) {
    throw new CliError('M2M_KEY_ENCRYPTION_KEY must be at least 32 characters (for example: openssl rand -base64 32)', 'ERR_M2M_INVALID_ENV');
  }
  return kek;
}

/**
 * Runs the express-m2m admin command line: `migrate`, `clients create|list|show|update|
 * rotate-secret|revoke-secret|disable|enable|delete`, `keys list|rotate|revoke|seal`, `help`.
 * Run `express-m2m --help` for the options.
 *
 * The database comes from `--database URL`, else `DATABASE_URL`, else `./knexfile.js`, `.mjs`,
 * `.cjs` or `.ts` (environment chosen by `NODE_ENV`, default `development`; a `.ts` knexfile needs
 * tsx or a Node.js that imports TypeScript). `--json` prints one JSON document on stdout, and an
 * error as one JSON document `{ "error": { "code", "message" } }` on stderr. Secrets are printed
 * once, when issued; secret hashes and private keys never. Errors are one line on stderr with a
 * stable code, with passwords in URLs redacted, no SQL, and no stack trace unless `--debug`.
 *
 * @param argv - The arguments after the program name, for example `['clients', 'list', '--json']`.
 * @param io - Output streams, environment and working directory; see {@link CliIo}.
 * @returns The exit code: 0 on success, 1 on failure (unknown client, unreachable database,
 *   missing tables, invalid values), 2 on bad usage (unknown command or option, missing or
 *   malformed argument).
 * @example
 * ```ts
 * const code = await main(['clients', 'list', '--json'], { stdout: process.stdout, stderr: process.stderr, env: process.env });
 * ```
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const json = hasFlag(argv, '--json');
  let secrets: string[] = [];
  const scrub = (text: string): string =>
    secrets.filter((s) => s.length >= 4).reduce((acc, s) => acc.split(s).join('***'), redactUrls(text));
  try {
    const parsed = parseCommandLine(argv, COMMANDS);
    if (parsed.kind === 'help') {
      io.stdout.write(parsed.text);
      return EXIT_OK;
    }
    if (parsed.kind === 'version') {
      io.stdout.write(json ? `${JSON.stringify({ version: packageVersion() }, null, 2)}\n` : `${packageVersion()}\n`);
      return EXIT_OK;
    }
    const run = await parsed.command.prepare(parsed.args, io);
    tablePrefix(parsed.args);
    const kek = keyEncryptionKey(io.env);
    const target = await resolveDatabase(parsed.args, io);
    secrets = [...target.secrets, ...(kek === undefined ? [] : [kek])];
    return await withDatabase(target, parsed.command, parsed.args, io, run);
  } catch (err) {
    return reportError(err, io, { json, debug: hasFlag(argv, '--debug'), scrub });
  }
}

function isRunAsScript(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    // The bin is usually a symbolic link; under --preserve-symlinks-main the module keeps its path.
    return [entry, realpathSync(entry)].some((path) => pathToFileURL(path).href === import.meta.url);
  } catch {
    return false;
  }
}

if (isRunAsScript()) {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin, cwd: process.cwd(),
  });
}
