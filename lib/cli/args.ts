// The command line: global options, help and usage texts, and parsing argv into a command and its
// arguments. The commands themselves come in as a CommandSet, so this module knows none of them.
import { parseArgs } from 'node:util';
import { Args, UsageError, type Command, type OptionSpec } from './command.js';

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  database: {
    type: 'string', value: 'URL',
    description: 'postgres://..., postgresql://..., sqlite:PATH, file:PATH, or a path ending in .sqlite,\n'
      + '.sqlite3 or .db (default: $DATABASE_URL, else ./knexfile.js or ./knexfile.mjs)',
  },
  'table-prefix': { type: 'string', value: 'PREFIX', description: 'prefix of the express-m2m tables (default m2m_)' },
  json: { type: 'boolean', description: 'print one JSON document on stdout' },
  debug: { type: 'boolean', description: 'print stack traces on errors' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
};

/** The commands to choose from, in help order, and the first words that name a group of them. */
export interface CommandSet {
  commands: readonly Command[];
  groups: readonly string[];
}

// ---------------------------------------------------------------------------------------- help --

function optionLines(options: Record<string, OptionSpec>): string {
  const entries = Object.entries(options).map(([name, spec]): [string, string] => [
    `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`,
    spec.description,
  ]);
  const width = Math.max(...entries.map(([flag]) => flag.length));
  return entries.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text.replaceAll('\n', `\n${' '.repeat(width + 4)}`)}`).join('\n');
}

function usageLine(command: Command): string {
  return `Usage: express-m2m ${command.name}${command.synopsis ? ` ${command.synopsis}` : ''} [global options]`;
}

function commandList(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
}

function commandHelp(command: Command): string {
  const own = Object.keys(command.options).length > 0 ? `Options:\n${optionLines(command.options)}\n\n` : '';
  return `${usageLine(command)}\n\n${command.summary}.\n\n${own}Global options:\n${optionLines(GLOBAL_OPTIONS)}\n`;
}

function groupHelp(group: string, set: CommandSet): string {
  const commands = set.commands.filter((c) => c.name.startsWith(`${group} `));
  return `Usage: express-m2m ${group} <command> [options]\n\nCommands:\n${commandList(commands)}\n\n`
    + `Run 'express-m2m ${group} <command> --help' for a command's options.\n`;
}

function overallHelp(set: CommandSet): string {
  return 'Usage: express-m2m <command> [options]\n\n'
    + 'Admin command line of express-m2m: database migrations, OAuth clients and signing keys.\n\n'
    + `Commands:\n${commandList(set.commands)}\n\nGlobal options:\n${optionLines(GLOBAL_OPTIONS)}\n\n`
    + "Run 'express-m2m <command> --help' for a command's options.\n"
    + 'Exit codes: 0 success, 1 failure, 2 bad usage.\n';
}

// ------------------------------------------------------------------------------------- parsing --

/** What the command line asks for: a help text to print, or a command to run. */
export type Parsed =
  | { kind: 'help'; text: string }
  | { kind: 'run'; command: Command; args: Args };

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

/**
 * Splits argv into command words, options and positionals. parseArgs runs non-strict so that the
 * command can be found before its own option set is known; the tokens are then checked here,
 * which also gives shorter messages than parseArgs' own.
 */
export function parseCommandLine(argv: readonly string[], set: CommandSet): Parsed {
  const allOptions = Object.assign({}, GLOBAL_OPTIONS, ...set.commands.map((c) => c.options)) as Record<string, OptionSpec>;
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.entries(allOptions).map(([name, spec]) =>
      [name, { type: spec.type, ...(spec.short ? { short: spec.short } : {}) }])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const positionals = tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  const help = tokens.some((t) => t.kind === 'option' && t.name === 'help');

  const found = findCommand(positionals, help, set);
  if (found.kind === 'help') return found;
  const { command, words } = found;
  if (help) return { kind: 'help', text: commandHelp(command) };

  const usage = `${usageLine(command)}\nRun 'express-m2m ${command.name} --help' for details.\n`;
  const values = optionValues(tokens, { ...GLOBAL_OPTIONS, ...command.options }, usage);
  return { kind: 'run', command, args: new Args(values, positionals.slice(words), usage) };
}

/**
 * The command named by the first one or two positionals, and how many words name it; or the help
 * text asked for with `--help` after no command or a group alone.
 */
function findCommand(positionals: readonly string[], help: boolean, set: CommandSet):
  { kind: 'help'; text: string } | { kind: 'found'; command: Command; words: number } {
  const [first, second] = positionals;
  if (first === undefined) {
    if (help) return { kind: 'help', text: overallHelp(set) };
    throw new UsageError('missing command', overallHelp(set));
  }
  if (set.groups.includes(first)) {
    if (second === undefined) {
      if (help) return { kind: 'help', text: groupHelp(first, set) };
      throw new UsageError(`missing ${first} command`, groupHelp(first, set));
    }
    const command = set.commands.find((c) => c.name === `${first} ${second}`);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(`${first} ${second}`)}`, groupHelp(first, set));
    return { kind: 'found', command, words: 2 };
  }
  const command = set.commands.find((c) => c.name === first);
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(first)}`, overallHelp(set));
  return { kind: 'found', command, words: 1 };
}

/** Checks every option token against the options `allowed` and collects their values. */
function optionValues(tokens: readonly Token[], allowed: Record<string, OptionSpec>, usage: string): Map<string, string[] | true> {
  const values = new Map<string, string[] | true>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = Object.hasOwn(allowed, token.name) ? allowed[token.name] : undefined;
    if (!spec) {
      // A kid is base64url and may well start with "-": say how to pass one.
      const hint = token.rawName.startsWith('--') ? '' : ' (an argument that starts with "-", such as a kid, goes after --)';
      throw new UsageError(`unknown option ${token.rawName}${hint}`, usage);
    }
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`option --${token.name} takes no value`, usage);
      values.set(token.name, true);
      continue;
    }
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
      throw new UsageError(`option --${token.name} needs a value (write --${token.name}=VALUE for one starting with "-")`, usage);
    }
    const previous = values.get(token.name);
    if (Array.isArray(previous) && !spec.multiple) throw new UsageError(`option --${token.name} given more than once`, usage);
    values.set(token.name, [...(Array.isArray(previous) ? previous : []), token.value]);
  }
  return values;
}
