import { expect } from 'chai';
import type { Client } from '../../lib/index.js';
import { badUsage, cli, cliAll, clientJson, json, registration, SECRET, usageOf, useSqliteDatabase, type Run } from './harness.js';

describe('express-m2m CLI: clients', function () {
  this.timeout(60_000);
  const db = useSqliteDatabase({ migrated: true });

  describe('clients create', function () {
    it('prints the client id and the secret once, with a notice, and the secret authenticates', async function () {
      const run = await cli(['clients', 'create', '--name', 'nightly-report', '--scope', 'reports:read',
        '--audience', 'https://reports.internal'], { env: db.env });
      expect(run.code).to.equal(0);
      expect(run.stderr).to.equal('');
      const match = /^Created client "nightly-report"\.\n\n {2}client id: {6}(\S+)\n {2}client secret: {2}(\S+)\n\nThis secret will not be shown again: store it now\.\n$/
        .exec(run.stdout);
      expect(match, run.stdout).to.not.equal(null);
      const [, clientId = '', secret = ''] = match ?? [];
      expect(secret).to.match(SECRET);
      const result = await db.store.clients.authenticate(clientId, secret);
      expect(result.ok).to.equal(true);
      const client = await db.store.clients.get(clientId);
      expect(result).to.deep.equal({ ok: true, client });
      expect(client).to.deep.include({
        name: 'nightly-report', scopes: ['reports:read'], defaultScopes: ['reports:read'],
        audiences: ['https://reports.internal'], defaultAudience: 'https://reports.internal', tokenLifetime: null,
        grantTypes: ['client_credentials'], enabled: true, claims: {},
      });
    });

    it('prints the client, its id and its secret as one JSON document with --json', async function () {
      const output = json(await cli(['clients', 'create', '--json', '--name', 'nightly-report', '--scope', 'reports:read',
        '--audience', 'https://reports.internal'], { env: db.env })) as { clientId: string; clientSecret: string };
      const client = await db.store.clients.get(output.clientId);
      expect(client).to.not.equal(undefined);
      const [secret] = await db.store.clients.listSecrets(output.clientId);
      expect(secret).to.not.equal(undefined);
      expect(output).to.deep.equal({
        clientId: client?.clientId,
        clientSecret: output.clientSecret,
        client: clientJson(client as Client),
        secret: {
          id: secret?.id, hint: output.clientSecret.slice(0, 11), createdAt: secret?.createdAt.toISOString(),
          expiresAt: null, lastUsedAt: null,
        },
      });
      expect(output.clientSecret).to.match(SECRET);
      expect((await db.store.clients.authenticate(output.clientId, output.clientSecret)).ok).to.equal(true);
    });

    it('takes repeated and space-separated scopes, defaults, a client id, a token lifetime and claims', async function () {
      const run = await cli(['clients', 'create', '--json', '--name', 'billing', '--client-id', 'billing-svc',
        '--scope', 'invoices:read invoices:write', '--scope', 'customers:read',
        '--audience', 'https://billing.internal', '--audience', 'https://customers.internal',
        '--default-scope', 'invoices:read', '--default-audience', 'https://customers.internal',
        '--token-lifetime', '600', '--claims', '{"tenant":"acme","tier":2}'], { env: db.env });
      json(run);
      const client = await db.store.clients.get('billing-svc');
      expect(client).to.deep.include({
        clientId: 'billing-svc', name: 'billing', scopes: ['invoices:read', 'invoices:write', 'customers:read'],
        defaultScopes: ['invoices:read'], audiences: ['https://billing.internal', 'https://customers.internal'],
        defaultAudience: 'https://customers.internal', tokenLifetime: 600, enabled: true,
        claims: { tenant: 'acme', tier: 2 },
      });
    });

    it('refuses a client id that is taken with exit code 1', async function () {
      await db.store.clients.create({ ...registration, clientId: 'taken' });
      const run = await cli(['clients', 'create', '--name', 'again', '--client-id', 'taken', '--scope', 's',
        '--audience', 'https://a.internal'], { env: db.env });
      expect(run).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: a client with id "taken" already exists\n' });
      expect((await db.store.clients.list()).map((c) => c.name)).to.deep.equal(['nightly-report']);
    });

    it("reports the store's ClientExistsError with its code, not as a validation TypeError", async function () {
      await db.store.clients.create({ ...registration, clientId: 'taken' });
      const args = ['clients', 'create', '--name', 'again', '--client-id', 'taken', '--scope', 's', '--audience', 'https://a.internal'];
      const [debug, asJson] = await cliAll([[...args, '--debug'], [...args, '--json']], { env: db.env }) as [Run, Run];
      expect(debug.code).to.equal(1);
      expect(debug.stderr).to.match(/^express-m2m: ClientExistsError: a client with id "taken" already exists\n {4}at /);
      expect(asJson).to.deep.equal({ code: 1, stdout: '', stderr: `${JSON.stringify({
        error: { code: 'ERR_M2M_CLIENT_EXISTS', message: 'a client with id "taken" already exists' } }, null, 2)}\n` });
    });

    it('refuses an audience or default audience that is not an absolute URI, with exit code 2, creating nothing', async function () {
      const usage = usageOf('clients create', '--name NAME --scope S... --audience A... [options]');
      const runs = await cliAll([
        ['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'reports.internal'],
        ['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'https://a.internal', '--default-audience', 'https://a.internal#x'],
        ['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'https://a.internal', '--default-scope', ' '],
        ['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'https://a.internal', '--token-lifetime', '86401'],
      ], { env: db.env });
      expect(runs).to.deep.equal([
        badUsage('--audience must be an absolute URI without a fragment, such as https://reports.internal, got "reports.internal"', usage),
        badUsage('--default-audience must be an absolute URI without a fragment, such as https://reports.internal, got "https://a.internal#x"', usage),
        badUsage('--default-scope needs at least one scope', usage),
        badUsage('--token-lifetime must be from 1 to 86400 seconds, got 86401', usage),
      ]);
      expect(await db.store.clients.list()).to.deep.equal([]);
    });

    it("reports the store's validation errors in one line, naming the flag, with exit code 1", async function () {
      const badScope = await cli(['clients', 'create', '--name', 'x', '--scope', 'bad"scope', '--audience', 'https://a.internal'], { env: db.env });
      expect(badScope).to.deep.equal({
        code: 1, stdout: '', stderr: 'express-m2m: --scope holds a malformed scope token: "bad\\"scope"\n',
      });
      const reserved = await cli(['clients', 'create', '--name', 'x', '--scope', 's', '--audience', 'https://a.internal',
        '--claims', '{"sub":"someone-else"}'], { env: db.env });
      expect(reserved).to.deep.equal({
        code: 1, stdout: '', stderr: 'express-m2m: --claims may not set the reserved claim "sub"\n',
      });
      expect(await db.store.clients.list()).to.deep.equal([]);
    });
  });

  describe('clients list', function () {
    it('prints id, name, enabled, authentication method, keys, scopes and audiences as a table', async function () {
      await db.store.clients.create({ ...registration, clientId: 'alpha', scopes: ['a:read', 'a:write'] });
      await db.store.clients.create({ name: 'beta service', clientId: 'beta', scopes: ['b'], audiences: ['https://b.internal', 'https://c.internal'],
        tokenEndpointAuthMethod: 'client_secret_post' });
      await db.store.clients.update('beta', { enabled: false });
      const run = await cli(['clients', 'list'], { env: db.env });
      expect(run).to.deep.equal({
        code: 0,
        stderr: '',
        stdout: [
          'CLIENT ID  NAME            ENABLED  AUTH METHOD               KEYS  SCOPES          AUDIENCES',
          'alpha      nightly-report  yes      client_secret_basic|post  -     a:read a:write  https://reports.internal',
          'beta       beta service    no       client_secret_post        -     b               https://b.internal https://c.internal',
          '',
        ].join('\n'),
      });
    });

    it('prints every client with all its fields with --json', async function () {
      await db.store.clients.create({ ...registration, clientId: 'alpha' });
      await db.store.clients.create({ ...registration, clientId: 'beta', claims: { team: 'b' } });
      const clients = await db.store.clients.list();
      expect(json(await cli(['clients', 'list', '--json'], { env: db.env }))).to.deep.equal({ clients: clients.map(clientJson) });
    });

    it('says so when there is no client', async function () {
      expect(await cli(['clients', 'list'], { env: db.env })).to.deep.equal({ code: 0, stdout: 'No clients.\n', stderr: '' });
      expect(json(await cli(['clients', 'list', '--json'], { env: db.env }))).to.deep.equal({ clients: [] });
    });
  });

  describe('clients show', function () {
    it("prints every field and its secrets' metadata as JSON, and never a secret or its hash", async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'shown', tokenLifetime: 120, claims: { team: 'x' } });
      const rotated = await db.store.clients.rotateSecret('shown', { gracePeriod: 3600 });
      const client = await db.store.clients.get('shown');
      const secrets = await db.store.clients.listSecrets('shown');
      const run = await cli(['clients', 'show', 'shown', '--json'], { env: db.env });
      expect(json(run)).to.deep.equal({
        client: clientJson(client as Client),
        secrets: secrets.map((s) => ({
          id: s.id, hint: s.hint, createdAt: s.createdAt.toISOString(), expiresAt: s.expiresAt?.toISOString() ?? null,
          lastUsedAt: null,
        })),
      });
      const hashes = await db.knex('m2m_client_secrets').pluck('secret_hash') as string[];
      expect(hashes).to.have.length(2);
      for (const text of [run.stdout, (await cli(['clients', 'show', 'shown'], { env: db.env })).stdout]) {
        for (const hidden of [...hashes, created.clientSecret, rotated.clientSecret]) expect(text).to.not.include(hidden);
      }
    });

    it('prints the client and a table of its secrets as text', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'shown' });
      const client = await db.store.clients.update('shown', { enabled: false });
      const run = await cli(['clients', 'show', 'shown'], { env: db.env });
      const seconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
      expect(run.code).to.equal(0);
      expect(run.stderr).to.equal('');
      const lines = run.stdout.split('\n');
      expect(lines.slice(0, 15)).to.deep.equal([
        'Client shown',
        '  name:              nightly-report',
        '  enabled:           no',
        '  scopes:            reports:read',
        '  default scopes:    reports:read',
        '  audiences:         https://reports.internal',
        '  default audience:  https://reports.internal',
        "  token lifetime:    issuer's default",
        '  grant types:       client_credentials',
        '  auth method:       client_secret_basic or client_secret_post',
        '  claims:            {}',
        `  created:           ${seconds(client.createdAt)}`,
        `  updated:           ${seconds(client.updatedAt)}`,
        '',
        'Secrets (1):',
      ]);
      expect(lines.slice(15)).to.deep.equal([
        `  ${'ID'.padEnd(created.secret.id.length)}  HINT            CREATED               EXPIRES  LAST USED`,
        `  ${created.secret.id}  ${created.secret.hint}...  ${seconds(created.secret.createdAt)}  never    never`,
        '',
      ]);
    });
  });

  describe('clients rotate-secret', function () {
    it('prints a new secret once; the old and the new one both authenticate during the grace period', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'rotating' });
      const run = await cli(['clients', 'rotate-secret', 'rotating'], { env: db.env });
      expect(run.code).to.equal(0);
      expect(run.stderr).to.equal('');
      const match = /^New secret for client rotating:\n\n {2}(\S+)\n\nThis secret will not be shown again: store it now\.\nOlder secrets keep working until (\S+)\.\n$/
        .exec(run.stdout);
      expect(match, run.stdout).to.not.equal(null);
      const [, secret = '', until = ''] = match ?? [];
      expect(secret).to.match(SECRET);
      expect(secret).to.not.equal(created.clientSecret);
      expect((await db.store.clients.authenticate('rotating', created.clientSecret)).ok).to.equal(true);
      expect((await db.store.clients.authenticate('rotating', secret)).ok).to.equal(true);
      // The default grace period is one day.
      const [newest, oldest] = await db.store.clients.listSecrets('rotating');
      expect(oldest?.expiresAt?.getTime()).to.equal((newest?.createdAt.getTime() ?? 0) + 86_400_000);
      expect(until).to.equal(oldest?.expiresAt?.toISOString().replace(/\.\d{3}Z$/, 'Z'));
    });

    it('prints the new secret and when the older ones expire as JSON with --json --grace', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'rotating' });
      const output = json(await cli(['clients', 'rotate-secret', 'rotating', '--grace', '60', '--json'], { env: db.env })) as
        { clientSecret: string; olderSecretsExpireAt: string };
      const [newest, oldest] = await db.store.clients.listSecrets('rotating');
      expect(output).to.deep.equal({
        clientId: 'rotating',
        clientSecret: output.clientSecret,
        secret: { id: newest?.id, hint: newest?.hint, createdAt: newest?.createdAt.toISOString(), expiresAt: null, lastUsedAt: null },
        olderSecretsExpireAt: new Date((newest?.createdAt.getTime() ?? 0) + 60_000).toISOString(),
      });
      expect(oldest?.expiresAt?.toISOString()).to.equal(output.olderSecretsExpireAt);
      expect((await db.store.clients.authenticate('rotating', output.clientSecret)).ok).to.equal(true);
      expect((await db.store.clients.authenticate('rotating', created.clientSecret)).ok).to.equal(true);
    });

    it('ends the older secrets at once with --grace 0', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'rotating' });
      const output = json(await cli(['clients', 'rotate-secret', 'rotating', '--grace', '0', '--json'], { env: db.env })) as
        { clientSecret: string };
      expect(await db.store.clients.authenticate('rotating', created.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
      expect((await db.store.clients.authenticate('rotating', output.clientSecret)).ok).to.equal(true);
    });
  });

  describe('clients disable and enable', function () {
    it('disable makes authentication fail with client_disabled and revokes the tokens the client holds', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'switch' });
      const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
      const run = await cli(['clients', 'disable', 'switch'], { env: db.env });
      expect(run).to.deep.equal({ code: 0, stdout: 'Client switch disabled.\n', stderr: '' });
      expect(await db.store.clients.authenticate('switch', created.clientSecret)).to.deep.equal({ ok: false, reason: 'client_disabled' });
      expect(await db.store.revocations.isRevoked({ jti: 'any', clientId: 'switch', issuedAt })).to.equal(true);
    });

    it('enable lets a disabled client authenticate again and prints it with --json', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'switch' });
      await db.store.clients.update('switch', { enabled: false });
      const output = json(await cli(['clients', 'enable', 'switch', '--json'], { env: db.env }));
      expect(output).to.deep.equal({ client: clientJson(await db.store.clients.get('switch') as Client) });
      expect(output).to.have.nested.property('client.enabled', true);
      expect((await db.store.clients.authenticate('switch', created.clientSecret)).ok).to.equal(true);
    });
  });

  describe('clients delete', function () {
    it('refuses without --yes when not run from a terminal, with exit code 2, and keeps the client', async function () {
      await db.store.clients.create({ ...registration, clientId: 'doomed' });
      const run = await cli(['clients', 'delete', 'doomed'], { env: db.env });
      expect(run).to.deep.equal({
        code: 2,
        stdout: '',
        stderr: 'express-m2m: refusing to delete client "doomed" without --yes when not run from a terminal\n\n'
          + 'Usage: express-m2m clients delete ID [--yes] [global options]\n'
          + "Run 'express-m2m clients delete --help' for details.\n",
      });
      expect(await db.store.clients.get('doomed')).to.not.equal(undefined);
    });

    it('deletes the client and its secrets with --yes', async function () {
      const created = await db.store.clients.create({ ...registration, clientId: 'doomed' });
      await db.store.clients.create({ ...registration, clientId: 'kept' });
      const run = await cli(['clients', 'delete', 'doomed', '--yes'], { env: db.env });
      expect(run).to.deep.equal({ code: 0, stdout: 'Client doomed deleted.\n', stderr: '' });
      expect(await db.store.clients.authenticate('doomed', created.clientSecret)).to.deep.equal({ ok: false, reason: 'unknown_client' });
      expect(await db.knex('m2m_client_secrets').where({ client_id: 'doomed' }).count({ n: '*' })).to.deep.equal([{ n: 0 }]);
      expect((await db.store.clients.list()).map((c) => c.clientId)).to.deep.equal(['kept']);
      const { entries } = await db.store.revocations.list();
      expect(entries.map((e) => [e.type, e.clientId])).to.deep.equal([['client', 'doomed']]);
    });

    it('prints the deleted id as JSON with --json', async function () {
      await db.store.clients.create({ ...registration, clientId: 'doomed' });
      expect(json(await cli(['clients', 'delete', 'doomed', '--yes', '--json'], { env: db.env })))
        .to.deep.equal({ clientId: 'doomed', deleted: true });
    });
  });
});
