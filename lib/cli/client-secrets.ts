// `express-m2m clients rotate-secret|revoke-secret`: issue a client's next secret, or withdraw one
// at once. A new secret is printed once; a secret's hash never. A private_key_jwt client has no
// secret: both are refused for it.
import { ClientAuthMethodError } from '../errors.js';
import { EXIT_OK, defineCommand } from './command.js';
import { requireClient } from './client-input.js';
import { CliError, quote } from './errors.js';
import { SECRET_NOTICE, iso, secretJson, shortDate } from './format.js';

const DEFAULT_GRACE = 86_400;

/** The refusal of a secret command for a private_key_jwt client, which has no secret. */
function noSecrets(clientId: string): ClientAuthMethodError {
  return new ClientAuthMethodError(clientId, 'private_key_jwt', 'it authenticates with private_key_jwt and has no secret: '
    + `to rotate its keys, register the next key beside the current one with \`express-m2m clients update ${clientId} --jwks-file FILE\``);
}

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
    let issued;
    try {
      issued = await ctx.store.clients.rotateSecret(clientId, { gracePeriod: grace });
    } catch (err) {
      // The store's message names its own API; the user needs the command.
      if (err instanceof ClientAuthMethodError) throw noSecrets(clientId);
      throw err;
    }
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

/** `clients revoke-secret ID SECRET_ID`: withdraws one secret at once (a leaked one). */
export const clientsRevokeSecret = defineCommand({
  name: 'clients revoke-secret',
  synopsis: 'ID SECRET_ID',
  summary: 'Withdraw one secret of a client at once, a leaked one (`clients show` lists the ids)',
  options: {},
  needsTables: true,
  parse(args) {
    const [clientId = '', secretId = ''] = args.take(['client ID', 'secret ID']);
    return { clientId, secretId };
  },
  async run(ctx, { clientId, secretId }) {
    const client = await requireClient(ctx.store, clientId);
    if (client.tokenEndpointAuthMethod === 'private_key_jwt') throw noSecrets(clientId);
    // Looked up first: the store's revokeSecret() writes (it bumps the registry's revision) even
    // when there is nothing to revoke.
    const known = (await ctx.store.clients.listSecrets(clientId)).some((s) => s.id === secretId);
    if (!known || !(await ctx.store.clients.revokeSecret(clientId, secretId))) {
      throw new CliError(`client ${quote(clientId)} has no secret with id ${quote(secretId)}`, 'ERR_M2M_SECRET_NOT_FOUND');
    }
    const now = Date.now();
    const working = (await ctx.store.clients.listSecrets(clientId)).filter((s) => s.expiresAt === null || s.expiresAt.getTime() > now);
    if (working.length === 0) {
      ctx.io.stderr.write(`Warning: client ${clientId} has no working secret left; it cannot authenticate until `
        + `\`express-m2m clients rotate-secret ${clientId}\` issues one.\n`);
    }
    ctx.print({ clientId, revoked: secretId }, () => `Revoked secret ${secretId} of client ${clientId}: it no longer authenticates.`);
    return EXIT_OK;
  },
});
