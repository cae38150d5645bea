import { hostname, userInfo } from 'node:os';
import { expect } from 'chai';
import { badUsage, cli, cliAll, failure, json, registration, snapshot, usageOf, useSqliteDatabase } from './harness.js';

const USAGE = usageOf('clients revoke-tokens', 'ID');

describe('express-m2m CLI: clients revoke-tokens', function () {
  this.timeout(120_000);
  const db = useSqliteDatabase({ migrated: true });

  /** The cutoff the store holds for `clientId`. */
  async function cutoffOf(clientId: string): Promise<Date | undefined> {
    const { entries } = await db.store.revocations.list();
    const entry = entries.find((e) => e.type === 'client' && e.clientId === clientId);
    return entry?.type === 'client' ? entry.revokedBefore : undefined;
  }

  it('revokes every token the client holds now, keeps its secret working, and records the change', async function () {
    const created = await db.store.clients.create({ ...registration, clientId: 'leaky' });
    const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const run = await cli(['clients', 'revoke-tokens', 'leaky'], { env: db.env });
    const cutoff = await cutoffOf('leaky');
    expect(cutoff).to.be.instanceOf(Date);
    expect(run).to.deep.equal({
      code: 0,
      stdout: `Revoked the tokens of client leaky issued before ${(cutoff as Date).toISOString().replace(/\.\d{3}Z$/, 'Z')}.\n`
        + "The issuer's introspection endpoint answers them as inactive now; resource servers that verify tokens\n"
        + 'themselves accept them until they expire. To stop the client getting new tokens too:\n'
        + 'express-m2m clients disable leaky\n',
      stderr: '',
    });
    expect(await db.store.revocations.isRevoked({ jti: 'any', clientId: 'leaky', issuedAt })).to.equal(true);
    expect((await db.store.clients.authenticate('leaky', created.clientSecret)).ok).to.equal(true);
    const entries = await db.store.audit.list({ clientId: 'leaky' });
    expect(entries.map((e) => [e.actor, e.action, e.details])).to.deep.equal([
      ['app', 'client.created', entries[0]?.details], ['app', 'secret.created', entries[1]?.details],
      [`cli:${userInfo().username}@${hostname()}`, 'client.tokens_revoked', { revokedBefore: (cutoff as Date).toISOString() }],
    ]);
  });

  it('prints JSON with --json', async function () {
    await db.store.clients.create({ ...registration, clientId: 'quiet' });
    const printed = json(await cli(['clients', 'revoke-tokens', 'quiet', '--json'], { env: db.env }));
    expect(printed).to.deep.equal({ clientId: 'quiet', revokedBefore: (await cutoffOf('quiet'))?.toISOString() });
  });

  it('revokes the tokens of a disabled client too', async function () {
    await db.store.clients.create({ ...registration, clientId: 'off', enabled: false });
    expect((await cli(['clients', 'revoke-tokens', 'off'], { env: db.env })).code).to.equal(0);
    expect(await cutoffOf('off')).to.be.instanceOf(Date);
  });

  it('fails with exit code 1 for an unknown client, changing nothing', async function () {
    await db.store.clients.create({ ...registration, clientId: 'kept' });
    const before = await snapshot(db.knex);
    const [plain, hostile, asJson] = await cliAll([
      ['clients', 'revoke-tokens', 'nope'],
      ['clients', 'revoke-tokens', "x' or '1'='1"],
      ['clients', 'revoke-tokens', 'nope', '--json'],
    ], { env: db.env });
    expect([plain, hostile]).to.deep.equal([failure('no client with id "nope"'), failure('no client with id "x\' or \'1\'=\'1"')]);
    expect(asJson).to.deep.equal({
      code: 1, stdout: '',
      stderr: `${JSON.stringify({ error: { code: 'ERR_M2M_CLIENT_NOT_FOUND', message: 'no client with id "nope"' } }, null, 2)}\n`,
    });
    expect(await snapshot(db.knex)).to.deep.equal(before);
  });

  it('refuses a missing or extra argument and unknown options with exit code 2, changing nothing', async function () {
    await db.store.clients.create({ ...registration, clientId: 'kept' });
    const before = await snapshot(db.knex);
    const cases: [string[], string][] = [
      [[], 'missing client ID'],
      [['kept', 'extra'], 'unexpected argument "extra"'],
      [['kept', '--yes'], 'unknown option --yes'],
      [['kept', '--', '--json'], 'option --json after --: everything after -- is an argument, so put options before --'],
    ];
    const runs = await cliAll(cases.map(([args]) => ['clients', 'revoke-tokens', ...args]), { env: db.env });
    for (const [i, [args, message]] of cases.entries()) expect(runs[i], args.join(' ')).to.deep.equal(badUsage(message, USAGE));
    expect(await snapshot(db.knex)).to.deep.equal(before);
  });

  it('prints its help with --help, without touching a database', async function () {
    const run = await cli(['clients', 'revoke-tokens', '--help']);
    expect([run.code, run.stderr]).to.deep.equal([0, '']);
    expect(run.stdout).to.match(/^Usage: express-m2m clients revoke-tokens ID \[global options\]\n\n/);
    expect(run.stdout).to.include('Revoke every token a client holds now (it keeps its secrets and may get new tokens).');
  });
});
