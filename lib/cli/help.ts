// The help texts: overall, per group of commands and per command, each with the global options and
// the environment variables the CLI reads. `express-m2m help [command]` and `--help` print them.
import type { Command, OptionSpec } from './command.js';

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  database: {
    type: 'string', value: 'URL',
    description: 'postgres://..., postgresql://..., sqlite:PATH, file:PATH, or a path ending in .sqlite,\n'
      + '.sqlite3 or .db (default: $DATABASE_URL, else ./knexfile.js, .mjs, .cjs or .ts)',
  },
  'table-prefix': { type: 'string', value: 'PREFIX', description: 'prefix of the express-m2m tables (default m2m_)' },
  json: { type: 'boolean', description: 'print one JSON document on stdout; errors as one JSON document on stderr' },
  debug: { type: 'boolean', description: 'print stack traces on errors' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', description: 'print the version of express-m2m' },
};

/** The commands to choose from, in help order, and the first words that name a group of them. */
export interface CommandSet {
  commands: readonly Command[];
  groups: readonly string[];
}

const ENVIRONMENT: readonly (readonly [string, string])[] = [
  ['DATABASE_URL', 'the database, when --database is not given'],
  ['M2M_KEY_ENCRYPTION_KEY', "the issuer's keyEncryptionKey (at least 32 characters): keys rotate stores new\n"
    + 'private keys encrypted under it; keys seal needs it'],
  ['NODE_ENV', 'the environment of the knexfile (default development), when neither --database\nnor DATABASE_URL is given'],
];

/** Two columns: names padded to one width, descriptions continued under themselves. */
function columns(entries: readonly (readonly [string, string])[]): string {
  const width = Math.max(...entries.map(([name]) => name.length));
  return entries.map(([name, text]) => `  ${name.padEnd(width)}  ${text.replaceAll('\n', `\n${' '.repeat(width + 4)}`)}`).join('\n');
}

function optionLines(options: Record<string, OptionSpec>): string {
  return columns(Object.entries(options).map(([name, spec]) => [
    `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`,
    spec.description,
  ]));
}

/** The global options and the environment, which every help text ends with. */
const GLOBAL_PART = `Global options:\n${optionLines(GLOBAL_OPTIONS)}\n\nEnvironment:\n${columns(ENVIRONMENT)}\n`;

/** `Usage: express-m2m <name> <synopsis> [global options]`. */
export function usageLine(command: Command): string {
  return `Usage: express-m2m ${command.name}${command.synopsis ? ` ${command.synopsis}` : ''} [global options]`;
}

/** What bad usage of `command` prints after the error. */
export function shortUsage(command: Command): string {
  return `${usageLine(command)}\nRun 'express-m2m ${command.name} --help' for details.\n`;
}

function commandList(commands: readonly Command[], extra: readonly (readonly [string, string])[] = []): string {
  return columns([...commands.map((c): [string, string] => [c.name, c.summary]), ...extra]);
}

/** The help of one command: usage, summary, its options, the global options, the environment. */
export function commandHelp(command: Command): string {
  const own = Object.keys(command.options).length > 0 ? `Options:\n${optionLines(command.options)}\n\n` : '';
  return `${usageLine(command)}\n\n${command.summary}.\n\n${own}${GLOBAL_PART}`;
}

/** The help of a group (`clients`, `keys`): its commands. */
export function groupHelp(group: string, set: CommandSet): string {
  const commands = set.commands.filter((c) => c.name.startsWith(`${group} `));
  return `Usage: express-m2m ${group} <command> [options]\n\nCommands:\n${commandList(commands)}\n\n`
    + `Run 'express-m2m help ${group} <command>' for a command's options.\n`;
}

/** The overall help: every command, the global options, the environment and the exit codes. */
export function overallHelp(set: CommandSet): string {
  return 'Usage: express-m2m <command> [options]\n\n'
    + 'Admin command line of express-m2m: database migrations, OAuth clients and signing keys.\n\n'
    + `Commands:\n${commandList(set.commands, [['help [COMMAND]', 'Show the help of a command, or this help']])}\n\n`
    + `${GLOBAL_PART}\n`
    + "Run 'express-m2m help <command>' (or 'express-m2m <command> --help') for a command's options.\n"
    + 'Exit codes: 0 success, 1 failure, 2 bad usage.\n';
}
