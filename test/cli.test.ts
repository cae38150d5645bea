import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createKnexStore, KeyDecryptionError, type Client, type KnexStore } from '../lib/index.js';
import { PG_URL } from './support/db.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'lib', 'cli', 'main.ts');
// Resolved here so the CLI also runs from a directory without node_modules (the knexfile tests).
const TSX = import.meta.resolve('tsx');
const MIGRATIONS = ['20261122000000_initial', '20261206000000_key_retention', '20261210000000_audit_log', '20261212000000_client_changes'];
const SECRET = /^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/;
const STACK_FRAME = /^\s+at /m;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node --import tsx lib/cli/main.ts ...args` as a child process with only PATH and `env` in its
 * environment (so a DATABASE_URL of the machine running the tests never leaks in).
 */
function cli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath, ['--import', TSX, CLI, ...args],
      { cwd: options.cwd ?? ROOT, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

function json(run: Run): unknown {
  expect(run.stderr).to.equal('');
  expect(run.code).to.equal(0);
  return JSON.parse(run.stdout);
}

/** What the CLI prints for a client with --json. */
function clientJson(client: Client): Record<string, unknown> {
  return {
    clientId: client.clientId,
    name: client.name,
    enabled: client.enabled,
    scopes: client.scopes,
    defaultScopes: client.defaultScopes,
    audiences: client.audiences,
    defaultAudience: client.defaultAudience,
    tokenLifetime: client.tokenLifetime,
    grantTypes: client.grantTypes,
    claims: client.claims,
    createdAt: client.createdAt.toISOString(),
    updatedAt: client.updatedAt.toISOString(),
  };
}

const registration = { name: 'nightly-report', scopes: ['reports:read'], audiences: ['https://reports.internal'] };

describe('express-m2m CLI (lib/cli/main.ts)', function () {
  this.timeout(60_000);

  let dir: string;
  let file: string;
  let env: Record<string, string>;
  let knex: Knex;
  let store: KnexStore;

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'm2m-cli-'));
    file = join(dir, 'm2m.sqlite');
    env = { DATABASE_URL: `sqlite:${file}` };
    // Knex opens the file on the first query only, so tests that need no file never create one.
    knex = knexFactory({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true });
    // The CLI changes rows from another process: read them fresh every time.
    store = createKnexStore(knex, { clientCacheTtl: 0 });
  });

  afterEach(async function () {
    await store.clients.flushUsage();
    await knex.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('migrate', function () {
    it('creates the tables in a new SQLite file and names the applied migration', async function () {
      const run = await cli(['migrate'], { env });
      expect(run).to.deep.equal({ code: 0, stdout: `Applied ${MIGRATIONS.length} migrations:\n${MIGRATIONS.map((m) => `  ${m}\n`).join('')}`, stderr: '' });
      for (const table of ['m2m_clients', 'm2m_client_secrets', 'm2m_signing_keys']) {
        expect(await knex.schema.hasTable(table), table).to.equal(true);
      }
    });

    it('applies nothing when run again', async function () {
      expect((await cli(['migrate'], { env })).code).to.equal(0);
      const second = await cli(['migrate'], { env });
      expect(second).to.deep.equal({ code: 0, stdout: 'The database is up to date: no migration to apply.\n', stderr: '' });
      expect(json(await cli(['migrate', '--json'], { env }))).to.deep.equal({ applied: [] });
      expect(await store.clients.list()).to.deep.equal([]);
    });

    it('lists the applied migrations as JSON with --json', async function () {
      expect(json(await cli(['migrate', '--json'], { env }))).to.deep.equal({ applied: MIGRATIONS });
    });

    it('accepts the database as --database, with sqlite:, file: or a plain .db path', async function () {
      for (const url of [`sqlite:${join(dir, 'a.sqlite')}`, `file:${join(dir, 'b.sqlite3')}`, join(dir, 'c.db')]) {
        expect(json(await cli(['migrate', '--json', '--database', url])), url).to.deep.equal({ applied: MIGRATIONS });
      }
      for (const name of ['a.sqlite', 'b.sqlite3', 'c.db']) expect(existsSync(join(dir, name)), name).to.equal(true);
    });

    it('puts the tables under another prefix with --table-prefix', async function () {
      expect(json(await cli(['migrate', '--json', '--table-prefix', 'auth_'], { env }))).to.deep.equal({ applied: MIGRATIONS });
      expect(await knex.schema.hasTable('auth_clients')).to.equal(true);
      expect(await knex.schema.hasTable('m2m_clients')).to.equal(false);
    });
  });

  describe('with the tables migrated', function () {
    beforeEach(async function () {
      await store.migrate();
    });

    describe('clients create', function () {
      it('prints the client id and the secret once, with a notice, and the secret authenticates', async function () {
        const run = await cli(['clients', 'create', '--name', 'nightly-report', '--scope', 'reports:read',
          '--audience', 'https://reports.internal'], { env });
        expect(run.code).to.equal(0);
        expect(run.stderr).to.equal('');
        const match = /^Created client "nightly-report"\.\n\n {2}client id: {6}(\S+)\n {2}client secret: {2}(\S+)\n\nThis secret will not be shown again: store it now\.\n$/
          .exec(run.stdout);
        expect(match, run.stdout).to.not.equal(null);
        const [, clientId = '', secret = ''] = match ?? [];
        expect(secret).to.match(SECRET);
        const result = await store.clients.authenticate(clientId, secret);
        expect(result.ok).to.equal(true);
        const client = await store.clients.get(clientId);
        expect(result).to.deep.equal({ ok: true, client });
        expect(client).to.deep.include({
          name: 'nightly-report', scopes: ['reports:read'], defaultScopes: ['reports:read'],
          audiences: ['https://reports.internal'], defaultAudience: 'https://reports.internal', tokenLifetime: null,
          grantTypes: ['client_credentials'], enabled: true, claims: {},
        });
      });

      it('prints the client, its id and its secret as one JSON document with --json', async function () {
        const output = json(await cli(['clients', 'create', '--json', '--name', 'nightly-report', '--scope', 'reports:read',
          '--audience', 'https://reports.internal'], { env })) as { clientId: string; clientSecret: string };
        const client = await store.clients.get(output.clientId);
        expect(client).to.not.equal(undefined);
        const [secret] = await store.clients.listSecrets(output.clientId);
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
        expect((await store.clients.authenticate(output.clientId, output.clientSecret)).ok).to.equal(true);
      });

      it('takes repeated and space-separated scopes, defaults, a client id, a token lifetime and claims', async function () {
        const run = await cli(['clients', 'create', '--json', '--name', 'billing', '--client-id', 'billing-svc',
          '--scope', 'invoices:read invoices:write', '--scope', 'customers:read',
          '--audience', 'https://billing.internal', '--audience', 'https://customers.internal',
          '--default-scope', 'invoices:read', '--default-audience', 'https://customers.internal',
          '--token-lifetime', '600', '--claims', '{"tenant":"acme","tier":2}'], { env });
        json(run);
        const client = await store.clients.get('billing-svc');
        expect(client).to.deep.include({
          clientId: 'billing-svc', name: 'billing', scopes: ['invoices:read', 'invoices:write', 'customers:read'],
          defaultScopes: ['invoices:read'], audiences: ['https://billing.internal', 'https://customers.internal'],
          defaultAudience: 'https://customers.internal', tokenLifetime: 600, enabled: true,
          claims: { tenant: 'acme', tier: 2 },
        });
      });

      it('refuses a client id that is taken with exit code 1', async function () {
        await store.clients.create({ ...registration, clientId: 'taken' });
        const run = await cli(['clients', 'create', '--name', 'again', '--client-id', 'taken', '--scope', 's',
          '--audience', 'https://a.internal'], { env });
        expect(run).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: a client with id "taken" already exists\n' });
        expect((await store.clients.list()).map((c) => c.name)).to.deep.equal(['nightly-report']);
      });

      it("recognises the store's ClientExistsError by its class, not as a validation TypeError", async function () {
        await store.clients.create({ ...registration, clientId: 'taken' });
        const run = await cli(['clients', 'create', '--name', 'again', '--client-id', 'taken', '--scope', 's',
          '--audience', 'https://a.internal', '--debug'], { env });
        expect(run.code).to.equal(1);
        expect(run.stderr).to.match(/^express-m2m: CliError: a client with id "taken" already exists\n/);
        expect(run.stderr).to.include('\nCaused by: ClientExistsError: a client with id "taken" already exists\n');
      });

      it("reports the store's validation errors in one line, naming the flag, with exit code 1", async function () {
        const badScope = await cli(['clients', 'create', '--name', 'x', '--scope', 'bad"scope', '--audience', 'https://a.internal'], { env });
        expect(badScope).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: --scope holds a malformed scope token: "bad\\"scope"\n',
        });
        const reserved = await cli(['clients', 'create', '--name', 'x', '--scope', 's', '--audience', 'https://a.internal',
          '--claims', '{"sub":"someone-else"}'], { env });
        expect(reserved).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: --claims may not set the reserved claim "sub"\n',
        });
        expect(await store.clients.list()).to.deep.equal([]);
      });
    });

    describe('clients list', function () {
      it('prints id, name, enabled, scopes and audiences as a table', async function () {
        await store.clients.create({ ...registration, clientId: 'alpha', scopes: ['a:read', 'a:write'] });
        await store.clients.create({ name: 'beta service', clientId: 'beta', scopes: ['b'], audiences: ['https://b.internal', 'https://c.internal'] });
        await store.clients.update('beta', { enabled: false });
        const run = await cli(['clients', 'list'], { env });
        expect(run).to.deep.equal({
          code: 0,
          stderr: '',
          stdout: [
            'CLIENT ID  NAME            ENABLED  SCOPES          AUDIENCES',
            'alpha      nightly-report  yes      a:read a:write  https://reports.internal',
            'beta       beta service    no       b               https://b.internal https://c.internal',
            '',
          ].join('\n'),
        });
      });

      it('prints every client with all its fields with --json', async function () {
        await store.clients.create({ ...registration, clientId: 'alpha' });
        await store.clients.create({ ...registration, clientId: 'beta', claims: { team: 'b' } });
        const clients = await store.clients.list();
        expect(json(await cli(['clients', 'list', '--json'], { env }))).to.deep.equal({ clients: clients.map(clientJson) });
      });

      it('says so when there is no client', async function () {
        expect(await cli(['clients', 'list'], { env })).to.deep.equal({ code: 0, stdout: 'No clients.\n', stderr: '' });
        expect(json(await cli(['clients', 'list', '--json'], { env }))).to.deep.equal({ clients: [] });
      });
    });

    describe('clients show', function () {
      it("prints every field and its secrets' metadata as JSON, and never a secret or its hash", async function () {
        const created = await store.clients.create({ ...registration, clientId: 'shown', tokenLifetime: 120, claims: { team: 'x' } });
        const rotated = await store.clients.rotateSecret('shown', { gracePeriod: 3600 });
        const client = await store.clients.get('shown');
        const secrets = await store.clients.listSecrets('shown');
        const run = await cli(['clients', 'show', 'shown', '--json'], { env });
        expect(json(run)).to.deep.equal({
          client: clientJson(client as Client),
          secrets: secrets.map((s) => ({
            id: s.id, hint: s.hint, createdAt: s.createdAt.toISOString(), expiresAt: s.expiresAt?.toISOString() ?? null,
            lastUsedAt: null,
          })),
        });
        const hashes = await knex('m2m_client_secrets').pluck('secret_hash') as string[];
        expect(hashes).to.have.length(2);
        for (const text of [run.stdout, (await cli(['clients', 'show', 'shown'], { env })).stdout]) {
          for (const hidden of [...hashes, created.clientSecret, rotated.clientSecret]) expect(text).to.not.include(hidden);
        }
      });

      it('prints the client and a table of its secrets as text', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'shown' });
        const client = await store.clients.update('shown', { enabled: false });
        const run = await cli(['clients', 'show', 'shown'], { env });
        const seconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
        expect(run.code).to.equal(0);
        expect(run.stderr).to.equal('');
        const lines = run.stdout.split('\n');
        expect(lines.slice(0, 14)).to.deep.equal([
          'Client shown',
          '  name:              nightly-report',
          '  enabled:           no',
          '  scopes:            reports:read',
          '  default scopes:    reports:read',
          '  audiences:         https://reports.internal',
          '  default audience:  https://reports.internal',
          "  token lifetime:    issuer's default",
          '  grant types:       client_credentials',
          '  claims:            {}',
          `  created:           ${seconds(client.createdAt)}`,
          `  updated:           ${seconds(client.updatedAt)}`,
          '',
          'Secrets (1):',
        ]);
        expect(lines.slice(14)).to.deep.equal([
          `  ${'ID'.padEnd(created.secret.id.length)}  HINT            CREATED               EXPIRES  LAST USED`,
          `  ${created.secret.id}  ${created.secret.hint}...  ${seconds(created.secret.createdAt)}  never    never`,
          '',
        ]);
      });
    });

    describe('clients rotate-secret', function () {
      it('prints a new secret once; the old and the new one both authenticate during the grace period', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'rotating' });
        const run = await cli(['clients', 'rotate-secret', 'rotating'], { env });
        expect(run.code).to.equal(0);
        expect(run.stderr).to.equal('');
        const match = /^New secret for client rotating:\n\n {2}(\S+)\n\nThis secret will not be shown again: store it now\.\nOlder secrets keep working until (\S+)\.\n$/
          .exec(run.stdout);
        expect(match, run.stdout).to.not.equal(null);
        const [, secret = '', until = ''] = match ?? [];
        expect(secret).to.match(SECRET);
        expect(secret).to.not.equal(created.clientSecret);
        expect((await store.clients.authenticate('rotating', created.clientSecret)).ok).to.equal(true);
        expect((await store.clients.authenticate('rotating', secret)).ok).to.equal(true);
        // The default grace period is one day.
        const [newest, oldest] = await store.clients.listSecrets('rotating');
        expect(oldest?.expiresAt?.getTime()).to.equal((newest?.createdAt.getTime() ?? 0) + 86_400_000);
        expect(until).to.equal(oldest?.expiresAt?.toISOString().replace(/\.\d{3}Z$/, 'Z'));
      });

      it('prints the new secret and when the older ones expire as JSON with --json --grace', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'rotating' });
        const output = json(await cli(['clients', 'rotate-secret', 'rotating', '--grace', '60', '--json'], { env })) as
          { clientSecret: string; olderSecretsExpireAt: string };
        const [newest, oldest] = await store.clients.listSecrets('rotating');
        expect(output).to.deep.equal({
          clientId: 'rotating',
          clientSecret: output.clientSecret,
          secret: { id: newest?.id, hint: newest?.hint, createdAt: newest?.createdAt.toISOString(), expiresAt: null, lastUsedAt: null },
          olderSecretsExpireAt: new Date((newest?.createdAt.getTime() ?? 0) + 60_000).toISOString(),
        });
        expect(oldest?.expiresAt?.toISOString()).to.equal(output.olderSecretsExpireAt);
        expect((await store.clients.authenticate('rotating', output.clientSecret)).ok).to.equal(true);
        expect((await store.clients.authenticate('rotating', created.clientSecret)).ok).to.equal(true);
      });

      it('ends the older secrets at once with --grace 0', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'rotating' });
        const output = json(await cli(['clients', 'rotate-secret', 'rotating', '--grace', '0', '--json'], { env })) as
          { clientSecret: string };
        expect(await store.clients.authenticate('rotating', created.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
        expect((await store.clients.authenticate('rotating', output.clientSecret)).ok).to.equal(true);
      });
    });

    describe('clients disable and enable', function () {
      it('disable makes authentication fail with client_disabled', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'switch' });
        const run = await cli(['clients', 'disable', 'switch'], { env });
        expect(run).to.deep.equal({ code: 0, stdout: 'Client switch disabled.\n', stderr: '' });
        expect(await store.clients.authenticate('switch', created.clientSecret)).to.deep.equal({ ok: false, reason: 'client_disabled' });
      });

      it('enable lets a disabled client authenticate again and prints it with --json', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'switch' });
        await store.clients.update('switch', { enabled: false });
        const output = json(await cli(['clients', 'enable', 'switch', '--json'], { env }));
        expect(output).to.deep.equal({ client: clientJson(await store.clients.get('switch') as Client) });
        expect(output).to.have.nested.property('client.enabled', true);
        expect((await store.clients.authenticate('switch', created.clientSecret)).ok).to.equal(true);
      });
    });

    describe('clients delete', function () {
      it('refuses without --yes when not run from a terminal, with exit code 2, and keeps the client', async function () {
        await store.clients.create({ ...registration, clientId: 'doomed' });
        const run = await cli(['clients', 'delete', 'doomed'], { env });
        expect(run).to.deep.equal({
          code: 2,
          stdout: '',
          stderr: 'express-m2m: refusing to delete client "doomed" without --yes when not run from a terminal\n\n'
            + 'Usage: express-m2m clients delete ID [--yes] [global options]\n'
            + "Run 'express-m2m clients delete --help' for details.\n",
        });
        expect(await store.clients.get('doomed')).to.not.equal(undefined);
      });

      it('deletes the client and its secrets with --yes', async function () {
        const created = await store.clients.create({ ...registration, clientId: 'doomed' });
        await store.clients.create({ ...registration, clientId: 'kept' });
        const run = await cli(['clients', 'delete', 'doomed', '--yes'], { env });
        expect(run).to.deep.equal({ code: 0, stdout: 'Client doomed deleted.\n', stderr: '' });
        expect(await store.clients.authenticate('doomed', created.clientSecret)).to.deep.equal({ ok: false, reason: 'unknown_client' });
        expect(await knex('m2m_client_secrets').where({ client_id: 'doomed' }).count({ n: '*' })).to.deep.equal([{ n: 0 }]);
        expect((await store.clients.list()).map((c) => c.clientId)).to.deep.equal(['kept']);
      });

      it('prints the deleted id as JSON with --json', async function () {
        await store.clients.create({ ...registration, clientId: 'doomed' });
        expect(json(await cli(['clients', 'delete', 'doomed', '--yes', '--json'], { env })))
          .to.deep.equal({ clientId: 'doomed', deleted: true });
      });
    });

    describe('keys rotate', function () {
      it('adds a pending ES256 key that signs after 600 seconds, and warns when no key signs yet', async function () {
        const run = await cli(['keys', 'rotate', '--json'], { env });
        expect(run.code).to.equal(0);
        const [key, other] = await store.keys.list();
        expect(other).to.equal(undefined);
        expect(JSON.parse(run.stdout)).to.deep.equal({
          key: {
            kid: key?.kid, alg: 'ES256', state: 'pending', createdAt: key?.createdAt.toISOString(),
            activatesAt: new Date((key?.createdAt.getTime() ?? 0) + 600_000).toISOString(),
          },
        });
        expect(run.stderr).to.equal(`Warning: no key signs tokens until ${key?.activatesAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}; `
          + 'use --activate-after 0 for the first key.\n');
      });

      it("stores the newest key's retention with the new key, or --max-token-lifetime plus 60 s", async function () {
        await store.keys.ensure('ES256', { retention: 86_460 });
        const retentions = async (): Promise<unknown> =>
          (await store.keys.list()).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map((k) => k.retention);
        expect((await cli(['keys', 'rotate', '--activate-after', '30'], { env })).code).to.equal(0);
        expect(await retentions()).to.deep.equal([86_460, 86_460]);
        expect((await cli(['keys', 'rotate', '--activate-after', '60', '--max-token-lifetime', '300'], { env })).code).to.equal(0);
        expect(await retentions()).to.deep.equal([86_460, 86_460, 360]);
      });

      it('stores the new key encrypted when M2M_KEY_ENCRYPTION_KEY is set, and refuses a short one', async function () {
        const kek = 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=';
        const run = await cli(['keys', 'rotate', '--activate-after', '0'], { env: { ...env, M2M_KEY_ENCRYPTION_KEY: kek } });
        const [key] = await store.keys.list();
        expect(run).to.deep.equal({ code: 0, stdout: `Added ES256 key ${key?.kid}: active now.\n`, stderr: '' });
        const [stored] = await knex('m2m_signing_keys').pluck('private_key') as string[];
        expect(stored).to.match(/^m2m-enc:v1:/);
        // This store has no secret: the key is listed, its private part is not readable.
        expect(() => key?.privateKeyPem).to.throw(KeyDecryptionError, /is stored encrypted/).with.property('code', 'ERR_M2M_KEY_DECRYPTION');
        const short = await cli(['keys', 'list'], { env: { ...env, M2M_KEY_ENCRYPTION_KEY: 'too-short' } });
        expect(short).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: M2M_KEY_ENCRYPTION_KEY must be at least 32 characters (for example: openssl rand -base64 32)\n' });
      });

      it('refuses a plain-text key beside encrypted ones without M2M_KEY_ENCRYPTION_KEY, unless --allow-plaintext; keys seal encrypts it', async function () {
        const kek = 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=';
        expect((await cli(['keys', 'rotate', '--activate-after', '0'], { env: { ...env, M2M_KEY_ENCRYPTION_KEY: kek } })).code).to.equal(0);
        const refused = await cli(['keys', 'rotate'], { env });
        expect(refused).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: the other signing keys are stored encrypted: give this store the '
          + 'keyEncryptionKey (CLI: M2M_KEY_ENCRYPTION_KEY), or allow a plain-text key on purpose (allowPlaintext, CLI: --allow-plaintext)\n' });
        expect(await knex('m2m_signing_keys').count({ n: '*' }).first()).to.deep.equal({ n: 1 });
        const allowed = await cli(['keys', 'rotate', '--allow-plaintext', '--json'], { env });
        expect(allowed.code).to.equal(0);
        const stored = async () => (await knex('m2m_signing_keys').pluck('private_key') as string[]).map((k) => k.startsWith('m2m-enc:v1:'));
        expect((await stored()).sort()).to.deep.equal([false, true]);
        expect(await cli(['keys', 'seal'], { env })).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: keys seal needs M2M_KEY_ENCRYPTION_KEY (at least 32 characters, for example: openssl rand -base64 32)\n' });
        expect(await cli(['keys', 'seal'], { env: { ...env, M2M_KEY_ENCRYPTION_KEY: kek } })).to.deep.equal({
          code: 0, stdout: 'Sealed 1 private key: stored encrypted from now on. Give the issuer the same keyEncryptionKey.\n', stderr: '' });
        expect(await stored()).to.deep.equal([true, true]);
        expect(await cli(['keys', 'seal', '--json'], { env: { ...env, M2M_KEY_ENCRYPTION_KEY: kek } })).to.deep.equal({
          code: 0, stdout: '{\n  "sealed": 0\n}\n', stderr: '' });
      });

      it('adds a key of the chosen algorithm that signs at once with --alg RS256 --activate-after 0', async function () {
        const run = await cli(['keys', 'rotate', '--alg', 'RS256', '--activate-after', '0'], { env });
        const [key] = await store.keys.list();
        expect(key?.alg).to.equal('RS256');
        expect(run).to.deep.equal({ code: 0, stdout: `Added RS256 key ${key?.kid}: active now.\n`, stderr: '' });
      });

      it('adds a pending key beside the active one without a warning', async function () {
        await store.keys.ensure('ES256');
        const run = await cli(['keys', 'rotate', '--activate-after', '30'], { env });
        const added = (await store.keys.list()).find((k) => k.activatesAt.getTime() > k.createdAt.getTime());
        expect(run).to.deep.equal({
          code: 0,
          stdout: `Added ES256 key ${added?.kid}: published now, signs tokens from ${added?.activatesAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}.\n`,
          stderr: '',
        });
      });
    });

    describe('keys revoke', function () {
      it('withdraws a key so that it is no longer listed, and warns when no active key is left', async function () {
        await store.keys.ensure('ES256');
        const [key] = await store.keys.list();
        // A kid is base64url: one in 64 starts with "-", which only an argument after -- may.
        const run = await cli(['keys', 'revoke', '--', key?.kid ?? ''], { env });
        expect(run).to.deep.equal({
          code: 0,
          stdout: `Revoked key ${key?.kid}. Tokens it signed no longer verify once verifiers refresh their JWKS.\n`,
          stderr: 'Warning: no active key is left; the issuer creates a new one on its next token request.\n',
        });
        expect(await store.keys.list()).to.deep.equal([]);
      });

      it('keeps the other keys and prints JSON with --json', async function () {
        const first = await store.keys.rotate({ activateAfter: 0 });
        const second = await store.keys.rotate({ activateAfter: 0 });
        const run = await cli(['keys', 'revoke', '--json', '--', first.kid], { env });
        expect([run.code, json(run), run.stderr]).to.deep.equal([0, { revoked: first.kid }, '']);
        expect((await store.keys.list()).map((k) => k.kid)).to.deep.equal([second.kid]);
      });

      it('takes a kid that starts with "-" after --, and says so when it is given before', async function () {
        expect(await cli(['keys', 'revoke', '--', '-no-such-kid'], { env })).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: no signing key with kid "-no-such-kid"\n' });
        const run = await cli(['keys', 'revoke', '-no-such-kid'], { env });
        expect([run.code, run.stdout, run.stderr.split('\n')[0]]).to.deep.equal([2, '',
          'express-m2m: unknown option -n (an argument that starts with "-", such as a kid, goes after --)']);
      });

      it('fails with exit code 1 for an unknown kid', async function () {
        expect(await cli(['keys', 'revoke', 'no-such-kid'], { env })).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: no signing key with kid "no-such-kid"\n' });
      });
    });

    describe('keys list', function () {
      it('shows each key as pending, active, retired-but-published or expired', async function () {
        const day = 86_400_000;
        // Keys made through stores whose clock is in the past: A was superseded by B two days ago
        // (expired), B by C just now (still published for the longest token lifetime).
        const threeDaysAgo = createKnexStore(knex, { clock: () => Date.now() - 3 * day });
        const twoDaysAgo = createKnexStore(knex, { clock: () => Date.now() - 2 * day });
        const a = await threeDaysAgo.keys.rotate({ activateAfter: 0 });
        const b = await twoDaysAgo.keys.rotate({ activateAfter: 0, alg: 'RS256' });
        const c = await store.keys.rotate({ activateAfter: 0 });
        const d = await store.keys.rotate({ activateAfter: 600, alg: 'PS256' });
        const output = json(await cli(['keys', 'list', '--json'], { env }));
        const entry = (key: typeof a, state: string): Record<string, unknown> => ({
          kid: key.kid, alg: key.alg, state, createdAt: key.createdAt.toISOString(), activatesAt: key.activatesAt.toISOString(),
        });
        expect(output).to.deep.equal({
          keys: [entry(a, 'expired'), entry(b, 'retired-but-published'), entry(c, 'active'), entry(d, 'pending')],
        });

        const text = await cli(['keys', 'list'], { env });
        expect(text.code).to.equal(0);
        const lines = text.stdout.trimEnd().split('\n');
        expect(lines[0]).to.match(/^KID +ALG +STATE +CREATED +ACTIVATES$/);
        expect(lines.slice(1).map((line) => line.split(/ +/).slice(0, 3))).to.deep.equal([
          [a.kid, 'ES256', 'expired'], [b.kid, 'RS256', 'retired-but-published'], [c.kid, 'ES256', 'active'], [d.kid, 'PS256', 'pending'],
        ]);
      });

      /** Two keys: `old`, superseded `retiredFor` ms ago by `current`, each stored with `retention`. */
      async function supersededKeys(retiredFor: number, retention: number | null): Promise<void> {
        const created = Date.now() - retiredFor - 3_600_000;
        const old = await createKnexStore(knex, { clock: () => created }).keys.rotate({ activateAfter: 0 });
        const current = await store.keys.rotate({ activateAfter: 0 });
        await knex('m2m_signing_keys').where({ kid: current.kid }).update({ activates_at: Date.now() - retiredFor });
        await knex('m2m_signing_keys').whereIn('kid', [old.kid, current.kid]).update({ retention });
      }

      const states = async (args: string[] = []): Promise<unknown> =>
        ((json(await cli(['keys', 'list', '--json', ...args], { env })) as { keys: { state: string }[] }).keys).map((k) => k.state);

      it('keeps a retired key published for the retention stored with it', async function () {
        // An issuer with maxTokenLifetime 300 stored 360 s; another with 86400 stored 86460 s.
        await supersededKeys(3_600_000, 360);
        expect(await states()).to.deep.equal(['expired', 'active']);
        await knex('m2m_signing_keys').update({ retention: 86_460 });
        expect(await states()).to.deep.equal(['retired-but-published', 'active']);
      });

      it('shows the states of an issuer that has recorded its retention with store.keys.ensure()', async function () {
        await supersededKeys(20 * 60_000, null);
        await store.keys.ensure('ES256', { retention: 10 * 60 + 60 });
        const rows = await knex('m2m_signing_keys').orderBy('activates_at').pluck('retention') as (number | null)[];
        // The current key now has 660 s, the retired one keeps what it had (none: 3660 s).
        expect(rows).to.deep.equal([null, 660]);
        expect(await states()).to.deep.equal(['retired-but-published', 'active']);
        await knex('m2m_signing_keys').update({ retention: 660 });
        expect(await states()).to.deep.equal(['expired', 'active']);
      });

      it('reads a key stored before retention was recorded as published for 3660 s', async function () {
        await supersededKeys(3_600_000, null);
        expect(await states()).to.deep.equal(['retired-but-published', 'active']);
        await knex('m2m_signing_keys').delete();
        await supersededKeys(3_661_000, null);
        expect(await states()).to.deep.equal(['expired', 'active']);
      });

      it("takes --max-token-lifetime as the issuer's: no key retires sooner than it allows, or than stored", async function () {
        await supersededKeys(3_600_000, 360);
        expect(await states(['--max-token-lifetime', '3600'])).to.deep.equal(['retired-but-published', 'active']);
        expect(await states(['--max-token-lifetime', '300'])).to.deep.equal(['expired', 'active']);
        await knex('m2m_signing_keys').update({ retention: 3660 });
        expect(await states(['--max-token-lifetime', '300'])).to.deep.equal(['retired-but-published', 'active']);
      });

      it('never prints a private key', async function () {
        await store.keys.rotate({ activateAfter: 0, alg: 'RS256' });
        await store.keys.rotate({ activateAfter: 0 });
        const pems = await knex('m2m_signing_keys').pluck('private_key') as string[];
        for (const args of [['keys', 'list'], ['keys', 'list', '--json']]) {
          const run = await cli(args, { env });
          expect(run.code).to.equal(0);
          expect(run.stdout).to.not.include('PRIVATE KEY');
          for (const pem of pems) expect(run.stdout).to.not.include(pem.split('\n')[1]);
        }
      });

      it('says so when there is no key', async function () {
        expect(await cli(['keys', 'list'], { env })).to.deep.equal({
          code: 0,
          stdout: 'No signing keys. The issuer creates one on its first token request, or run `express-m2m keys rotate`.\n',
          stderr: '',
        });
      });
    });

    describe('errors', function () {
      it('names an unknown client and exits 1 in every command that takes a client id', async function () {
        const commands = [['show', 'nope'], ['rotate-secret', 'nope'], ['disable', 'nope'], ['enable', 'nope'], ['delete', 'nope', '--yes']];
        const runs = await Promise.all(commands.map((args) => cli(['clients', ...args], { env })));
        for (const run of runs) expect(run).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: no client with id "nope"\n' });
      });

      it('answers an unknown option with the usage and exit code 2', async function () {
        const run = await cli(['clients', 'list', '--bogus'], { env });
        expect(run).to.deep.equal({
          code: 2,
          stdout: '',
          stderr: 'express-m2m: unknown option --bogus\n\nUsage: express-m2m clients list [global options]\n'
            + "Run 'express-m2m clients list --help' for details.\n",
        });
      });

      it("answers an option of another command with the usage and exit code 2", async function () {
        const run = await cli(['keys', 'list', '--grace', '10'], { env });
        expect(run.code).to.equal(2);
        expect(run.stderr).to.match(/^express-m2m: unknown option --grace\n\nUsage: express-m2m keys list /);
      });

      it('answers a missing required option with the usage and exit code 2', async function () {
        for (const [missing, args] of [
          ['--name', ['--scope', 's', '--audience', 'https://a.internal']],
          ['--scope', ['--name', 'n', '--audience', 'https://a.internal']],
          ['--audience', ['--name', 'n', '--scope', 's']],
        ] as const) {
          const run = await cli(['clients', 'create', ...args], { env });
          expect(run.code, missing).to.equal(2);
          expect(run.stdout).to.equal('');
          expect(run.stderr).to.equal(`express-m2m: missing required option ${missing}\n\n`
            + 'Usage: express-m2m clients create --name NAME --scope S... --audience A... [options] [global options]\n'
            + "Run 'express-m2m clients create --help' for details.\n");
        }
        expect(await store.clients.list()).to.deep.equal([]);
      });

      it('answers a missing or extra client id with the usage and exit code 2', async function () {
        const missing = await cli(['clients', 'show'], { env });
        expect(missing.code).to.equal(2);
        expect(missing.stderr).to.match(/^express-m2m: missing client ID\n\nUsage: express-m2m clients show ID /);
        const extra = await cli(['clients', 'disable', 'a', 'b'], { env });
        expect(extra.code).to.equal(2);
        expect(extra.stderr).to.match(/^express-m2m: unexpected argument "b"\n\nUsage: express-m2m clients disable ID /);
      });

      it('answers a bad number with the usage and exit code 2', async function () {
        const cases: [string[], string][] = [
          [['clients', 'rotate-secret', 'x', '--grace', 'soon'], '--grace must be a whole number of seconds, got "soon"'],
          [['clients', 'rotate-secret', 'x', '--grace=-5'], '--grace must be a whole number of seconds, got "-5"'],
          [['keys', 'rotate', '--activate-after', '1.5'], '--activate-after must be a whole number of seconds, got "1.5"'],
          [['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'a', '--token-lifetime', '10m'],
            '--token-lifetime must be a whole number of seconds, got "10m"'],
          [['keys', 'rotate', '--activate-after', '-1'], 'option --activate-after needs a value (write --activate-after=VALUE for one starting with "-")'],
        ];
        const runs = await Promise.all(cases.map(([args]) => cli(args, { env })));
        for (const [i, [args, message]] of cases.entries()) {
          const run = runs[i] as Run;
          expect(run.code, args.join(' ')).to.equal(2);
          expect(run.stdout).to.equal('');
          expect(run.stderr.startsWith(`express-m2m: ${message}\n\nUsage: express-m2m ${args[0]} `), run.stderr).to.equal(true);
        }
      });

      it('answers other malformed values with the usage and exit code 2', async function () {
        const badAlg = await cli(['keys', 'rotate', '--alg', 'HS256'], { env });
        expect(badAlg.code).to.equal(2);
        expect(badAlg.stderr).to.match(/^express-m2m: --alg must be one of ES256, RS256, PS256, got "HS256"\n\nUsage: /);
        const badClaims = await cli(['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'a', '--claims', '[1]'], { env });
        expect(badClaims.code).to.equal(2);
        expect(badClaims.stderr).to.match(/^express-m2m: --claims must be a JSON object, for example '\{"tenant":"acme"\}'\n\nUsage: /);
        const valueOnFlag = await cli(['clients', 'list', '--json=yes'], { env });
        expect(valueOnFlag.code).to.equal(2);
        expect(valueOnFlag.stderr).to.match(/^express-m2m: option --json takes no value\n\nUsage: /);
        expect(await store.keys.list()).to.deep.equal([]);
      });

      it('answers an unknown or missing command with the usage and exit code 2', async function () {
        const unknown = await cli(['frobnicate'], { env });
        expect(unknown.code).to.equal(2);
        expect(unknown.stdout).to.equal('');
        expect(unknown.stderr).to.match(/^express-m2m: unknown command "frobnicate"\n\nUsage: express-m2m <command> \[options\]\n/);
        const unknownSub = await cli(['clients', 'frobnicate'], { env });
        expect(unknownSub.code).to.equal(2);
        expect(unknownSub.stderr).to.match(/^express-m2m: unknown command "clients frobnicate"\n\nUsage: express-m2m clients <command>/);
        expect(unknownSub.stderr).to.include('  clients rotate-secret  ');
        const none = await cli([], { env });
        expect(none.code).to.equal(2);
        expect(none.stderr).to.match(/^express-m2m: missing command\n\nUsage: express-m2m <command> \[options\]\n/);
        const noSub = await cli(['keys'], { env });
        expect(noSub.code).to.equal(2);
        expect(noSub.stderr).to.match(/^express-m2m: missing keys command\n\nUsage: express-m2m keys <command>/);
      });
    });
  });

  describe('errors before the tables exist', function () {
    it('tells the user to run migrate when the tables are missing, for every command but migrate', async function () {
      await knex.raw('create table unrelated (id integer)');
      const commands = [['clients', 'list'], ['clients', 'show', 'x'], ['clients', 'create', '--name', 'n', '--scope', 's',
        '--audience', 'a'], ['clients', 'rotate-secret', 'x'], ['clients', 'disable', 'x'], ['clients', 'enable', 'x'],
      ['clients', 'delete', 'x', '--yes'], ['keys', 'list'], ['keys', 'rotate']];
      const runs = await Promise.all(commands.map((args) => cli(args, { env })));
      for (const run of runs) {
        expect(run).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: the express-m2m tables are missing (no table m2m_clients): run `express-m2m migrate` first\n',
        });
      }
      expect(await knex.schema.hasTable('m2m_clients')).to.equal(false);
    });

    it('tells the user to run migrate when the SQLite file does not exist, and does not create it', async function () {
      const run = await cli(['clients', 'list'], { env });
      expect(run).to.deep.equal({
        code: 1, stdout: '', stderr: `express-m2m: the SQLite database ${file} does not exist: run \`express-m2m migrate\` to create it\n`,
      });
      expect(existsSync(file)).to.equal(false);
    });

    it('asks for DATABASE_URL when no database is configured', async function () {
      const run = await cli(['clients', 'list'], { cwd: dir });
      expect(run).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'express-m2m: no database configured: set DATABASE_URL (for example postgres://HOST:5432/DB or '
          + 'sqlite:./express-m2m.sqlite), pass --database URL, or add a ./knexfile.js\n',
      });
    });

    it('refuses a database URL it cannot use, without its password', async function () {
      const fromEnv = await cli(['migrate'], { env: { DATABASE_URL: 'mysql://root:Hunter2-secret@db.internal/m2m' } });
      expect(fromEnv).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'express-m2m: unsupported database URL in DATABASE_URL: mysql://***@db.internal/m2m; use postgres://, '
          + 'postgresql://, sqlite:PATH, file:PATH, or a path ending in .sqlite, .sqlite3 or .db\n',
      });
      const fromFlag = await cli(['migrate', '--database', 'mysql://root:Hunter2-secret@db.internal/m2m']);
      expect(fromFlag.code).to.equal(2);
      expect(fromFlag.stderr).to.match(/^express-m2m: unsupported database URL in --database: mysql:\/\/\*\*\*@db.internal\/m2m; /);
      expect(fromFlag.stderr).to.not.include('Hunter2');
    });

    it('reports an unreachable PostgreSQL server in one line, without the password or a stack trace', async function () {
      const url = 'postgres://admin:S3cret-Pa55word@127.0.0.1:1/m2m';
      for (const args of [['migrate'], ['clients', 'list', '--json'], ['keys', 'rotate']]) {
        const run = await cli(args, { env: { DATABASE_URL: url } });
        expect(run, args.join(' ')).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: cannot connect to the database postgres://***@127.0.0.1:1/m2m: connection refused\n',
        });
      }
      const flag = await cli(['clients', 'list', '--database', url]);
      expect(flag.stderr).to.equal('express-m2m: cannot connect to the database postgres://***@127.0.0.1:1/m2m: connection refused\n');
    });

    it('prints a stack trace only with --debug, still without the password', async function () {
      const run = await cli(['clients', 'list', '--debug'], { env: { DATABASE_URL: 'postgres://admin:S3cret-Pa55word@127.0.0.1:1/m2m' } });
      expect(run.code).to.equal(1);
      expect(run.stdout).to.equal('');
      expect(run.stderr).to.match(STACK_FRAME);
      expect(run.stderr).to.include('express-m2m: CliError: cannot connect to the database postgres://***@127.0.0.1:1/m2m: connection refused\n');
      expect(run.stderr).to.include('Caused by: Error: connect ECONNREFUSED 127.0.0.1:1');
      expect(run.stderr).to.not.include('S3cret-Pa55word');
      expect(run.stderr).to.not.include('admin');
    });

    it('reports a SQLite file it cannot open in one line', async function () {
      const run = await cli(['migrate', '--database', `sqlite:${join(dir, 'no', 'such', 'dir.sqlite')}`]);
      expect(run).to.deep.equal({
        code: 1, stdout: '', stderr: `express-m2m: cannot connect to the database sqlite:${join(dir, 'no', 'such', 'dir.sqlite')}: cannot open the file\n`,
      });
    });

    it('never prints a stack trace for any of these errors', async function () {
      const runs = await Promise.all([
        cli(['clients', 'list'], { env }),
        cli(['clients', 'list', '--bogus'], { env }),
        cli(['keys', 'list'], { env: { DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x' } }),
        cli(['migrate'], { env: { DATABASE_URL: 'redis://127.0.0.1:1' } }),
        cli(['clients', 'show'], { env }),
      ]);
      for (const run of runs) {
        expect(run.code).to.be.oneOf([1, 2]);
        expect(run.stderr).to.match(/^express-m2m: /);
        expect(run.stderr).to.not.match(STACK_FRAME);
      }
    });
  });

  describe('help', function () {
    it('prints the overall help on stdout with --help and exits 0', async function () {
      const run = await cli(['--help']);
      expect(run.code).to.equal(0);
      expect(run.stderr).to.equal('');
      expect(run.stdout).to.match(/^Usage: express-m2m <command> \[options\]\n/);
      for (const command of ['migrate', 'clients create', 'clients list', 'clients show', 'clients rotate-secret',
        'clients disable', 'clients enable', 'clients delete', 'keys list', 'keys rotate', 'keys revoke']) {
        expect(run.stdout).to.match(new RegExp(`^ {2}${command} +\\S`, 'm'));
      }
      expect(run.stdout).to.include('--database URL');
      expect(run.stdout).to.include('Exit codes: 0 success, 1 failure, 2 bad usage.');
    });

    it("prints a command's options with -h, whatever else is on the line, without touching a database", async function () {
      const run = await cli(['clients', 'create', '-h', '--bogus']);
      expect(run.code).to.equal(0);
      expect(run.stderr).to.equal('');
      expect(run.stdout).to.match(/^Usage: express-m2m clients create --name NAME --scope S\.\.\. --audience A\.\.\. \[options\] \[global options\]\n/);
      for (const flag of ['--name NAME', '--scope S', '--audience A', '--default-scope S', '--default-audience A', '--client-id ID',
        '--token-lifetime SECONDS', '--claims JSON', '--json', '--debug']) {
        expect(run.stdout).to.include(`  ${flag} `);
      }
      expect((await cli(['keys', '--help'])).stdout).to.match(/^Usage: express-m2m keys <command> \[options\]\n\nCommands:\n {2}keys list /);
    });
  });

  describe('with a knexfile', function () {
    it('uses ./knexfile.mjs, with the environment chosen by NODE_ENV', async function () {
      const production = join(dir, 'production.sqlite');
      const development = join(dir, 'development.sqlite');
      writeFileSync(join(dir, 'knexfile.mjs'), `export default {
        development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(development)} }, useNullAsDefault: true },
        production: { client: 'sqlite3', connection: { filename: ${JSON.stringify(production)} }, useNullAsDefault: true },
      };\n`);
      expect(json(await cli(['migrate', '--json'], { cwd: dir, env: { NODE_ENV: 'production' } }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(production)).to.equal(true);
      expect(existsSync(development)).to.equal(false);
      expect(json(await cli(['migrate', '--json'], { cwd: dir }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(development)).to.equal(true);
    });

    it('uses module.exports of ./knexfile.js, and DATABASE_URL wins over it', async function () {
      const fromKnexfile = join(dir, 'knexfile.sqlite');
      writeFileSync(join(dir, 'knexfile.js'), `module.exports = {
        development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(fromKnexfile)} }, useNullAsDefault: true },
      };\n`);
      expect(json(await cli(['migrate', '--json'], { cwd: dir, env }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(file)).to.equal(true);
      expect(existsSync(fromKnexfile)).to.equal(false);
      expect(json(await cli(['migrate', '--json'], { cwd: dir }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(fromKnexfile)).to.equal(true);
    });

    it('names the knexfile and the environment when the environment is missing', async function () {
      writeFileSync(join(dir, 'knexfile.mjs'), "export default { development: { client: 'sqlite3', connection: { filename: ':memory:' } } };\n");
      const run = await cli(['migrate'], { cwd: dir, env: { NODE_ENV: 'staging' } });
      expect(run).to.deep.equal({
        code: 1, stdout: '', stderr: `express-m2m: ${join(dir, 'knexfile.mjs')} has no "staging" environment (chosen by NODE_ENV)\n`,
      });
    });
  });
});

describe('express-m2m CLI on PostgreSQL', function () {
  this.timeout(60_000);

  const database = `m2m_cli_${randomBytes(6).toString('hex')}`;
  const server = new URL(PG_URL);
  const url = new URL(PG_URL);
  url.pathname = `/${database}`;
  const userInfo = `${url.username}:${url.password}@`;
  let admin: Knex;
  let knex: Knex;

  before(async function () {
    admin = knexFactory({ client: 'pg', connection: server.href, pool: { min: 0, max: 1 } });
    await admin.raw('create database ??', [database]);
    knex = knexFactory({ client: 'pg', connection: url.href, pool: { min: 0, max: 2 } });
  });

  after(async function () {
    await knex?.destroy();
    if (admin) {
      await admin.raw('drop database if exists ?? with (force)', [database]);
      await admin.destroy();
    }
  });

  /** Each test keeps to tables of its own prefix in the shared fresh database. */
  function prefixed(): { prefix: string; store: KnexStore; run(args: readonly string[]): Promise<Run> } {
    const prefix = `t${randomBytes(4).toString('hex')}_`;
    return {
      prefix,
      store: createKnexStore(knex, { tablePrefix: prefix, clientCacheTtl: 0 }),
      run: async (args) => {
        const result = await cli([...args, '--table-prefix', prefix], { env: { DATABASE_URL: url.href } });
        expect(result.stdout + result.stderr, 'user info of the URL').to.not.include(userInfo);
        return result;
      },
    };
  }

  it('migrates a fresh database, then finds nothing to apply', async function () {
    const { prefix, run } = prefixed();
    expect(json(await run(['migrate', '--json']))).to.deep.equal({ applied: MIGRATIONS });
    expect(await run(['migrate'])).to.deep.equal({ code: 0, stdout: 'The database is up to date: no migration to apply.\n', stderr: '' });
    expect(await knex.schema.hasTable(`${prefix}clients`)).to.equal(true);
  });

  it('runs the whole client lifecycle, with secrets that authenticate', async function () {
    const { store, run } = prefixed();
    expect((await run(['migrate'])).code).to.equal(0);

    const created = json(await run(['clients', 'create', '--json', '--name', 'pg client', '--client-id', 'pg-client',
      '--scope', 'a b', '--audience', 'https://pg.internal'])) as { clientSecret: string };
    expect((await store.clients.authenticate('pg-client', created.clientSecret)).ok).to.equal(true);

    const listed = await run(['clients', 'list']);
    expect(listed.stdout).to.equal('CLIENT ID  NAME       ENABLED  SCOPES  AUDIENCES\npg-client  pg client  yes      a b     https://pg.internal\n');

    const rotated = await run(['clients', 'rotate-secret', 'pg-client', '--grace', '300']);
    const secret = /^ {2}(m2m_cs_\S+)$/m.exec(rotated.stdout)?.[1] ?? '';
    expect(secret).to.match(SECRET);
    expect((await store.clients.authenticate('pg-client', secret)).ok).to.equal(true);
    expect((await store.clients.authenticate('pg-client', created.clientSecret)).ok).to.equal(true);

    const shown = json(await run(['clients', 'show', 'pg-client', '--json'])) as { secrets: unknown[] };
    expect(shown.secrets).to.have.length(2);

    expect(await run(['clients', 'disable', 'pg-client'])).to.deep.equal({ code: 0, stdout: 'Client pg-client disabled.\n', stderr: '' });
    expect(await store.clients.authenticate('pg-client', secret)).to.deep.equal({ ok: false, reason: 'client_disabled' });
    expect((await run(['clients', 'enable', 'pg-client'])).code).to.equal(0);
    expect((await store.clients.authenticate('pg-client', secret)).ok).to.equal(true);

    expect((await run(['clients', 'delete', 'pg-client'])).code).to.equal(2);
    expect(await run(['clients', 'delete', 'pg-client', '--yes'])).to.deep.equal({ code: 0, stdout: 'Client pg-client deleted.\n', stderr: '' });
    expect(await run(['clients', 'show', 'pg-client'])).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: no client with id "pg-client"\n' });
    await store.clients.flushUsage();
  });

  it('adds a pending key and lists it', async function () {
    const { store, run } = prefixed();
    expect((await run(['migrate'])).code).to.equal(0);
    await store.keys.ensure('ES256');
    const added = json(await run(['keys', 'rotate', '--json', '--alg', 'PS256'])) as { key: { kid: string; state: string } };
    expect(added.key.state).to.equal('pending');
    const listed = json(await run(['keys', 'list', '--json'])) as { keys: { kid: string; alg: string; state: string }[] };
    expect(listed.keys.map((k) => [k.alg, k.state])).to.deep.equal([['ES256', 'active'], ['PS256', 'pending']]);
    expect(listed.keys[1]?.kid).to.equal(added.key.kid);
  });

  it('tells the user to run migrate when the tables are missing', async function () {
    const { prefix, run } = prefixed();
    expect(await run(['keys', 'list'])).to.deep.equal({
      code: 1, stdout: '', stderr: `express-m2m: the express-m2m tables are missing (no table ${prefix}clients): run \`express-m2m migrate\` first\n`,
    });
  });
});
