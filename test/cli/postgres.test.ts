import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createKnexStore, type KnexStore } from '../../lib/index.js';
import { PG_URL } from '../support/db.js';
import { cli, json, MIGRATIONS, SECRET, type Run } from './harness.js';

describe('express-m2m CLI: on PostgreSQL', function () {
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
