import { expect } from 'chai';
import { badUsage, cli, cliAll, failure, json, registration, snapshot, usageOf, useSqliteDatabase } from './harness.js';

const USAGE = usageOf('clients revoke-secret', 'ID SECRET_ID');

describe('express-m2m CLI: clients revoke-secret', function () {
  this.timeout(120_000);
  const db = useSqliteDatabase({ migrated: true });

  /** A client with two secrets: the first one issued, and one rotated in after it. */
  async function twoSecrets(clientId: string) {
    const created = await db.store.clients.create({ ...registration, clientId });
    const rotated = await db.store.clients.rotateSecret(clientId, { gracePeriod: 3600 });
    return { first: created, second: rotated };
  }

  it('withdraws one secret at once and keeps the others', async function () {
    const { first, second } = await twoSecrets('leaky');
    const run = await cli(['clients', 'revoke-secret', 'leaky', first.secret.id], { env: db.env });
    expect(run).to.deep.equal({
      code: 0, stdout: `Revoked secret ${first.secret.id} of client leaky: it no longer authenticates.\n`, stderr: '',
    });
    expect(await db.store.clients.authenticate('leaky', first.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
    expect((await db.store.clients.authenticate('leaky', second.clientSecret)).ok).to.equal(true);
    expect((await db.store.clients.listSecrets('leaky')).map((s) => s.id)).to.deep.equal([second.secret.id]);
  });

  it('prints JSON with --json, and warns when the client has no working secret left', async function () {
    const created = await db.store.clients.create({ ...registration, clientId: 'lonely' });
    const run = await cli(['clients', 'revoke-secret', 'lonely', created.secret.id, '--json'], { env: db.env });
    expect(run).to.deep.equal({
      code: 0,
      stdout: `${JSON.stringify({ clientId: 'lonely', revoked: created.secret.id }, null, 2)}\n`,
      stderr: 'Warning: client lonely has no working secret left; it cannot authenticate until '
        + '`express-m2m clients rotate-secret lonely` issues one.\n',
    });
    expect(await db.store.clients.authenticate('lonely', created.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
  });

  it('counts a secret past its grace period as not working', async function () {
    const { first, second } = await twoSecrets('expiring');
    await db.knex('m2m_client_secrets').where({ id: first.secret.id }).update({ expires_at: Date.now() - 1000 });
    const run = await cli(['clients', 'revoke-secret', 'expiring', second.secret.id], { env: db.env });
    expect(run.code).to.equal(0);
    expect(run.stderr).to.equal('Warning: client expiring has no working secret left; it cannot authenticate until '
      + '`express-m2m clients rotate-secret expiring` issues one.\n');
  });

  it('takes a secret id that starts with "-" after --', async function () {
    const { first } = await twoSecrets('dashed');
    await db.knex('m2m_client_secrets').where({ id: first.secret.id }).update({ id: '-dash-started-id' });
    const before = await snapshot(db.knex);
    const [without, after] = await cliAll([
      ['clients', 'revoke-secret', 'dashed', '-dash-started-id'],
      ['clients', 'revoke-secret', '--', 'dashed', '-dash-started-id'],
    ], { env: db.env });
    expect(without).to.deep.equal(badUsage(
      'unknown option -d (an argument that starts with "-", such as a kid or a secret id, goes after --)', USAGE));
    expect(after).to.deep.equal({ code: 0, stdout: 'Revoked secret -dash-started-id of client dashed: it no longer authenticates.\n', stderr: '' });
    expect((await snapshot(db.knex)).m2m_client_secrets).to.have.length((before.m2m_client_secrets?.length ?? 0) - 1);
  });

  it('fails with exit code 1 for a secret the client does not have, or no longer has, changing nothing', async function () {
    const { first } = await twoSecrets('owner');
    const other = await db.store.clients.create({ ...registration, clientId: 'other' });
    expect((await cli(['clients', 'revoke-secret', 'owner', first.secret.id], { env: db.env })).code).to.equal(0);
    const before = await snapshot(db.knex);
    const runs = await cliAll([
      ['clients', 'revoke-secret', 'owner', first.secret.id],
      ['clients', 'revoke-secret', 'owner', other.secret.id],
      ['clients', 'revoke-secret', 'owner', "x' or '1'='1"],
      ['clients', 'revoke-secret', 'owner', 's'.repeat(5000)],
      ['clients', 'revoke-secret', 'nope', first.secret.id],
      ['clients', 'revoke-secret', 'owner', other.secret.id, '--json'],
    ], { env: db.env });
    expect(runs.slice(0, 5)).to.deep.equal([
      failure(`client "owner" has no secret with id "${first.secret.id}"`),
      failure(`client "owner" has no secret with id "${other.secret.id}"`),
      failure('client "owner" has no secret with id "x\' or \'1\'=\'1"'),
      failure(`client "owner" has no secret with id "${'s'.repeat(64)}..."`),
      failure('no client with id "nope"'),
    ]);
    expect(runs[5]).to.deep.equal({
      code: 1, stdout: '',
      stderr: `${JSON.stringify({ error: { code: 'ERR_M2M_SECRET_NOT_FOUND', message: `client "owner" has no secret with id "${other.secret.id}"` } }, null, 2)}\n`,
    });
    expect(await snapshot(db.knex)).to.deep.equal(before);
    expect((await db.store.clients.authenticate('other', other.clientSecret)).ok).to.equal(true);
  });

  it('refuses a missing or extra argument and options after -- with exit code 2, changing nothing', async function () {
    const { first } = await twoSecrets('kept');
    const before = await snapshot(db.knex);
    const cases: [string[], string][] = [
      [[], 'missing client ID'],
      [['kept'], 'missing secret ID'],
      [['kept', first.secret.id, 'extra'], 'unexpected argument "extra"'],
      [['kept', '--', first.secret.id, '--json'], 'option --json after --: everything after -- is an argument, so put options before --'],
      [['kept', first.secret.id, '--yes'], 'unknown option --yes'],
      [['kept', first.secret.id, '--grac', '0'], 'unknown option --grac'],
    ];
    const runs = await cliAll(cases.map(([args]) => ['clients', 'revoke-secret', ...args]), { env: db.env });
    for (const [i, [args, message]] of cases.entries()) expect(runs[i], args.join(' ')).to.deep.equal(badUsage(message, USAGE));
    expect(await snapshot(db.knex)).to.deep.equal(before);
    expect(json(await cli(['clients', 'show', 'kept', '--json'], { env: db.env }))).to.have.nested.property('secrets.length', 2);
  });
});
