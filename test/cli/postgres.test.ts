import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createKnexStore, type KnexStore } from '../../lib/index.js';
import { PG_URL } from '../support/db.js';
import { requiresServers } from '../support/servers.js';
import { cli, json, MIGRATIONS, SECRET, type Run } from './harness.js';

describe('express-m2m CLI: on PostgreSQL', function () {
  requiresServers(this, 'postgres');
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
        const result = await cli(['--table-prefix', prefix, ...args], { env: { DATABASE_URL: url.href } });
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
    expect(listed.stdout).to.equal('CLIENT ID  NAME       ENABLED  AUTH METHOD               KEYS  SCOPES  AUDIENCES\n'
      + 'pg-client  pg client  yes      client_secret_basic|post  -     a b     https://pg.internal\n');

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

  it('adds a pending key, lists it, revokes it once and lists it again with --all', async function () {
    const { prefix, store, run } = prefixed();
    expect((await run(['migrate'])).code).to.equal(0);
    await store.keys.ensure('ES256');
    const added = json(await run(['keys', 'rotate', '--json', '--alg', 'PS256'])) as { key: { kid: string; state: string } };
    expect(added.key.state).to.equal('pending');
    const listed = json(await run(['keys', 'list', '--json'])) as { keys: { kid: string; alg: string; state: string }[] };
    expect(listed.keys.map((k) => [k.alg, k.state])).to.deep.equal([['ES256', 'active'], ['PS256', 'pending']]);
    expect(listed.keys[1]?.kid).to.equal(added.key.kid);

    expect((await run(['keys', 'revoke', '--', added.key.kid])).code).to.equal(0);
    const [revokedAt] = await knex(`${prefix}signing_keys`).where({ kid: added.key.kid }).pluck('revoked_at') as string[];
    const since = new Date(Number(revokedAt)).toISOString();
    expect(await run(['keys', 'revoke', '--', added.key.kid])).to.deep.equal({
      code: 1, stdout: '', stderr: `express-m2m: key "${added.key.kid}" is already revoked (since ${since.replace(/\.\d{3}Z$/, 'Z')})\n` });
    const all = json(await run(['keys', 'list', '--all', '--json'])) as { keys: { kid: string; state: string; revokedAt: string | null }[] };
    expect(all.keys.map((k) => [k.state, k.revokedAt])).to.deep.equal([['active', null], ['revoked', since]]);
    expect((json(await run(['keys', 'list', '--json'])) as { keys: unknown[] }).keys).to.have.length(1);
  });

  it('updates a client and revokes one of its secrets', async function () {
    const { store, run } = prefixed();
    expect((await run(['migrate'])).code).to.equal(0);
    const created = await store.clients.create({ name: 'pg', clientId: 'pg-update', scopes: ['a'], audiences: ['https://pg.internal'] });
    const rotated = await store.clients.rotateSecret('pg-update', { gracePeriod: 600 });
    const updated = json(await run(['clients', 'update', 'pg-update', '--json', '--scope', 'a b', '--audience', 'https://pg.internal',
      '--audience', 'https://other.internal', '--token-lifetime', '900'])) as { changed: string[] };
    expect(updated.changed).to.deep.equal(['scopes', 'audiences', 'tokenLifetime']);
    expect(await store.clients.get('pg-update')).to.deep.include({
      scopes: ['a', 'b'], defaultScopes: ['a'], audiences: ['https://pg.internal', 'https://other.internal'], tokenLifetime: 900 });
    expect(await run(['clients', 'revoke-secret', 'pg-update', created.secret.id])).to.deep.equal({
      code: 0, stdout: `Revoked secret ${created.secret.id} of client pg-update: it no longer authenticates.\n`, stderr: '' });
    expect(await store.clients.authenticate('pg-update', created.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
    expect((await store.clients.authenticate('pg-update', rotated.clientSecret)).ok).to.equal(true);
    await store.clients.flushUsage();
  });

  it('tells the user to run migrate when the tables are missing', async function () {
    const { prefix, run } = prefixed();
    expect(await run(['keys', 'list'])).to.deep.equal({
      code: 1, stdout: '', stderr: `express-m2m: the express-m2m tables are missing (no table ${prefix}clients): run \`express-m2m migrate\` first\n`,
    });
  });
});
