// What a command is: its I/O, its arguments and its exit codes. Every other module of the CLI
// builds on this one, and it imports none of them but ./errors.ts.
import type { Knex } from 'knex';
import type { KnexStore } from '../storage/knex-store.js';
import { UsageError, quote } from './errors.js';

/** Where `main` (./main.ts) reads and writes: the process's streams and environment, or a test's. */
export interface CliIo {
  /** Receives the command's output: readable text, or one JSON document with `--json`. */
  stdout: { write(chunk: string): unknown };
  /** Receives error messages, warnings and prompts. */
  stderr: { write(chunk: string): unknown };
  /** Environment variables; the CLI reads `DATABASE_URL`, `NODE_ENV` and `M2M_KEY_ENCRYPTION_KEY`. */
  env: Readonly<Record<string, string | undefined>>;
  /** Answers to confirmation prompts; prompts are only shown when this is a TTY. Default: none. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Directory for relative SQLite paths and the knexfile. Default `process.cwd()`. */
  cwd?: string;
}

/** Exit code of a command that did what it was asked. */
export const EXIT_OK = 0;
/** Exit code of a failure: an unknown client, an unreachable database, a value the store refused. */
export const EXIT_FAILURE = 1;
/** Exit code of bad usage: an unknown command or option, a missing or malformed argument. */
export const EXIT_USAGE = 2;

/** One option of a command, or a global one: how it is parsed and shown in help. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in help, for string options. */
  value?: string;
  /** May be given more than once (say so in the description). */
  multiple?: boolean;
  short?: string;
  /** Takes `-` as its value, meaning standard input (any other value starting with `-` is refused). */
  stdin?: boolean;
  description: string;
}

/** Parsed option values: strings in the order given, or `true` for a boolean flag. */
export type Values = ReadonlyMap<string, readonly string[] | true>;

/** Accessors over a command's parsed arguments that throw {@link UsageError} on bad input. */
export class Args {
  constructor(readonly values: Values, readonly positionals: readonly string[], readonly usage: string) {}

  /** Whether the boolean option `name` was given. */
  flag(name: string): boolean {
    return this.values.get(name) === true;
  }

  /** Every value of the option `name`, in the order given. */
  strings(name: string): string[] {
    const value = this.values.get(name);
    return Array.isArray(value) ? [...value] : [];
  }

  /** The value of the option `name`, or undefined when it was not given. */
  string(name: string): string | undefined {
    return this.strings(name).at(-1);
  }

  /** The value of the option `name`, which must be given. */
  required(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw new UsageError(`missing required option --${name}`, this.usage);
    return value;
  }

  /** A whole number of seconds >= 0. */
  seconds(name: string): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^\d{1,15}$/.test(value)) {
      throw new UsageError(`--${name} must be a whole number of seconds, got ${quote(value)}`, this.usage, 'ERR_M2M_INVALID_OPTION');
    }
    return Number(value);
  }

  /** Refuses `--a` together with `--b` (a value and its negation, for example). */
  exclusive(a: string, b: string): void {
    if (this.values.has(a) && this.values.has(b)) throw new UsageError(`--${a} and --${b} cannot be combined`, this.usage);
  }

  /** The positional arguments after the command words, one per name in `what`, each required. */
  take(what: readonly string[]): string[] {
    for (const [i, name] of what.entries()) {
      if (this.positionals[i] === undefined) throw new UsageError(`missing ${name}`, this.usage);
    }
    const extra = this.positionals[what.length];
    if (extra !== undefined) throw new UsageError(`unexpected argument ${quote(extra)}`, this.usage);
    return this.positionals.slice(0, what.length);
  }

  /** The one positional argument after the command words, named `what` in messages. */
  single(what: string): string {
    return this.take([what])[0] as string;
  }

  /** Refuses any positional argument after the command words. */
  none(): void {
    this.take([]);
  }
}

/** What a running command gets: the open store and a way to print. */
export interface Context {
  knex: Knex;
  store: KnexStore;
  io: CliIo;
  json: boolean;
  /** Prints `data` as JSON with `--json`, else the text from `text()`. */
  print(data: unknown, text: () => string): void;
}

/** How a command is written: {@link defineCommand} turns it into a {@link Command}. */
export interface CommandSpec<Input> {
  /** The command words, for example `clients create`. */
  name: string;
  /** Arguments shown after the name in the usage line. */
  synopsis: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** False only for `migrate`, which creates the tables the others need. */
  needsTables: boolean;
  /**
   * Validates the arguments before the database is opened; async when it reads input as well (a
   * file an option names, or standard input).
   */
  parse(args: Args, io: CliIo): Input | Promise<Input>;
  run(ctx: Context, input: Input): Promise<number>;
}

/** A command with its input type hidden: `prepare` validates (and reads its input) and returns the runner. */
export interface Command {
  name: string;
  synopsis: string;
  summary: string;
  options: Record<string, OptionSpec>;
  needsTables: boolean;
  prepare(args: Args, io: CliIo): Promise<(ctx: Context) => Promise<number>>;
}

/** Wraps a command's spec so that commands with different input types fit in one list. */
export function defineCommand<Input>(spec: CommandSpec<Input>): Command {
  return {
    name: spec.name,
    synopsis: spec.synopsis,
    summary: spec.summary,
    options: spec.options,
    needsTables: spec.needsTables,
    async prepare(args, io) {
      const input = await spec.parse(args, io);
      return (ctx) => spec.run(ctx, input);
    },
  };
}
