// `express-m2m clients ...`: register, list, show, rotate the secret of, disable, enable and delete
// OAuth clients. A secret is printed once, when issued; its hash never.
import { createInterface } from 'node:readline/promises';
import type { Client } from '../core/client.js';
import { formatScope } from '../core/scope.js';
import { ClientExistsError, ClientNotFoundError } from '../errors.js';
import type { KnexStore } from '../storage/knex-store.js';
import {
  CliError, EXIT_FAILURE, EXIT_OK, UsageError, defineCommand, type Args, type CliIo, type Command,
} from './command.js';
import { clientJson, fields, iso, secretJson, shortDate, table, yesNo } from './format.js';

const DEFAULT_GRACE = 86_400;
const SECRET_NOTICE = 'This secret will not be shown again: store it now.';

/** `--scope "a b" --scope c` → `['a', 'b', 'c']`. */
function splitScopes(values: readonly string[]): string[] {
  return values.flatMap((value) => value.split(/\s+/)).filter((scope) => scope !== '');
}

async function requireClient(store: KnexStore, clientId: string): Promise<Client> {
  const client = await store.clients.get(clientId);
  if (!client) throw new ClientNotFoundError(clientId);
  return client;
}

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

/** `clients create`: registers a client and prints its first secret. */
export const clientsCreate = defineCommand({
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
      if (err instanceof ClientExistsError) throw new CliError(err.message, { cause: err });
      // A configuration mistake: the store's validation, naming the registration field.
      if (err instanceof TypeError) throw new CliError(err.message.replace(/^\w+/, (word) => FLAG_FOR_FIELD[word] ?? word), { cause: err });
      throw err;
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

/** `clients list`: one line per client. */
export const clientsList = defineCommand({
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
        clients.map((c) => [c.clientId, c.name, yesNo(c.enabled), formatScope(c.scopes), c.audiences.join(' ')]),
      )));
    return EXIT_OK;
  },
});

/** `clients show ID`: a client's settings and its secrets' metadata. */
export const clientsShow = defineCommand({
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
        ['scopes', formatScope(client.scopes) || '-'],
        ['default scopes', formatScope(client.defaultScopes) || '-'],
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

/** `clients rotate-secret ID`: issues a new secret and sets when the older ones expire. */
export const clientsRotateSecret = defineCommand({
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

/** `clients disable ID`: the client can no longer authenticate; its secrets are kept. */
export const clientsDisable = setEnabled(false);
/** `clients enable ID`: undoes `clients disable`. */
export const clientsEnable = setEnabled(true);

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

/** `clients delete ID`: deletes a client and its secrets, after a prompt unless `--yes`. */
export const clientsDelete = defineCommand({
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
