// `express-m2m clients revoke-tokens ID`: take back every token a client holds now (a leaked
// token, a compromised host). Its secrets or keys are kept: it may get new tokens at once.
import { EXIT_OK, defineCommand } from './command.js';
import { iso, shortDate } from './format.js';

/** `clients revoke-tokens ID`: revokes every token issued to the client until now, as an audited change. */
export const clientsRevokeTokens = defineCommand({
  name: 'clients revoke-tokens',
  synopsis: 'ID',
  summary: 'Revoke every token a client holds now (it keeps its secrets and may get new tokens)',
  options: {},
  needsTables: true,
  parse: (args) => args.single('client ID'),
  async run(ctx, clientId) {
    // ClientNotFoundError for an unknown client, with nothing recorded.
    const revokedBefore = await ctx.store.clients.revokeTokens(clientId);
    ctx.print({ clientId, revokedBefore: iso(revokedBefore) }, () => [
      `Revoked the tokens of client ${clientId} issued before ${shortDate(revokedBefore)}.`,
      "The issuer's introspection endpoint answers them as inactive now; resource servers that verify tokens",
      'themselves accept them until they expire. To stop the client getting new tokens too:',
      `express-m2m clients disable ${clientId}`,
    ].join('\n'));
    return EXIT_OK;
  },
});
