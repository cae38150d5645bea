#!/usr/bin/env node
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import knexFactory, { type Knex } from 'knex';
import type { Client } from './core/client.js';
import { selectKeys, type SigningKeyRecord } from './core/key-set.js';
import { isSigningAlgorithm, SIGNING_ALGORITHMS } from './core/keys.js';
import { ClientNotFoundError, type ClientSecretInfo } from './core/store.js';
import { createKnexStore, type KnexStore } from './storage/knex-store.js';
import { migrationSource } from './storage/migrations.js';

/** Where {@link main} reads and writes: the process's streams and environment, or a test's. */
export interface CliIo {
  /** Receives the command's output: readable text, or one JSON document with `--json`. */
  stdout: { write(chunk: string): unknown };
  /** Receives error messages, warnings and prompts. */
  stderr: { write(chunk: string): unknown };
  /** Environment variables; the CLI reads `DATABASE_URL`, `NODE_ENV` and `M2M_KEY_ENCRYPTION_KEY`. */
  env: Readonly<Record<string, string | undefined>>;
  /** Answers to confirmation prompts; prompts are only shown when this is a TTY. Default: none. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Directory for relative SQLite paths and `./knexfile.js`. Default `process.cwd()`. */
  cwd?: string;
}

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** Bad command line: reported with the command's usage, exit code 2. */
class UsageError extends Error {
  constructor(message: string, readonly usage: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An expected failure with a message fit for the user as it is, exit code 1. */
class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

// ------------------------------------------------------------------------------------ options --

interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in help, for string options. */
  value?: string;
  /** May be given more than once (say so in the description). */
  multiple?: boolean;
  short?: string;
  description: string;
}

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
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

/** Parsed option values: strings in the order given, or `true` for a boolean flag. */
type Values = ReadonlyMap<string, readonly string[] | true>;

/** Accessors over a command's parsed arguments that throw {@link UsageError} on bad input. */
class Args {
  constructor(readonly values: Values, readonly positionals: readonly string[], readonly usage: string) {}

  flag(name: string): boolean {
    return this.values.get(name) === true;
  }

  strings(name: string): string[] {
    const value = this.values.get(name);
    return Array.isArray(value) ? [...value] : [];
  }

  string(name: string): string | undefined {
    return this.strings(name).at(-1);
  }

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
      throw new UsageError(`--${name} must be a whole number of seconds, got ${JSON.stringify(value)}`, this.usage);
    }
    return Number(value);
  }

  /** The one positional argument after the command words, named `what` in messages. */
  single(what: string): string {
    const [value, extra] = this.positionals;
    if (value === undefined) throw new UsageError(`missing ${what}`, this.usage);
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`, this.usage);
    return value;
  }

  none(): void {
    const [extra] = this.positionals;
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`, this.usage);
  }
}

// ----------------------------------------------------------------------------------- commands --

/** What a running command gets: the open store and a way to print. */
interface Context {
  knex: Knex;
  store: KnexStore;
  io: CliIo;
  json: boolean;
  /** Prints `data` as JSON with `--json`, else the text from `text()`. */
  print(data: unknown, text: () => string): void;
}

interface CommandSpec<Input> {
  /** The command words, for example `clients create`. */
  name: string;
  /** Arguments shown after the name in the usage line. */
  synopsis: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** False only for `migrate`, which creates the tables the others need. */
  needsTables: boolean;
  /** Validates the arguments before the database is opened. */
  parse(args: Args, io: CliIo): Input;
  run(ctx: Context, input: Input): Promise<number>;
}

/** A command with its input type hidden: `prepare` validates and returns the runner. */
interface Command {
  name: string;
  synopsis: string;
  summary: string;
  options: Record<string, OptionSpec>;
  needsTables: boolean;
  prepare(args: Args, io: CliIo): (ctx: Context) => Promise<number>;
}

function defineCommand<Input>(spec: CommandSpec<Input>): Command {
  return {
    name: spec.name,
    synopsis: spec.synopsis,
    summary: spec.summary,
    options: spec.options,
    needsTables: spec.needsTables,
    prepare(args, io) {
      const input = spec.parse(args, io);
      return (ctx) => spec.run(ctx, input);
    },
  };
}

const ISSUER_MAX_TOKEN_LIFETIME = 3600;
const DEFAULT_GRACE = 86_400;
const DEFAULT_ACTIVATE_AFTER = 600;
const SECRET_NOTICE = 'This secret will not be shown again: store it now.';

const iso = (date: Date): string => date.toISOString();
const isoOrNull = (date: Date | null): string | null => (date === null ? null : date.toISOString());
const shortDate = (date: Date | null, none = '-'): string => (date === null ? none : date.toISOString().replace(/\.\d{3}Z$/, 'Z'));
const yesNo = (value: boolean): string => (value ? 'yes' : 'no');

function clientJson(client: Client): Record<string, unknown> {
  return {
    clientId: client.clientId,
    name: client.name,
    enabled: client.enabled,
    scopes: client.scopes,
    defaultScopes: client.defaultScopes,
    audiences: client.audiences,
    defaultAudience: client.defaultAudience,
    tokenLifetime: client.tokenLifetime,
    grantTypes: client.grantTypes,
    claims: client.claims,
    createdAt: iso(client.createdAt),
    updatedAt: iso(client.updatedAt),
  };
}

function secretJson(secret: ClientSecretInfo): Record<string, unknown> {
  return {
    id: secret.id,
    hint: secret.hint,
    createdAt: iso(secret.createdAt),
    expiresAt: isoOrNull(secret.expiresAt),
    lastUsedAt: isoOrNull(secret.lastUsedAt),
  };
}

/** Left-aligned columns separated by two spaces. */
function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `label: value` lines with the values aligned. */
function fields(entries: readonly (readonly [string, string])[]): string {
  const width = Math.max(...entries.map(([label]) => label.length)) + 1;
  return entries.map(([label, value]) => `  ${`${label}:`.padEnd(width)}  ${value}`).join('\n');
}

/** `--scope "a b" --scope c` → `['a', 'b', 'c']`. */
function splitScopes(values: readonly string[]): string[] {
  return values.flatMap((value) => value.split(/\s+/)).filter((scope) => scope !== '');
}

async function requireClient(store: KnexStore, clientId: string): Promise<Client> {
  const client = await store.clients.get(clientId);
  if (!client) throw new ClientNotFoundError(clientId);
  return client;
}

const migrate = defineCommand({
  name: 'migrate',
  synopsis: '',
  summary: 'Create or upgrade the express-m2m tables (safe to run again)',
  options: {},
  needsTables: false,
  parse(args) {
    args.none();
  },
  async run(ctx) {
    const source = { migrationSource: migrationSource(ctx.store.tables), tableName: ctx.store.tables.migrations };
    const [, pending] = await ctx.knex.migrate.list(source) as [unknown[], unknown[]];
    await ctx.store.migrate();
    const applied = pending.map(String);
    ctx.print({ applied }, () => (applied.length === 0
      ? 'The database is up to date: no migration to apply.'
      : `Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}:\n${applied.map((m) => `  ${m}`).join('\n')}`));
    return EXIT_OK;
  },
});

// The store's validation names registration fields; the user typed flags.
const FLAG_FOR_FIELD: Record<string, string> = {
  clientId: '--client-id', name: '--name', scopes: '--scope', defaultScopes: '--default-scope',
  audiences: '--audience', defaultAudience: '--default-audience', tokenLifetime: '--token-lifetime', claims: '--claims',
};

function parseClaims(args: Args): Record<string, unknown> | undefined {
  const text = args.string('claims');
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError('--claims must be a JSON object, for example \'{"tenant":"acme"}\'', args.usage);
  }
  return parsed as Record<string, unknown>;
}

const clientsCreate = defineCommand({
  name: 'clients create',
  synopsis: '--name NAME --scope S... --audience A... [options]',
  summary: 'Register a client and print its first secret, once',
  options: {
    name: { type: 'string', value: 'NAME', description: 'human-readable name (required)' },
    scope: {
      type: 'string', value: 'S', multiple: true,
      description: 'scopes the client may request; repeat it or separate with spaces (required)',
    },
    audience: { type: 'string', value: 'A', multiple: true, description: 'audiences the client may request tokens for; repeatable (required)' },
    'default-scope': {
      type: 'string', value: 'S', multiple: true,
      description: 'scopes granted when a request names none; repeatable (default: all of --scope)',
    },
    'default-audience': { type: 'string', value: 'A', description: 'audience used when a request names none (default: the first --audience)' },
    'client-id': { type: 'string', value: 'ID', description: 'the client_id (default: a random UUID)' },
    'token-lifetime': { type: 'string', value: 'SECONDS', description: "access-token lifetime, 1 to 86400 (default: the issuer's)" },
    claims: { type: 'string', value: 'JSON', description: 'a JSON object of static claims added to every token' },
  },
  needsTables: true,
  parse(args) {
    args.none();
    const name = args.required('name');
    const scopes = splitScopes(args.strings('scope'));
    if (scopes.length === 0) throw new UsageError('missing required option --scope', args.usage);
    const audiences = args.strings('audience');
    if (audiences.length === 0) throw new UsageError('missing required option --audience', args.usage);
    const defaultScopes = args.strings('default-scope');
    const defaultAudience = args.string('default-audience');
    const clientId = args.string('client-id');
    const tokenLifetime = args.seconds('token-lifetime');
    const claims = parseClaims(args);
    return {
      name, scopes, audiences,
      ...(defaultScopes.length > 0 ? { defaultScopes: splitScopes(defaultScopes) } : {}),
      ...(defaultAudience !== undefined ? { defaultAudience } : {}),
      ...(clientId !== undefined ? { clientId } : {}),
      ...(tokenLifetime !== undefined ? { tokenLifetime } : {}),
      ...(claims !== undefined ? { claims } : {}),
    };
  },
  async run(ctx, registration) {
    let created;
    try {
      created = await ctx.store.clients.create(registration);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw new CliError(err.message.replace(/^\w+/, (word) => FLAG_FOR_FIELD[word] ?? word), { cause: err });
    }
    ctx.print(
      { clientId: created.clientId, clientSecret: created.clientSecret, client: clientJson(created.client), secret: secretJson(created.secret) },
      () => [
        `Created client ${JSON.stringify(created.client.name)}.`,
        '',
        fields([['client id', created.clientId], ['client secret', created.clientSecret]]),
        '',
        SECRET_NOTICE,
      ].join('\n'),
    );
    return EXIT_OK;
  },
});

const clientsList = defineCommand({
  name: 'clients list',
  synopsis: '',
  summary: 'List clients: id, name, enabled, scopes, audiences',
  options: {},
  needsTables: true,
  parse(args) {
    args.none();
  },
  async run(ctx) {
    const clients = await ctx.store.clients.list();
    ctx.print({ clients: clients.map(clientJson) }, () => (clients.length === 0
      ? 'No clients.'
      : table(
        ['CLIENT ID', 'NAME', 'ENABLED', 'SCOPES', 'AUDIENCES'],
        clients.map((c) => [c.clientId, c.name, yesNo(c.enabled), c.scopes.join(' '), c.audiences.join(' ')]),
      )));
    return EXIT_OK;
  },
});

const clientsShow = defineCommand({
  name: 'clients show',
  synopsis: 'ID',
  summary: "Show a client and its secrets' metadata (never a secret or its hash)",
  options: {},
  needsTables: true,
  parse: (args) => args.single('client ID'),
  async run(ctx, clientId) {
    const client = await requireClient(ctx.store, clientId);
    const secrets = await ctx.store.clients.listSecrets(clientId);
    ctx.print({ client: clientJson(client), secrets: secrets.map(secretJson) }, () => [
      `Client ${client.clientId}`,
      fields([
        ['name', client.name],
        ['enabled', yesNo(client.enabled)],
        ['scopes', client.scopes.join(' ') || '-'],
        ['default scopes', client.defaultScopes.join(' ') || '-'],
        ['audiences', client.audiences.join(' ')],
        ['default audience', client.defaultAudience ?? '- (requests must name one)'],
        ['token lifetime', client.tokenLifetime === null ? "issuer's default" : `${client.tokenLifetime} s`],
        ['grant types', client.grantTypes.join(' ')],
        ['claims', JSON.stringify(client.claims)],
        ['created', shortDate(client.createdAt)],
        ['updated', shortDate(client.updatedAt)],
      ]),
      '',
      `Secrets (${secrets.length}):`,
      secrets.length === 0 ? '  none' : table(
        ['ID', 'HINT', 'CREATED', 'EXPIRES', 'LAST USED'],
        secrets.map((s) => [s.id, `${s.hint}...`, shortDate(s.createdAt), shortDate(s.expiresAt, 'never'), shortDate(s.lastUsedAt, 'never')]),
      ).replace(/^/gm, '  '),
    ].join('\n'));
    return EXIT_OK;
  },
});

const clientsRotateSecret = defineCommand({
  name: 'clients rotate-secret',
  synopsis: 'ID [--grace SECONDS]',
  summary: 'Issue a new secret, printed once; older secrets keep working for a grace period',
  options: {
    grace: { type: 'string', value: 'SECONDS', description: `how long older secrets keep working (default ${DEFAULT_GRACE}, one day; 0 ends them now)` },
  },
  needsTables: true,
  parse: (args) => ({ clientId: args.single('client ID'), grace: args.seconds('grace') ?? DEFAULT_GRACE }),
  async run(ctx, { clientId, grace }) {
    const issued = await ctx.store.clients.rotateSecret(clientId, { gracePeriod: grace });
    const olderUntil = new Date(issued.secret.createdAt.getTime() + grace * 1000);
    ctx.print(
      { clientId, clientSecret: issued.clientSecret, secret: secretJson(issued.secret), olderSecretsExpireAt: iso(olderUntil) },
      () => [
        `New secret for client ${clientId}:`,
        '',
        `  ${issued.clientSecret}`,
        '',
        SECRET_NOTICE,
        grace === 0 ? 'Older secrets no longer work.' : `Older secrets keep working until ${shortDate(olderUntil)}.`,
      ].join('\n'),
    );
    return EXIT_OK;
  },
});

function setEnabled(enabled: boolean): Command {
  const verb = enabled ? 'enable' : 'disable';
  return defineCommand({
    name: `clients ${verb}`,
    synopsis: 'ID',
    summary: enabled ? 'Let a disabled client authenticate again' : 'Stop a client from authenticating (its secrets are kept)',
    options: {},
    needsTables: true,
    parse: (args) => args.single('client ID'),
    async run(ctx, clientId) {
      const client = await ctx.store.clients.update(clientId, { enabled });
      ctx.print({ client: clientJson(client) }, () => `Client ${clientId} ${verb}d.`);
      return EXIT_OK;
    },
  });
}

async function confirm(io: CliIo, question: string): Promise<boolean> {
  if (!io.stdin) return false;
  const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream, terminal: false });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

const clientsDelete = defineCommand({
  name: 'clients delete',
  synopsis: 'ID [--yes]',
  summary: 'Delete a client and all its secrets',
  options: {
    yes: { type: 'boolean', description: 'do not ask for confirmation (required when not run from a terminal)' },
  },
  needsTables: true,
  parse(args, io) {
    const clientId = args.single('client ID');
    const yes = args.flag('yes');
    if (!yes && io.stdin?.isTTY !== true) {
      throw new UsageError(`refusing to delete client ${JSON.stringify(clientId)} without --yes when not run from a terminal`, args.usage);
    }
    return { clientId, yes };
  },
  async run(ctx, { clientId, yes }) {
    await requireClient(ctx.store, clientId);
    if (!yes && !(await confirm(ctx.io, `Delete client ${clientId} and all its secrets?`))) {
      ctx.io.stderr.write('Nothing deleted.\n');
      return EXIT_FAILURE;
    }
    const deleted = await ctx.store.clients.delete(clientId);
    if (!deleted) throw new ClientNotFoundError(clientId);
    ctx.print({ clientId, deleted: true }, () => `Client ${clientId} deleted.`);
    return EXIT_OK;
  },
});

type KeyState = 'pending' | 'active' | 'retired-but-published' | 'expired';

/** Each key's state at `now`, as an issuer with the given maximum token lifetime sees it. */
function keyStates(records: readonly SigningKeyRecord[], now: number, maxTokenLifetime: number): Map<string, KeyState> {
  // The issuer keeps a superseded key published for its longest token lifetime plus a minute of skew.
  const view = selectKeys(records, now, maxTokenLifetime + 60);
  const published = new Set(view.published.map((k) => k.kid));
  return new Map(records.map((k): [string, KeyState] => [
    k.kid,
    k.kid === view.signing?.kid ? 'active'
      : k.activatesAt.getTime() > now ? 'pending'
        : published.has(k.kid) ? 'retired-but-published' : 'expired',
  ]));
}

function keyJson(key: SigningKeyRecord, state: KeyState): Record<string, unknown> {
  // Deliberately field by field: the record also holds the private key.
  return { kid: key.kid, alg: key.alg, state, createdAt: iso(key.createdAt), activatesAt: iso(key.activatesAt) };
}

const MAX_TOKEN_LIFETIME_OPTION: OptionSpec = {
  type: 'string', value: 'SECONDS',
  description: `the issuer's maxTokenLifetime, which decides how long a retired key stays published (default ${ISSUER_MAX_TOKEN_LIFETIME})`,
};

const keysList = defineCommand({
  name: 'keys list',
  synopsis: '[--max-token-lifetime SECONDS]',
  summary: 'List signing keys: kid, alg, state (pending, active, retired-but-published, expired), dates',
  options: { 'max-token-lifetime': MAX_TOKEN_LIFETIME_OPTION },
  needsTables: true,
  parse(args) {
    args.none();
    return args.seconds('max-token-lifetime') ?? ISSUER_MAX_TOKEN_LIFETIME;
  },
  async run(ctx, maxTokenLifetime) {
    const keys = (await ctx.store.keys.list()).sort((a, b) =>
      a.activatesAt.getTime() - b.activatesAt.getTime() || a.createdAt.getTime() - b.createdAt.getTime());
    const states = keyStates(keys, Date.now(), maxTokenLifetime);
    const stateOf = (key: SigningKeyRecord): KeyState => states.get(key.kid) ?? 'expired';
    ctx.print({ keys: keys.map((k) => keyJson(k, stateOf(k))) }, () => (keys.length === 0
      ? 'No signing keys. The issuer creates one on its first token request, or run `express-m2m keys rotate`.'
      : table(
        ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATES'],
        keys.map((k) => [k.kid, k.alg, stateOf(k), shortDate(k.createdAt), shortDate(k.activatesAt)]),
      )));
    return EXIT_OK;
  },
});

const keysRotate = defineCommand({
  name: 'keys rotate',
  synopsis: '[--alg ES256|RS256|PS256] [--activate-after SECONDS]',
  summary: 'Add a signing key: published at once, signing after a delay so verifiers fetch it first',
  options: {
    alg: { type: 'string', value: 'ALG', description: 'ES256 (default), RS256 or PS256' },
    'activate-after': { type: 'string', value: 'SECONDS', description: `delay before the key signs tokens (default ${DEFAULT_ACTIVATE_AFTER})` },
    'max-token-lifetime': MAX_TOKEN_LIFETIME_OPTION,
  },
  needsTables: true,
  parse(args) {
    args.none();
    const alg = args.string('alg') ?? 'ES256';
    if (!isSigningAlgorithm(alg)) {
      throw new UsageError(`--alg must be one of ${SIGNING_ALGORITHMS.join(', ')}, got ${JSON.stringify(alg)}`, args.usage);
    }
    return {
      alg,
      activateAfter: args.seconds('activate-after') ?? DEFAULT_ACTIVATE_AFTER,
      maxTokenLifetime: args.seconds('max-token-lifetime') ?? ISSUER_MAX_TOKEN_LIFETIME,
    };
  },
  async run(ctx, { alg, activateAfter, maxTokenLifetime }) {
    const key = await ctx.store.keys.rotate({ alg, activateAfter });
    const states = keyStates(await ctx.store.keys.list(), Date.now(), maxTokenLifetime);
    const state = states.get(key.kid) ?? 'pending';
    if (![...states.values()].includes('active')) {
      ctx.io.stderr.write(`Warning: no key signs tokens until ${shortDate(key.activatesAt)}; `
        + 'use --activate-after 0 for the first key.\n');
    }
    ctx.print({ key: keyJson(key, state) }, () => (state === 'pending'
      ? `Added ${alg} key ${key.kid}: published now, signs tokens from ${shortDate(key.activatesAt)}.`
      : `Added ${alg} key ${key.kid}: ${state} now.`));
    return EXIT_OK;
  },
});

const keysRevoke = defineCommand({
  name: 'keys revoke',
  synopsis: 'KID',
  summary: 'Withdraw a signing key at once (a compromised key): no longer published, never used again',
  options: {},
  needsTables: true,
  parse: (args) => args.single('key id'),
  async run(ctx, kid) {
    if (!(await ctx.store.keys.revoke(kid))) throw new CliError(`no signing key with kid ${JSON.stringify(kid.slice(0, 64))}`);
    const remaining = keyStates(await ctx.store.keys.list(), Date.now(), ISSUER_MAX_TOKEN_LIFETIME);
    if (![...remaining.values()].includes('active')) {
      ctx.io.stderr.write('Warning: no active key is left; the issuer creates a new one on its next token request.\n');
    }
    ctx.print({ revoked: kid }, () => `Revoked key ${kid}. Tokens it signed no longer verify once verifiers refresh their JWKS.`);
    return EXIT_OK;
  },
});

const COMMANDS: readonly Command[] = [
  migrate, clientsCreate, clientsList, clientsShow, clientsRotateSecret, setEnabled(false), setEnabled(true),
  clientsDelete, keysList, keysRotate, keysRevoke,
];
const GROUPS = ['clients', 'keys'];

// -------------------------------------------------------------------------------------- help --

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

function groupHelp(group: string): string {
  const commands = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  return `Usage: express-m2m ${group} <command> [options]\n\nCommands:\n${commandList(commands)}\n\n`
    + `Run 'express-m2m ${group} <command> --help' for a command's options.\n`;
}

function overallHelp(): string {
  return 'Usage: express-m2m <command> [options]\n\n'
    + 'Admin command line of express-m2m: database migrations, OAuth clients and signing keys.\n\n'
    + `Commands:\n${commandList(COMMANDS)}\n\nGlobal options:\n${optionLines(GLOBAL_OPTIONS)}\n\n`
    + "Run 'express-m2m <command> --help' for a command's options.\n"
    + 'Exit codes: 0 success, 1 failure, 2 bad usage.\n';
}

// --------------------------------------------------------------------------- argument parsing --

type Parsed =
  | { kind: 'help'; text: string }
  | { kind: 'run'; command: Command; args: Args };

const ALL_OPTIONS = Object.assign({}, GLOBAL_OPTIONS, ...COMMANDS.map((c) => c.options)) as Record<string, OptionSpec>;

/**
 * Splits argv into command words, options and positionals. parseArgs runs non-strict so that the
 * command can be found before its own option set is known; the tokens are then checked here,
 * which also gives shorter messages than parseArgs' own.
 */
function parseCommandLine(argv: readonly string[]): Parsed {
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.entries(ALL_OPTIONS).map(([name, spec]) =>
      [name, { type: spec.type, ...(spec.short ? { short: spec.short } : {}) }])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const positionals = tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  const help = tokens.some((t) => t.kind === 'option' && t.name === 'help');

  const [first, second] = positionals;
  let command: Command | undefined;
  let words = 1;
  if (first === undefined) {
    if (help) return { kind: 'help', text: overallHelp() };
    throw new UsageError('missing command', overallHelp());
  }
  if (GROUPS.includes(first)) {
    if (second === undefined) {
      if (help) return { kind: 'help', text: groupHelp(first) };
      throw new UsageError(`missing ${first} command`, groupHelp(first));
    }
    command = COMMANDS.find((c) => c.name === `${first} ${second}`);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(`${first} ${second}`)}`, groupHelp(first));
    words = 2;
  } else {
    command = COMMANDS.find((c) => c.name === first);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(first)}`, overallHelp());
  }
  if (help) return { kind: 'help', text: commandHelp(command) };

  const usage = `${usageLine(command)}\nRun 'express-m2m ${command.name} --help' for details.\n`;
  const allowed: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...command.options };
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
  return { kind: 'run', command, args: new Args(values, positionals.slice(words), usage) };
}

// ----------------------------------------------------------------------------------- database --

/** A resolved database: the Knex configuration and how to talk about it without leaking secrets. */
interface DatabaseTarget {
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
function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

function passwordOf(url: string): string[] {
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

function targetFromUrl(url: string, source: string, cwd: string, usage: string): DatabaseTarget {
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
  let path: string | undefined;
  if (/^sqlite:/i.test(url)) path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  else if (/^file:\/\//i.test(url)) {
    try {
      path = fileURLToPath(url);
    } catch {
      path = undefined;
    }
  } else if (/^file:/i.test(url)) path = url.slice('file:'.length);
  else if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && /\.(sqlite3?|db)$/i.test(url)) path = url;
  if (path === undefined || path === '') {
    const message = `unsupported database URL in ${source}: ${redactUrls(url)}; ${SUPPORTED_URLS}`;
    if (source === '--database') throw new UsageError(message, usage);
    throw new CliError(message);
  }
  const filename = path === ':memory:' ? path : resolve(cwd, path);
  return { config: sqliteConfig(filename), label: `sqlite:${filename}`, sqliteFile: filename, secrets: [] };
}

async function targetFromKnexfile(file: string, env: CliIo['env']): Promise<DatabaseTarget> {
  const environment = env.NODE_ENV || 'development';
  let loaded: unknown;
  try {
    const mod = await import(pathToFileURL(file).href) as { default?: unknown };
    loaded = await (mod.default ?? mod);
  } catch (err) {
    throw new CliError(`cannot load ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const all = (loaded ?? {}) as Record<string, unknown>;
  const config = (typeof all.client === 'string' ? all : all[environment]) as Knex.Config | undefined;
  if (!config || typeof config !== 'object') {
    throw new CliError(`${file} has no ${JSON.stringify(environment)} environment (chosen by NODE_ENV)`);
  }
  const connection = config.connection as unknown;
  const secrets = typeof connection === 'string' ? passwordOf(connection)
    : connection && typeof connection === 'object' && typeof (connection as { password?: unknown }).password === 'string'
      ? [(connection as { password: string }).password] : [];
  const filename = connection && typeof connection === 'object' ? (connection as { filename?: unknown }).filename : undefined;
  const isSqlite = typeof config.client === 'string' && /sqlite/.test(config.client);
  return {
    config: { ...config, ...(isSqlite && config.useNullAsDefault === undefined ? { useNullAsDefault: true } : {}) },
    label: `${file} (${environment})`,
    ...(isSqlite && typeof filename === 'string' && filename !== ':memory:' ? { sqliteFile: resolve(filename) } : {}),
    secrets,
  };
}

async function resolveDatabase(args: Args, io: CliIo): Promise<DatabaseTarget> {
  const cwd = io.cwd ?? process.cwd();
  const flag = args.string('database');
  if (flag !== undefined) return targetFromUrl(flag, '--database', cwd, args.usage);
  const url = io.env.DATABASE_URL;
  if (url) return targetFromUrl(url, 'DATABASE_URL', cwd, args.usage);
  for (const name of ['knexfile.js', 'knexfile.mjs']) {
    const file = resolve(cwd, name);
    if (existsSync(file)) return targetFromKnexfile(file, io.env);
  }
  throw new CliError('no database configured: set DATABASE_URL (for example postgres://HOST:5432/DB or '
    + 'sqlite:./express-m2m.sqlite), pass --database URL, or add a ./knexfile.js');
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  SQLITE_CANTOPEN: 'cannot open the file',
  SQLITE_NOTADB: 'the file is not a database',
};

/** A one-line reason when `err` means the database could not be reached at all; else undefined. */
function connectionFailure(err: unknown): string | undefined {
  const e = err as { code?: unknown; name?: unknown; message?: unknown; errors?: { code?: unknown }[] } | null;
  if (!e || typeof e !== 'object') return undefined;
  const code = typeof e.code === 'string' ? e.code : typeof e.errors?.[0]?.code === 'string' ? e.errors[0].code : undefined;
  if (code !== undefined && NETWORK_ERRORS[code]) return NETWORK_ERRORS[code];
  // PostgreSQL: class 28 is authentication; 3D000 no such database; 57P03 starting up; 53300 too many connections.
  if (code !== undefined && /^(28...|3D000|57P03|53300)$/.test(code) && typeof e.message === 'string') return e.message;
  if (e.name === 'KnexTimeoutError') return 'timed out waiting for a connection';
  if (typeof e.message === 'string' && /connection timeout|Connection terminated unexpectedly/i.test(e.message)) return 'connection timed out';
  if (typeof e.message === 'string' && /Cannot find module '(pg|sqlite3)'/.test(e.message)) {
    return `its driver is not installed (npm install ${/'pg'/.test(e.message) ? 'pg' : 'sqlite3'})`;
  }
  return undefined;
}

async function requireTables(knex: Knex, store: KnexStore): Promise<void> {
  for (const table of [store.tables.clients, store.tables.secrets, store.tables.keys]) {
    if (!(await knex.schema.hasTable(table))) {
      throw new CliError(`the express-m2m tables are missing (no table ${table}): run \`express-m2m migrate\` first`);
    }
  }
}

async function withDatabase(target: DatabaseTarget, command: Command, args: Args, io: CliIo,
  run: (ctx: Context) => Promise<number>): Promise<number> {
  if (command.needsTables && target.sqliteFile !== undefined && !existsSync(target.sqliteFile)) {
    throw new CliError(`the SQLite database ${target.sqliteFile} does not exist: run \`express-m2m migrate\` to create it`);
  }
  const debug = args.flag('debug');
  // Knex logs connection failures with their stacks; keep them for --debug.
  const log = (message: unknown): void => {
    if (debug) io.stderr.write(`knex: ${redactUrls(String(message))}\n`);
  };
  let knex: Knex;
  try {
    knex = knexFactory({ ...target.config, log: { warn: log, error: log, deprecate: log, debug: log } });
  } catch (err) {
    const reason = connectionFailure(err);
    if (reason) throw new CliError(`cannot use the database ${target.label}: ${reason}`, { cause: err });
    throw err;
  }
  try {
    const prefix = args.string('table-prefix');
    // Keys rotated in are stored encrypted under the issuer's secret, when it is set.
    const keyEncryptionKey = io.env.M2M_KEY_ENCRYPTION_KEY || undefined;
    const store = createKnexStore(knex, { ...(prefix === undefined ? {} : { tablePrefix: prefix }), ...(keyEncryptionKey ? { keyEncryptionKey } : {}) });
    if (command.needsTables) await requireTables(knex, store);
    const json = args.flag('json');
    return await run({
      knex, store, io, json,
      print(data, text) {
        io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
      },
    });
  } catch (err) {
    const reason = connectionFailure(err);
    if (reason) throw new CliError(`cannot connect to the database ${target.label}: ${reason}`, { cause: err });
    throw err;
  } finally {
    await knex.destroy();
  }
}

// --------------------------------------------------------------------------------------- main --

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
 * disable|enable|delete`, `keys list|rotate`. Run `express-m2m --help` for the options.
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
    const parsed = parseCommandLine(argv);
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
