// `express-m2m clients update ID`: change a client's name, scopes, default scopes, audiences,
// default audience, token lifetime or, for a private_key_jwt client, its public keys. A list option
// replaces the whole list, and a key option the whole key set.
import type { Client, ClientUpdate } from '../core/client.js';
import { formatScope } from '../core/scope.js';
import { ClientAuthMethodError } from '../errors.js';
import { EXIT_OK, defineCommand, type Args, type CliIo, type OptionSpec } from './command.js';
import { keySourceOption } from './client-keys.js';
import { audienceOption, checkAudience, requireClient, scopeOption, storeRefusal, tokenLifetimeOption } from './client-input.js';
import { UsageError } from './errors.js';
import { authMethod, clientFields, clientJson, fields } from './format.js';

const OPTIONS: Record<string, OptionSpec> = {
  name: { type: 'string', value: 'NAME', description: 'the new human-readable name' },
  scope: {
    type: 'string', value: 'S', multiple: true,
    description: "replaces the client's scopes; repeat it or separate with spaces (default scopes\nnot among them are dropped)",
  },
  'default-scope': {
    type: 'string', value: 'S', multiple: true,
    description: 'replaces the scopes granted when a request names none; repeatable',
  },
  'no-default-scope': { type: 'boolean', description: 'no default scope: requests must name their scopes' },
  audience: {
    type: 'string', value: 'A', multiple: true,
    description: "replaces the client's audiences, absolute URIs; repeatable (a default audience not\namong them is dropped)",
  },
  'default-audience': { type: 'string', value: 'A', description: 'the audience used when a request names none, one of the audiences' },
  'no-default-audience': { type: 'boolean', description: 'no default audience: requests must name one' },
  'token-lifetime': { type: 'string', value: 'SECONDS', description: 'access-token lifetime, 1 to 86400' },
  'no-token-lifetime': { type: 'boolean', description: "use the issuer's token lifetime" },
  'jwks-file': {
    type: 'string', value: 'FILE', stdin: true,
    description: "replaces a private_key_jwt client's public keys with the JWK Set in FILE (- reads\n"
      + 'standard input). To rotate keys without downtime, put the next key beside the current\n'
      + 'one in FILE (each with its kid), move the caller to the next key, then register it alone',
  },
  'jwks-uri': {
    type: 'string', value: 'URL',
    description: "replaces a private_key_jwt client's public keys with those published at URL (https)",
  },
};

/** The fields an update may change, in the order `clients show` prints them. */
const CHANGEABLE: readonly (keyof Client)[] = ['name', 'scopes', 'defaultScopes', 'audiences', 'defaultAudience', 'tokenLifetime', 'jwks', 'jwksUri'];

async function parseUpdate(args: Args, io: CliIo): Promise<{ clientId: string; update: ClientUpdate }> {
  const clientId = args.single('client ID');
  for (const name of ['default-scope', 'default-audience', 'token-lifetime']) args.exclusive(name, `no-${name}`);
  const update: ClientUpdate = {};
  const name = args.string('name');
  if (name !== undefined) update.name = name;
  const scopes = scopeOption(args, 'scope', '');
  if (scopes !== undefined) update.scopes = scopes;
  const defaultScopes = args.flag('no-default-scope') ? [] : scopeOption(args, 'default-scope', ' (--no-default-scope for none)');
  if (defaultScopes !== undefined) update.defaultScopes = defaultScopes;
  if (args.values.has('audience')) update.audiences = audienceOption(args, 'audience');
  const defaultAudience = args.string('default-audience');
  if (defaultAudience !== undefined) update.defaultAudience = checkAudience(defaultAudience, '--default-audience', args.usage);
  if (args.flag('no-default-audience')) update.defaultAudience = null;
  const tokenLifetime = tokenLifetimeOption(args);
  if (tokenLifetime !== undefined) update.tokenLifetime = tokenLifetime;
  if (args.flag('no-token-lifetime')) update.tokenLifetime = null;
  args.exclusive('jwks-file', 'jwks-uri');
  if (Object.keys(update).length === 0 && !args.values.has('jwks-file') && !args.values.has('jwks-uri')) {
    throw new UsageError(`nothing to update: give one or more of ${Object.keys(OPTIONS).map((o) => `--${o}`).join(', ')}`, args.usage);
  }
  // Read last: every mistake on the command line is reported before the file or standard input is read.
  Object.assign(update, await keySourceOption(args, io));
  return { clientId, update };
}

/** Keys for a client that authenticates with a secret: refused, in the CLI's words. */
function refuseKeys(client: Client): ClientAuthMethodError {
  return new ClientAuthMethodError(client.clientId, client.tokenEndpointAuthMethod, `it authenticates with a secret (${authMethod(client)}), `
    + 'so it has no public keys to replace: the method is fixed at registration; register a new client with --jwks-file or --jwks-uri');
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** What the store changed without being asked: defaults that are no longer among the new lists. */
function implicitChanges(before: Client, after: Client, update: ClientUpdate): string[] {
  const warnings: string[] = [];
  if (update.defaultScopes === undefined && !same(before.defaultScopes, after.defaultScopes)) {
    warnings.push(after.defaultScopes.length === 0
      ? 'no default scope is left (none is among the new scopes): requests must now name their scopes; set some with --default-scope'
      : `the default scopes are now ${formatScope(after.defaultScopes)} (the others are not among the new scopes)`);
  }
  if (update.defaultAudience === undefined && before.defaultAudience !== null && after.defaultAudience === null) {
    warnings.push(`the default audience ${before.defaultAudience} is not among the new audiences: requests must now name an `
      + 'audience; set one with --default-audience');
  }
  return warnings;
}

/** `clients update ID`: changes the client's settings; its secrets and enabled state are kept. */
export const clientsUpdate = defineCommand({
  name: 'clients update',
  synopsis: 'ID [--name NAME] [--scope S...] [--default-scope S...] [--audience A...] [--default-audience A] '
    + '[--token-lifetime SECONDS] [options]',
  summary: "Change a client's name, scopes, audiences, their defaults, its token lifetime or its public keys",
  options: OPTIONS,
  needsTables: true,
  parse: parseUpdate,
  async run(ctx, { clientId, update }) {
    const before = await requireClient(ctx.store, clientId);
    if ((update.jwks !== undefined || update.jwksUri !== undefined) && before.tokenEndpointAuthMethod !== 'private_key_jwt') throw refuseKeys(before);
    let after: Client;
    try {
      after = await ctx.store.clients.update(clientId, update);
    } catch (err) {
      throw storeRefusal(err);
    }
    for (const warning of implicitChanges(before, after, update)) ctx.io.stderr.write(`Warning: ${warning}.\n`);
    const changed = CHANGEABLE.filter((field) => !same(before[field], after[field]));
    const shown = clientFields(after).filter(({ field }) => changed.includes(field));
    ctx.print({ client: clientJson(after), changed }, () => (changed.length === 0
      ? `Client ${clientId} already had these settings: nothing changed.`
      : `Updated client ${clientId}:\n${fields(shown.map(({ label, value }) => [label, value]))}`));
    return EXIT_OK;
  },
});
