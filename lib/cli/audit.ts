// `express-m2m audit`: the audit trail of administrative changes, which outlives what it describes
// (deleted clients, revoked keys). Entries never hold a secret or a private key.
import type { AuditEntry } from '../core/audit.js';
import { EXIT_OK, defineCommand } from './command.js';
import { UsageError } from './errors.js';
import { iso, shortDate, table } from './format.js';

/** `audit [--client ID] [--since TIME] [--limit N] [--prune]`. */
export const audit = defineCommand({
  name: 'audit',
  synopsis: '[--client ID] [--since TIME] [--limit N] [--prune]',
  summary: 'Show the audit trail of changes to clients, secrets and keys (who, when, what), oldest first',
  options: {
    client: { type: 'string', value: 'ID', description: "only this client's entries (a deleted client's too)" },
    since: { type: 'string', value: 'TIME', description: 'only entries at or after TIME (ISO 8601, e.g. 2026-12-01 or 2026-12-01T09:00:00Z)' },
    limit: { type: 'string', value: 'N', description: 'at most N entries (1 to 1000, default 100)' },
    prune: { type: 'boolean', description: 'first remove entries older than the store\'s retention (one year)' },
  },
  needsTables: true,
  parse(args) {
    args.none();
    const since = args.string('since');
    const sinceDate = since === undefined ? undefined : new Date(since);
    if (sinceDate !== undefined && (Number.isNaN(sinceDate.getTime()) || since!.length > 40)) {
      throw new UsageError(`--since must be an ISO 8601 time, got ${JSON.stringify(since!.slice(0, 40))}`, args.usage, 'ERR_M2M_INVALID_OPTION');
    }
    const limit = args.string('limit');
    if (limit !== undefined && (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)) {
      throw new UsageError(`--limit must be a whole number from 1 to 1000, got ${JSON.stringify(limit.slice(0, 40))}`, args.usage, 'ERR_M2M_INVALID_OPTION');
    }
    const clientId = args.string('client');
    return {
      query: {
        ...(clientId !== undefined ? { clientId } : {}), ...(sinceDate !== undefined ? { since: sinceDate } : {}),
        ...(limit !== undefined ? { limit: Number(limit) } : {}),
      },
      prune: args.flag('prune'),
    };
  },
  async run(ctx, { query, prune }) {
    const pruned = prune ? await ctx.store.audit.prune() : undefined;
    const entries = await ctx.store.audit.list(query);
    ctx.print(
      { ...(pruned !== undefined ? { pruned } : {}), entries: entries.map((e) => ({ ...e, at: iso(e.at) })) },
      () => [
        ...(pruned !== undefined ? [`Removed ${pruned} entr${pruned === 1 ? 'y' : 'ies'} older than the retention.`] : []),
        entries.length === 0 ? 'No audit entries.' : table(['time', 'actor', 'action', 'client', 'target', 'details'], entries.map(row)),
      ].join('\n'),
    );
    return EXIT_OK;
  },
});

function row(e: AuditEntry): string[] {
  const details = JSON.stringify(e.details);
  return [shortDate(e.at), e.actor, e.action, e.clientId ?? '', e.target, details === '{}' ? '' : details.slice(0, 120)];
}
