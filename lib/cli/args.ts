// Parsing argv into a command and its arguments: the command words (with "did you mean"), the
// options each command takes, and the arguments after `--`. The commands come in as a CommandSet,
// so this module knows none of them.
import { parseArgs } from 'node:util';
import { closest } from '../core/options.js';
import { Args, type Command, type OptionSpec } from './command.js';
import { UsageError, quote } from './errors.js';
import { GLOBAL_OPTIONS, commandHelp, groupHelp, overallHelp, shortUsage, type CommandSet } from './help.js';

/** What the command line asks for: a help text to print, the version, or a command to run. */
export type Parsed =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | { kind: 'run'; command: Command; args: Args };

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

const HELP_USAGE = 'Usage: express-m2m help [COMMAND]\n';

/** The parseArgs configuration of every option of every command. */
function parserOptions(set: CommandSet): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  const all = new Map<string, OptionSpec>();
  for (const options of [GLOBAL_OPTIONS, ...set.commands.map((c) => c.options)]) {
    for (const [name, spec] of Object.entries(options)) {
      // parseArgs reads every command's options at once: a name must mean one kind of option.
      if (all.get(name) !== undefined && all.get(name)?.type !== spec.type) throw new Error(`option --${name} has two types`);
      all.set(name, spec);
    }
  }
  return Object.fromEntries([...all].map(([name, spec]) => [name, { type: spec.type, ...(spec.short ? { short: spec.short } : {}) }]));
}

/**
 * Splits argv into command words, options and positionals. parseArgs runs non-strict so that the
 * command can be found before its own option set is known; the tokens are then checked here,
 * which also gives shorter messages than parseArgs' own, and a "did you mean".
 */
export function parseCommandLine(argv: readonly string[], set: CommandSet): Parsed {
  const { tokens } = parseArgs({ args: [...argv], options: parserOptions(set), allowPositionals: true, strict: false, tokens: true });
  const end = tokens.findIndex((t) => t.kind === 'option-terminator');
  const before = end === -1 ? tokens : tokens.slice(0, end);
  const after = end === -1 ? [] : tokens.slice(end + 1).flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  const words = before.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  // -h inside a group of short options (-dash-started-id) is part of an argument written too early,
  // not a call for help.
  const indexes = before.flatMap((t) => (t.kind === 'option' ? [t.index] : []));
  const has = (name: string): boolean => before.some((t) => t.kind === 'option' && t.name === name
    && indexes.indexOf(t.index) === indexes.lastIndexOf(t.index));

  if (words[0] === 'help') return { kind: 'help', text: helpFor(words.slice(1), set) };
  if (has('version') && !has('help')) return { kind: 'version' };
  const found = findCommand(words, set, has('help'));
  if (found.kind === 'help') return found;
  const { command, count } = found;
  if (has('help')) return { kind: 'help', text: commandHelp(command) };

  const usage = shortUsage(command);
  const allowed = { ...GLOBAL_OPTIONS, ...command.options };
  const values = optionValues(before, allowed, usage);
  refuseOptionsAfterTerminator(after, allowed, usage);
  return { kind: 'run', command, args: new Args(values, [...words.slice(count), ...after], usage) };
}

/** `express-m2m help [COMMAND]`: the help of the command, group or everything named by `words`. */
function helpFor(words: readonly string[], set: CommandSet): string {
  if (words.length === 0 || (words.length === 1 && words[0] === 'help')) return overallHelp(set);
  const found = findCommand(words, set, true);
  if (found.kind === 'help') return found.text;
  const extra = words[found.count];
  if (extra !== undefined) throw new UsageError(`unexpected argument ${quote(extra)}`, HELP_USAGE);
  return commandHelp(found.command);
}

function unknownCommand(shown: string, word: string, candidates: readonly string[], prefix: string, usage: string): UsageError {
  const hint = closest(word, candidates);
  return new UsageError(`unknown command ${quote(shown)}${hint ? ` (did you mean ${prefix}${hint}?)` : ''}`, usage, 'ERR_M2M_UNKNOWN_COMMAND');
}

/**
 * The command named by the first one or two words, and how many words name it; or the help text
 * asked for with `--help` after no command or a group alone.
 */
function findCommand(words: readonly string[], set: CommandSet, help: boolean):
  { kind: 'help'; text: string } | { kind: 'found'; command: Command; count: number } {
  const [first, second] = words;
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
    if (command) return { kind: 'found', command, count: 2 };
    const subcommands = set.commands.flatMap((c) => (c.name.startsWith(`${first} `) ? [c.name.slice(first.length + 1)] : []));
    throw unknownCommand(`${first} ${second}`, second, subcommands, `${first} `, groupHelp(first, set));
  }
  const command = set.commands.find((c) => c.name === first);
  if (command) return { kind: 'found', command, count: 1 };
  const names = [...set.groups, ...set.commands.flatMap((c) => (c.name.includes(' ') ? [] : [c.name])), 'help'];
  throw unknownCommand(first, first, names, '', overallHelp(set));
}

/** An option's name as typed, or quoted when it holds more than letters, digits and dashes. */
function shownOption(raw: string): string {
  return /^--?[\w-]{1,40}$/.test(raw) ? raw : quote(raw);
}

function unknownOption(token: Extract<Token, { kind: 'option' }>, allowed: Record<string, OptionSpec>, usage: string): UsageError {
  // A kid or a secret id is base64url and may well start with "-": say how to pass one.
  if (!token.rawName.startsWith('--')) {
    const hint = ' (an argument that starts with "-", such as a kid or a secret id, goes after --)';
    return new UsageError(`unknown option ${shownOption(token.rawName)}${hint}`, usage, 'ERR_M2M_UNKNOWN_OPTION');
  }
  const near = closest(token.name, Object.keys(allowed));
  const hint = near === undefined ? '' : ` (did you mean --${near}?)`;
  return new UsageError(`unknown option ${shownOption(token.rawName)}${hint}`, usage, 'ERR_M2M_UNKNOWN_OPTION');
}

/** Checks every option token against the options `allowed` and collects their values. */
function optionValues(tokens: readonly Token[], allowed: Record<string, OptionSpec>, usage: string): Map<string, string[] | true> {
  const values = new Map<string, string[] | true>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = Object.hasOwn(allowed, token.name) ? allowed[token.name] : undefined;
    if (!spec) throw unknownOption(token, allowed, usage);
    const previous = values.get(token.name);
    if (previous !== undefined && !spec.multiple) throw new UsageError(`option --${token.name} given more than once`, usage);
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`option --${token.name} takes no value`, usage);
      values.set(token.name, true);
      continue;
    }
    const fromStdin = spec.stdin === true && token.value === '-';
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-') && !fromStdin)) {
      throw new UsageError(`option --${token.name} needs a value (write --${token.name}=VALUE for one starting with "-")`, usage);
    }
    if (token.value === '') throw new UsageError(`option --${token.name} needs a value, not an empty one`, usage);
    values.set(token.name, [...(Array.isArray(previous) ? previous : []), token.value]);
  }
  return values;
}

/**
 * Everything after `--` is an argument; an option written there (`keys revoke -- KID --json`) would
 * silently become one, so it is refused.
 */
function refuseOptionsAfterTerminator(after: readonly string[], allowed: Record<string, OptionSpec>, usage: string): void {
  const shorts = new Map(Object.entries(allowed).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])));
  for (const arg of after) {
    const name = /^--([^=]+)/.exec(arg)?.[1] ?? shorts.get(/^-(.)$/.exec(arg)?.[1] ?? '');
    if (name !== undefined && Object.hasOwn(allowed, name)) {
      throw new UsageError(`option --${name} after --: everything after -- is an argument, so put options before --`, usage);
    }
  }
}
