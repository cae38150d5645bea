#!/usr/bin/env node
// The express-m2m bin: parses the command line, opens the database and runs one command.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseCommandLine } from './args.js';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo } from './command.js';
import { COMMANDS } from './commands.js';
import { redactUrls, resolveDatabase, withDatabase } from './database.js';

export type { CliIo } from './command.js';

function errorText(err: unknown, debug: boolean): string {
  if (!(err instanceof Error)) return String(err);
  if (!debug) return err.message;
  let text = err.stack ?? err.message;
  for (let cause = err.cause, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    text += `\nCaused by: ${cause.stack ?? cause.message}`;
  }
  return text;
}

/**
 * Runs the express-m2m admin command line: `migrate`, `clients create|list|show|rotate-secret|
 * disable|enable|delete`, `keys list|rotate|revoke`. Run `express-m2m --help` for the options.
 *
 * The database comes from `--database URL`, else `DATABASE_URL`, else `./knexfile.js` or
 * `./knexfile.mjs` (environment chosen by `NODE_ENV`, default `development`). `--json` prints one
 * JSON document on stdout. Secrets are printed once, when issued; secret hashes and private keys
 * never. Errors are one line on stderr, with passwords in URLs redacted and no stack trace unless
 * `--debug`.
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
  const end = argv.indexOf('--');
  const debug = (end === -1 ? argv : argv.slice(0, end)).includes('--debug');
  let secrets: string[] = [];
  const scrub = (text: string): string =>
    secrets.filter((s) => s.length >= 4).reduce((acc, s) => acc.split(s).join('***'), redactUrls(text));
  try {
    const parsed = parseCommandLine(argv, COMMANDS);
    if (parsed.kind === 'help') {
      io.stdout.write(parsed.text);
      return EXIT_OK;
    }
    const run = parsed.command.prepare(parsed.args, io);
    const kek = io.env.M2M_KEY_ENCRYPTION_KEY || undefined;
    if (kek !== undefined && kek.length < 32) {
      throw new CliError('M2M_KEY_ENCRYPTION_KEY must be at least 32 characters (for example: openssl rand -base64 32)');
    }
    const target = await resolveDatabase(parsed.args, io);
    secrets = [...target.secrets, ...(kek === undefined ? [] : [kek])];
    return await withDatabase(target, parsed.command, parsed.args, io, run);
  } catch (err) {
    io.stderr.write(`express-m2m: ${scrub(errorText(err, debug))}\n`);
    if (err instanceof UsageError) {
      io.stderr.write(`\n${err.usage}`);
      return EXIT_USAGE;
    }
    return EXIT_FAILURE;
  }
}

function isRunAsScript(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isRunAsScript()) {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin, cwd: process.cwd(),
  });
}
