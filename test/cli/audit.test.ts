import { hostname, userInfo } from 'node:os';
import { expect } from 'chai';
import { badUsage, cli, cliAll, json, registration, usageOf, useSqliteDatabase } from './harness.js';

const USAGE = usageOf('audit', '[--client ID] [--since TIME] [--limit N] [--prune]');

describe('express-m2m CLI: audit', function () {
  this.timeout(120_000);
  const db = useSqliteDatabase({ migrated: true });

  it("records the CLI's changes as cli:<user>@<host> and shows them, a deleted client's included", async function () {
    // One after the other: each change needs the one before it.
    for (const args of [
      ['clients', 'create', '--client-id', 'audited', '--name', 'Audited', '--scope', 'a', '--audience', 'https://a.internal'],
      ['clients', 'disable', 'audited'],
      ['clients', 'delete', 'audited', '--yes'],
    ]) expect((await cli(args, { env: db.env })).code, args.join(' ')).to.equal(0);
    const run = await cli(['audit', '--client', 'audited', '--json'], { env: db.env });
    expect([run.code, run.stderr]).to.deep.equal([0, '']);
    const { entries } = json(run) as { entries: { actor: string; action: string; clientId: string; at: string }[] };
    const actor = `cli:${userInfo().username}@${hostname()}`;
    expect(entries.map((e) => [e.actor, e.action, e.clientId])).to.deep.equal([
      [actor, 'client.created', 'audited'], [actor, 'secret.created', 'audited'], [actor, 'client.disabled', 'audited'], [actor, 'client.deleted', 'audited'],
    ]);
    expect(entries[0]!.at).to.match(/^\d{4}-\d\d-\d\dT/);
    expect(run.stdout).not.to.match(/m2m_cs_/);
    const text = await cli(['audit', '--client', 'audited', '--limit', '2'], { env: db.env });
    expect(text.code).to.equal(0);
    expect(text.stdout.split('\n')[0]).to.match(/^time +actor +action +client +target +details$/);
    expect(text.stdout.trimEnd().split('\n')).to.have.length(3);
  });

  it('filters by time, prunes nothing recent, and says when there is nothing', async function () {
    await db.store.clients.create({ ...registration, clientId: 'recent' });
    const [future, pruned] = await cliAll([['audit', '--since', '2999-01-01'], ['audit', '--prune', '--json']], { env: db.env });
    expect(future).to.deep.equal({ code: 0, stdout: 'No audit entries.\n', stderr: '' });
    expect((json(pruned!) as { pruned: number }).pruned).to.equal(0);
  });

  it('refuses a malformed --since or --limit, and a positional argument', async function () {
    const runs = await cliAll([['audit', '--since', 'yesterday'], ['audit', '--limit', '0'], ['audit', 'extra']], { env: db.env });
    expect(runs).to.deep.equal([
      badUsage('--since must be an ISO 8601 time, got "yesterday"', USAGE),
      badUsage('--limit must be a whole number from 1 to 1000, got "0"', USAGE),
      badUsage('unexpected argument "extra"', USAGE),
    ]);
  });
});
