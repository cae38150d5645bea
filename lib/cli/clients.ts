// `express-m2m clients ...`: register, list, show, disable, enable and delete OAuth clients.
// Changing a client is ./client-update.ts, its secrets ./client-secrets.ts, reading public keys
// for a secretless client ./client-keys.ts. A secret is printed once, when issued; its hash never.
import { createInterface } from 'node:readline/promises';
import { formatScope } from '../core/scope.js';
import { ClientNotFoundError } from '../errors.js';
import type { Client, ClientRegistration } from '../core/client.js';
import { EXIT_OK, defineCommand, type CliIo, type Command, type Context } from './command.js';
import { authMethodOption, keySourceOption } from './client-keys.js';
import {
  audienceOption, checkAudience, parseClaims, requireClient, scopeOption, splitScopes, storeRefusal, tokenLifetimeOption,
} from './client-input.js';
import { CliError, UsageError, quote } from './errors.js';
import {
  KEYED_NOTICE, SECRET_NOTICE, clientFields, clientJson, fields, keysColumn, secretJson, shortDate, table, yesNo,
} from './format.js';

/** `clients create`: registers a client and prints its first secret, or, registered with public keys, its keys. */
export const clientsCreate = defineCommand({
  name: 'clients create',
  synopsis: '--name NAME --scope S... --audience A... [options]',
  summary: 'Register a client and print its first secret, once (no secret with --jwks-file or --jwks-uri)',
  options: {
    name: { type: 'string', value: 'NAME', description: 'human-readable name (required)' },
    scope: {
      type: 'string', value: 'S', multiple: true,
      description: 'scopes the client may request; repeat it or separate with spaces (required)',
    },
    audience: {
      type: 'string', value: 'A', multiple: true,
      description: 'audiences the client may request tokens for, absolute URIs such as https://reports.internal;\nrepeatable (required)',
    },
    'default-scope': {
      type: 'string', value: 'S', multiple: true,
      description: 'scopes granted when a request names none; repeatable (default: all of --scope)',
    },
    'default-audience': { type: 'string', value: 'A', description: 'audience used when a request names none (default: the first --audience)' },
    'client-id': { type: 'string', value: 'ID', description: 'the client_id (default: a random UUID)' },
    'token-lifetime': { type: 'string', value: 'SECONDS', description: "access-token lifetime, 1 to 86400 (default: the issuer's)" },
    claims: { type: 'string', value: 'JSON', description: 'a JSON object of static claims added to every token' },
    'jwks-file': {
      type: 'string', value: 'FILE', stdin: true,
      description: 'register a secretless (private_key_jwt) client with the public keys of the JWK Set\n'
        + 'in FILE, {"keys": [...]} (- reads standard input); no secret is issued',
    },
    'jwks-uri': {
      type: 'string', value: 'URL',
      description: 'register a secretless (private_key_jwt) client whose public keys the issuer fetches\n'
        + 'from URL (https; http only on localhost); no secret is issued',
    },
    'auth-method': {
      type: 'string', value: 'METHOD',
      description: 'client_secret_basic or client_secret_post: the one way the client may send its\n'
        + 'secret (default: either); private_key_jwt comes with --jwks-file or --jwks-uri',
    },
  },
  needsTables: true,
  async parse(args, io) {
    args.none();
    const name = args.required('name');
    const scopes = splitScopes(args.strings('scope'));
    if (scopes.length === 0) throw new UsageError('missing required option --scope', args.usage);
    const audiences = audienceOption(args, 'audience');
    if (audiences.length === 0) throw new UsageError('missing required option --audience', args.usage);
    const defaultScopes = scopeOption(args, 'default-scope', '');
    const defaultAudience = args.string('default-audience');
    const clientId = args.string('client-id');
    const tokenLifetime = tokenLifetimeOption(args);
    const claims = parseClaims(args);
    const method = authMethodOption(args);
    const registration: ClientRegistration = {
      name, scopes, audiences,
      ...(defaultScopes !== undefined ? { defaultScopes } : {}),
      ...(defaultAudience !== undefined ? { defaultAudience: checkAudience(defaultAudience, '--default-audience', args.usage) } : {}),
      ...(clientId !== undefined ? { clientId } : {}),
      ...(tokenLifetime !== undefined ? { tokenLifetime } : {}),
      ...(claims !== undefined ? { claims } : {}),
      ...(method !== undefined ? { tokenEndpointAuthMethod: method } : {}),
    };
    // Read last: every mistake on the command line is reported before the file or standard input is read.
    return { registration, keys: await keySourceOption(args, io) };
  },
  async run(ctx, { registration, keys }) {
    if (keys !== undefined) {
      let registered;
      try {
        registered = await ctx.store.clients.create({ ...registration, ...keys });
      } catch (err) {
        throw storeRefusal(err);
      }
      printKeyed(ctx, registered.client);
      return EXIT_OK;
    }
    let created;
    try {
      created = await ctx.store.clients.create(registration);
    } catch (err) {
      throw storeRefusal(err);
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

/** What `clients create` prints of a client registered with public keys: no secret. */
function printKeyed(ctx: Context, client: Client): void {
  const keys = clientFields(client).filter(({ field }) => field === 'tokenEndpointAuthMethod' || field === 'jwks' || field === 'jwksUri');
  ctx.print({ clientId: client.clientId, client: clientJson(client) }, () => [
    `Created client ${JSON.stringify(client.name)}.`,
    '',
    fields([['client id', client.clientId], ...keys.map(({ label, value }): [string, string] => [label, value])]),
    '',
    KEYED_NOTICE,
  ].join('\n'));
}

/** `clients list`: one line per client. */
export const clientsList = defineCommand({
  name: 'clients list',
  synopsis: '',
  summary: 'List clients: id, name, enabled, auth method, keys, scopes, audiences',
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
        ['CLIENT ID', 'NAME', 'ENABLED', 'AUTH METHOD', 'KEYS', 'SCOPES', 'AUDIENCES'],
        clients.map((c) => [c.clientId, c.name, yesNo(c.enabled), c.tokenEndpointAuthMethod ?? 'client_secret_basic|post', keysColumn(c),
          formatScope(c.scopes), c.audiences.join(' ')]),
      )));
    return EXIT_OK;
  },
});

/** `clients show ID`: a client's settings with its public keys, or its secrets' metadata. */
export const clientsShow = defineCommand({
  name: 'clients show',
  synopsis: 'ID',
  summary: "Show a client with its public keys or its secrets' metadata (never a secret or its hash)",
  options: {},
  needsTables: true,
  parse: (args) => args.single('client ID'),
  async run(ctx, clientId) {
    const client = await requireClient(ctx.store, clientId);
    const secrets = await ctx.store.clients.listSecrets(clientId);
    const keyed = client.tokenEndpointAuthMethod === 'private_key_jwt';
    ctx.print({ client: clientJson(client), secrets: secrets.map(secretJson) }, () => [
      `Client ${client.clientId}`,
      fields(clientFields(client).map(({ label, value }) => [label, value])),
      // A private_key_jwt client never has a secret: its keys are among its settings.
      ...keyed ? [] : [
        '',
        `Secrets (${secrets.length}):`,
        secrets.length === 0 ? '  none' : table(
          ['ID', 'HINT', 'CREATED', 'EXPIRES', 'LAST USED'],
          secrets.map((s) => [s.id, `${s.hint}...`, shortDate(s.createdAt), shortDate(s.expiresAt, 'never'), shortDate(s.lastUsedAt, 'never')]),
        ).replace(/^/gm, '  '),
      ],
    ].join('\n'));
    return EXIT_OK;
  },
});

function setEnabled(enabled: boolean): Command {
  const verb = enabled ? 'enable' : 'disable';
  return defineCommand({
    name: `clients ${verb}`,
    synopsis: 'ID',
    summary: enabled ? 'Let a disabled client authenticate again (the tokens it held stay revoked)'
      : 'Stop a client from authenticating and revoke the tokens it holds (its secrets are kept)',
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

/** `clients disable ID`: the client can no longer authenticate, and its tokens are revoked; its secrets are kept. */
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
  summary: 'Delete a client and all its secrets, and revoke the tokens it holds',
  options: {
    yes: { type: 'boolean', description: 'do not ask for confirmation (required when not run from a terminal)' },
  },
  needsTables: true,
  parse(args, io) {
    const clientId = args.single('client ID');
    const yes = args.flag('yes');
    if (!yes && io.stdin?.isTTY !== true) {
      throw new UsageError(`refusing to delete client ${quote(clientId)} without --yes when not run from a terminal`, args.usage);
    }
    return { clientId, yes };
  },
  async run(ctx, { clientId, yes }) {
    await requireClient(ctx.store, clientId);
    if (!yes && !(await confirm(ctx.io, `Delete client ${clientId} and all its secrets?`))) {
      throw new CliError(`client ${quote(clientId)} not deleted: the deletion was not confirmed`, 'ERR_M2M_NOT_CONFIRMED');
    }
    const deleted = await ctx.store.clients.delete(clientId);
    if (!deleted) throw new ClientNotFoundError(clientId);
    ctx.print({ clientId, deleted: true }, () => `Client ${clientId} deleted.`);
    return EXIT_OK;
  },
});
