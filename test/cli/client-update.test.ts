import { expect } from 'chai';
import type { Client } from '../../lib/index.js';
import {
  badUsage, cli, cliAll, clientJson, failure, json, registration, snapshot, usageOf, useSqliteDatabase, type Run,
} from './harness.js';

const USAGE = usageOf('clients update', 'ID [--name NAME] [--scope S...] [--default-scope S...] [--audience A...] '
  + '[--default-audience A] [--token-lifetime SECONDS] [options]');

describe('express-m2m CLI: clients update', function () {
  this.timeout(120_000);
  const db = useSqliteDatabase({ migrated: true });

  const runAll = (lines: readonly (readonly string[])[]): Promise<Run[]> => cliAll(lines, { env: db.env });

  it('changes the name, scopes, default scopes, audiences, default audience and token lifetime, and prints what changed', async function () {
    const created = await db.store.clients.create({ ...registration, clientId: 'billing' });
    const run = await cli(['clients', 'update', 'billing', '--name', 'billing service', '--scope', 'invoices:read invoices:write',
      '--scope', 'reports:read', '--default-scope', 'invoices:read', '--audience', 'https://billing.internal',
      '--audience', 'https://reports.internal', '--default-audience', 'https://billing.internal', '--token-lifetime', '600'], { env: db.env });
    expect(run).to.deep.equal({
      code: 0,
      stderr: '',
      stdout: [
        'Updated client billing:',
        '  name:              billing service',
        '  scopes:            invoices:read invoices:write reports:read',
        '  default scopes:    invoices:read',
        '  audiences:         https://billing.internal https://reports.internal',
        '  default audience:  https://billing.internal',
        '  token lifetime:    600 s',
        '',
      ].join('\n'),
    });
    expect(await db.store.clients.get('billing')).to.deep.include({
      clientId: 'billing', name: 'billing service', scopes: ['invoices:read', 'invoices:write', 'reports:read'],
      defaultScopes: ['invoices:read'], audiences: ['https://billing.internal', 'https://reports.internal'],
      defaultAudience: 'https://billing.internal', tokenLifetime: 600, enabled: true, claims: {},
    });
    // The secret and the other settings are kept.
    expect((await db.store.clients.authenticate('billing', created.clientSecret)).ok).to.equal(true);
  });

  it('prints the client and the names of the changed fields as JSON with --json', async function () {
    await db.store.clients.create({ ...registration, clientId: 'billing' });
    const output = json(await cli(['clients', 'update', 'billing', '--token-lifetime', '120', '--json'], { env: db.env }));
    const client = await db.store.clients.get('billing') as Client;
    expect(client.tokenLifetime).to.equal(120);
    expect(output).to.deep.equal({ client: clientJson(client), changed: ['tokenLifetime'] });
  });

  it("removes the defaults and the client's own token lifetime with --no-default-scope, --no-default-audience, --no-token-lifetime", async function () {
    await db.store.clients.create({ ...registration, clientId: 'billing', tokenLifetime: 300 });
    const run = await cli(['clients', 'update', 'billing', '--no-default-scope', '--no-default-audience', '--no-token-lifetime'], { env: db.env });
    expect(run).to.deep.equal({
      code: 0,
      stderr: '',
      stdout: 'Updated client billing:\n'
        + '  default scopes:    - (requests must name their scopes)\n'
        + '  default audience:  - (requests must name one)\n'
        + "  token lifetime:    issuer's default\n",
    });
    expect(await db.store.clients.get('billing')).to.deep.include({
      scopes: ['reports:read'], defaultScopes: [], audiences: ['https://reports.internal'], defaultAudience: null, tokenLifetime: null,
    });
  });

  it('warns when the new scopes or audiences leave out the defaults, which are then dropped', async function () {
    await db.store.clients.create({
      name: 'n', clientId: 'dropped', scopes: ['a', 'b'], defaultScopes: ['b'],
      audiences: ['https://a.internal', 'https://b.internal'], defaultAudience: 'https://b.internal',
    });
    await db.store.clients.create({ name: 'n', clientId: 'reduced', scopes: ['a', 'b', 'c'], defaultScopes: ['a', 'b'], audiences: ['https://a.internal'] });
    const [dropped, reduced] = await runAll([
      ['clients', 'update', 'dropped', '--scope', 'a', '--audience', 'https://a.internal'],
      ['clients', 'update', 'reduced', '--scope', 'a c'],
    ]);
    expect(dropped).to.deep.equal({
      code: 0,
      stdout: 'Updated client dropped:\n'
        + '  scopes:            a\n'
        + '  default scopes:    - (requests must name their scopes)\n'
        + '  audiences:         https://a.internal\n'
        + '  default audience:  - (requests must name one)\n',
      stderr: 'Warning: no default scope is left (none is among the new scopes): requests must now name their scopes; '
        + 'set some with --default-scope.\n'
        + 'Warning: the default audience https://b.internal is not among the new audiences: requests must now name an audience; '
        + 'set one with --default-audience.\n',
    });
    expect(reduced).to.deep.equal({
      code: 0,
      stdout: 'Updated client reduced:\n  scopes:          a c\n  default scopes:  a\n',
      stderr: 'Warning: the default scopes are now a (the others are not among the new scopes).\n',
    });
    expect(await db.store.clients.get('dropped')).to.deep.include({ defaultScopes: [], defaultAudience: null });
    expect(await db.store.clients.get('reduced')).to.deep.include({ defaultScopes: ['a'] });
  });

  it('says so when the client already has the settings given', async function () {
    await db.store.clients.create({ ...registration, clientId: 'same' });
    expect(await cli(['clients', 'update', 'same', '--name', 'nightly-report', '--scope', 'reports:read'], { env: db.env })).to.deep.equal({
      code: 0, stdout: 'Client same already had these settings: nothing changed.\n', stderr: '',
    });
  });

  it('stores SQL text in a name as the text it is', async function () {
    await db.store.clients.create({ ...registration, clientId: 'plain' });
    const name = "x'); drop table m2m_clients; --";
    expect((await cli(['clients', 'update', 'plain', '--name', name], { env: db.env })).code).to.equal(0);
    expect((await db.store.clients.get('plain'))?.name).to.equal(name);
    expect(await db.knex.schema.hasTable('m2m_clients')).to.equal(true);
  });

  describe('bad input', function () {
    beforeEach(async function () {
      await db.store.clients.create({ ...registration, clientId: 'kept', tokenLifetime: 300 });
    });

    it('refuses a missing, empty, repeated, unknown or contradicting option with exit code 2, changing nothing', async function () {
      const before = await snapshot(db.knex);
      const cases: [string[], string][] = [
        [[], 'nothing to update: give one or more of --name, --scope, --default-scope, --no-default-scope, --audience, '
          + '--default-audience, --no-default-audience, --token-lifetime, --no-token-lifetime, --jwks-file, --jwks-uri'],
        [['--name'], 'option --name needs a value (write --name=VALUE for one starting with "-")'],
        [['--token-lifetime', '-5'], 'option --token-lifetime needs a value (write --token-lifetime=VALUE for one starting with "-")'],
        [['--name', ''], 'option --name needs a value, not an empty one'],
        [['--default-audience='], 'option --default-audience needs a value, not an empty one'],
        [['--scope', ' '], '--scope needs at least one scope'],
        [['--default-scope', ' '], '--default-scope needs at least one scope (--no-default-scope for none)'],
        [['--name', 'a', '--name', 'b'], 'option --name given more than once'],
        [['--token-lifetime', '60', '--token-lifetime', '120'], 'option --token-lifetime given more than once'],
        [['--no-default-scope', '--no-default-scope'], 'option --no-default-scope given more than once'],
        [['--scopes', 'a'], 'unknown option --scopes (did you mean --scope?)'],
        [['--default-audiance', 'https://a.internal'], 'unknown option --default-audiance (did you mean --default-audience?)'],
        [['--lifetime', '60'], 'unknown option --lifetime'],
        [['--enabled'], 'unknown option --enabled'],
        [['--default-scope', 'a', '--no-default-scope'], '--default-scope and --no-default-scope cannot be combined'],
        [['--default-audience', 'https://a.internal', '--no-default-audience'], '--default-audience and --no-default-audience cannot be combined'],
        [['--token-lifetime', '60', '--no-token-lifetime'], '--token-lifetime and --no-token-lifetime cannot be combined'],
        [['--no-token-lifetime=yes'], 'option --no-token-lifetime takes no value'],
        [['--token-lifetime', '10m'], '--token-lifetime must be a whole number of seconds, got "10m"'],
        [['--token-lifetime', '0'], '--token-lifetime must be from 1 to 86400 seconds, got 0'],
        [['--token-lifetime', '86401'], '--token-lifetime must be from 1 to 86400 seconds, got 86401'],
        [['--name', 'x', 'extra'], 'unexpected argument "extra"'],
        [['--name', 'x', '--', '--name', 'y'], 'option --name after --: everything after -- is an argument, so put options before --'],
      ];
      const runs = await runAll(cases.map(([args]) => ['clients', 'update', 'kept', ...args]));
      for (const [i, [args, message]] of cases.entries()) expect(runs[i], args.join(' ')).to.deep.equal(badUsage(message, USAGE));
      expect(await cli(['clients', 'update', '--name', 'x'], { env: db.env })).to.deep.equal(badUsage('missing client ID', USAGE));
      expect(await snapshot(db.knex)).to.deep.equal(before);
    });

    it('refuses an audience that is not an absolute URI without a fragment, as the token endpoint does', async function () {
      const before = await snapshot(db.knex);
      const cases: [string, string, string][] = [
        ['--audience', 'reports.internal', '"reports.internal"'],
        ['--audience', '/reports', '"/reports"'],
        ['--audience', 'https://reports.internal/#top', '"https://reports.internal/#top"'],
        ['--audience', 'https://reports .internal', '"https://reports .internal"'],
        ['--audience', 'https://reports.internal\n', '"https://reports.internal\\n"'],
        ['--audience', 'https://\u001b[31mred.internal', '"https://\\u001b[31mred.internal"'],
        ['--audience', `https://reports.internal/${'a'.repeat(600)}`, `"https://reports.internal/${'a'.repeat(39)}..."`],
        ['--default-audience', 'reports', '"reports"'],
      ];
      const runs = await runAll(cases.map(([flag, value]) => ['clients', 'update', 'kept', flag, value]));
      for (const [i, [flag, value, shown]] of cases.entries()) {
        expect(runs[i], value).to.deep.equal(badUsage(`${flag} must be an absolute URI without a fragment, such as https://reports.internal, got ${shown}`, USAGE));
      }
      expect(await snapshot(db.knex)).to.deep.equal(before);
    });

    it("reports what the store refuses with exit code 1, naming the flag, and changes nothing", async function () {
      const before = await snapshot(db.knex);
      const cases: [string[], string][] = [
        [['--name', 'red \u001b[31m alert'], '--name must be a string of 1 to 200 characters without control characters'],
        [['--name', 'n'.repeat(10_000)], '--name must be a string of 1 to 200 characters without control characters'],
        [['--scope', 'bad"scope'], '--scope holds a malformed scope token: "bad\\"scope"'],
        [['--default-scope', 'reports:write'], 'default scope "reports:write" is not among the client\'s scopes'],
        [['--default-audience', 'https://other.internal'], "--default-audience is not among the client's audiences"],
        [Array.from({ length: 51 }, (_, i) => ['--audience', `https://a${i}.internal`]).flat(), '--audience may hold at most 50 entries'],
      ];
      const runs = await runAll(cases.map(([args]) => ['clients', 'update', 'kept', ...args]));
      for (const [i, [args, message]] of cases.entries()) expect(runs[i], args.join(' ').slice(0, 80)).to.deep.equal(failure(message));
      expect(await snapshot(db.knex)).to.deep.equal(before);
    });

    it('fails with exit code 1 for an unknown client, whatever its id holds, and changes nothing', async function () {
      const before = await snapshot(db.knex);
      const [unknown, hostile] = await runAll([
        ['clients', 'update', 'nope', '--name', 'x'],
        ['clients', 'update', "kept' or '1'='1", '--name', 'x'],
      ]);
      expect(unknown).to.deep.equal(failure('no client with id "nope"'));
      expect(hostile).to.deep.equal(failure('no client with id "kept\' or \'1\'=\'1"'));
      expect(await snapshot(db.knex)).to.deep.equal(before);
    });

    it('prints its errors as JSON on stderr with --json', async function () {
      const [usage, unknown, refused] = await runAll([
        ['clients', 'update', 'kept', '--audience', 'reports.internal', '--json'],
        ['clients', 'update', 'nope', '--name', 'x', '--json'],
        ['clients', 'update', 'kept', '--scope', 'bad"scope', '--json'],
      ]);
      const error = (code: string, message: string): string => `${JSON.stringify({ error: { code, message } }, null, 2)}\n`;
      expect(usage).to.deep.equal({
        code: 2, stdout: '',
        stderr: error('ERR_M2M_INVALID_OPTION', '--audience must be an absolute URI without a fragment, such as https://reports.internal, got "reports.internal"'),
      });
      expect(unknown).to.deep.equal({ code: 1, stdout: '', stderr: error('ERR_M2M_CLIENT_NOT_FOUND', 'no client with id "nope"') });
      expect(refused).to.deep.equal({ code: 1, stdout: '', stderr: error('ERR_M2M_INVALID_OPTION', '--scope holds a malformed scope token: "bad\\"scope"') });
    });
  });
});
