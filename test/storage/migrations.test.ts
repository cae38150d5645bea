import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import type { ClientRegistration } from '../../lib/core/client.js';
import { generateSigningKey } from '../../lib/core/keys.js';
import { DEFAULT_KEY_RETENTION } from '../../lib/core/key-set.js';
import { createKnexStore } from '../../lib/storage/knex-store.js';
import { migrationSource, runMigrations, tableNames } from '../../lib/storage/migrations.js';
import { databases, PG_URL, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/rejection.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MIGRATIONS = [
  '20261122000000_initial', '20261206000000_key_retention', '20261210000000_audit_log', '20261212000000_client_changes',
  '20261220000000_client_authentication', '20261230000000_revocations',
];

const MINIMAL: ClientRegistration = { name: 'minimal', scopes: ['a'], audiences: ['https://a.internal'] };

/** The table names a prefix gets, with Knex's lock table. */
const expectedTables = (prefix: string): string[] =>
  [`${prefix}clients`, `${prefix}client_secrets`, `${prefix}signing_keys`, `${prefix}revisions`, `${prefix}audit_log`, `${prefix}used_assertions`,
    `${prefix}client_changes`, `${prefix}revocations`, `${prefix}revocation_counters`, `${prefix}migrations`, `${prefix}migrations_lock`].sort();

/**
 * A database that holds nothing but what the test creates, so "only these tables" can be checked:
 * the test's own SQLite file, or on PostgreSQL a schema of its own as the only one on the search
 * path of a dedicated Knex instance.
 */
interface IsolatedDatabase {
  knex: Knex;
  tables(): Promise<string[]>;
  destroy(): Promise<void>;
}

function isolated(db: TestDatabase): Promise<IsolatedDatabase> {
  if (db.name === 'sqlite') {
    return Promise.resolve({
      knex: db.knex,
      async tables() {
        const rows = await db.knex.raw<{ name: string }[]>(
          "select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\'");
        return rows.map((r) => r.name).sort();
      },
      async destroy() { /* the file goes with db.destroy() */ },
    });
  }
  const schema = `s${randomBytes(4).toString('hex')}`;
  return db.knex.raw('create schema ??', [schema]).then(() => {
    const knex = knexFactory({ client: 'pg', connection: PG_URL, searchPath: [schema], pool: { min: 0, max: 4 } });
    return {
      knex,
      async tables() {
        const { rows } = await knex.raw<{ rows: { table_name: string }[] }>(
          'select table_name from information_schema.tables where table_schema = ?', [schema]);
        return rows.map((r) => r.table_name).sort();
      },
      async destroy() {
        await knex.destroy();
        await db.knex.raw('drop schema if exists ?? cascade', [schema]);
      },
    };
  });
}

for (const makeDb of databases) {
  const name = makeDb.name.replace(/Database$/, '');

  describe(`migrate() on ${name}`, function () {
    this.timeout(30_000);

    let db: TestDatabase;
    let iso: IsolatedDatabase | undefined;
    const extra: Knex[] = [];

    beforeEach(() => {
      db = makeDb();
      iso = undefined;
    });

    afterEach(async () => {
      for (const knex of extra.splice(0)) await knex.destroy();
      await iso?.destroy();
      await db.destroy();
    });

    it('creates only its prefixed tables, its own migrations table and its lock table', async () => {
      iso = await isolated(db);
      expect(await iso.tables()).to.deep.equal([]);
      await createKnexStore(iso.knex, { tablePrefix: 'acme_m2m_' }).migrate();
      expect(await iso.tables()).to.deep.equal(expectedTables('acme_m2m_'));
    });

    it('uses m2m_ tables and the m2m_migrations table by default, never knex_migrations', async () => {
      iso = await isolated(db);
      await createKnexStore(iso.knex).migrate();
      expect(await iso.tables()).to.deep.equal(expectedTables('m2m_'));
      expect(await iso.knex.schema.hasTable('knex_migrations')).to.equal(false);
    });

    it('records each bundled migration once in its own table', async () => {
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix });
      await store.migrate();
      const rows = await db.knex(store.tables.migrations).select('name', 'batch').orderBy('id') as { name: string; batch: number }[];
      expect(rows.map((r) => ({ name: r.name, batch: Number(r.batch) }))).to.deep.equal(MIGRATIONS.map((n) => ({ name: n, batch: 1 })));
    });

    it('is idempotent: running again changes no table and keeps the data', async () => {
      iso = await isolated(db);
      let now = T0;
      const store = createKnexStore(iso.knex, { tablePrefix: 'idem_', clock: () => now });
      await store.migrate();
      const issued = await store.clients.create(MINIMAL);
      await store.keys.ensure('ES256');
      const keys = await store.keys.list();
      now = T0 + 60_000;
      await store.migrate();
      await store.migrate();
      expect(await iso.tables()).to.deep.equal(expectedTables('idem_'));
      expect(await store.clients.get(issued.clientId)).to.deep.equal(issued.client);
      expect((await store.clients.authenticate(issued.clientId, issued.clientSecret)).ok).to.equal(true);
      expect(await store.keys.list()).to.deep.equal(keys);
      const rows = await iso.knex('idem_migrations').select('name') as { name: string }[];
      expect(rows.map((r) => r.name)).to.deep.equal(MIGRATIONS);
      await store.clients.flushUsage();
    });

    it('lets a second store with another prefix share the database without collision', async () => {
      // A prefix that starts with the test's own, so the PostgreSQL cleanup drops these tables too.
      const otherPrefix = `${db.prefix}b_`;
      const a = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => T0 });
      const b = createKnexStore(db.knex, { tablePrefix: otherPrefix, clock: () => T0 });
      await a.migrate();
      await b.migrate();
      await a.migrate();
      for (const table of [...Object.values(a.tables), ...Object.values(b.tables)]) {
        expect(await db.knex.schema.hasTable(table), table).to.equal(true);
      }
      expect(Object.values(a.tables).filter((t) => Object.values(b.tables).includes(t))).to.deep.equal([]);

      const inA = await a.clients.create({ ...MINIMAL, clientId: 'svc', name: 'in a' });
      expect(await b.clients.get('svc')).to.equal(undefined);
      const inB = await b.clients.create({ ...MINIMAL, clientId: 'svc', name: 'in b', scopes: ['b'] });
      expect(await a.clients.get('svc')).to.deep.equal(inA.client);
      expect(await b.clients.get('svc')).to.deep.equal(inB.client);
      expect(await a.clients.authenticate('svc', inB.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
      expect(await b.clients.authenticate('svc', inA.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });

      await a.keys.ensure('ES256');
      expect(await b.keys.list()).to.deep.equal([]);
      expect(await b.clients.delete('svc')).to.equal(true);
      expect(await a.clients.get('svc')).to.deep.equal(inA.client);

      for (const store of [a, b]) {
        const rows = await db.knex(store.tables.migrations).select('name') as { name: string }[];
        expect(rows.map((r) => r.name), store.tables.migrations).to.deep.equal(MIGRATIONS);
      }
      await a.clients.flushUsage();
      await b.clients.flushUsage();
    });

    it('lets several instances migrate a fresh database at the same time', async () => {
      iso = await isolated(db);
      // Separate Knex instances stand for processes starting together: separate connections.
      // A few rounds on fresh prefixes, since whether the instances collide depends on scheduling.
      const filename = (db.knex.client as { config: { connection: { filename?: string } } }).config.connection.filename;
      const searchPath = (iso.knex.client as { config: { searchPath?: string[] } }).config.searchPath;
      const instances = [iso.knex, ...Array.from({ length: 2 }, () => {
        const knex = db.name === 'sqlite'
          ? knexFactory({ client: 'sqlite3', connection: { filename: filename as string }, useNullAsDefault: true })
          : knexFactory({ client: 'pg', connection: PG_URL, searchPath: searchPath as string[], pool: { min: 0, max: 2 } });
        extra.push(knex);
        return knex;
      })];
      const prefixes = ['race1_', 'race2_', 'race3_'];
      for (const prefix of prefixes) {
        const results = await Promise.allSettled(instances.map((knex) => createKnexStore(knex, { tablePrefix: prefix }).migrate()));
        expect(results.map((r) => (r.status === 'rejected' ? String(r.reason).slice(0, 160) : 'ok')), prefix)
          .to.deep.equal(['ok', 'ok', 'ok']);
      }
      expect(await iso.tables()).to.deep.equal(prefixes.flatMap(expectedTables).sort());
    });

    it('repairs the lock table a race between older instances left with two rows, which Knex could never lock', async () => {
      // What two instances inserting Knex's lock row at once leave behind: with two unlocked rows,
      // Knex's "lock where unlocked" touches two rows and reports the lock taken, forever.
      const lockTable = `${db.prefix}migrations_lock`;
      await db.knex.schema.createTable(lockTable, (table) => {
        table.increments('index').primary();
        table.integer('is_locked');
      });
      await db.knex(lockTable).insert([{ is_locked: 0 }, { is_locked: 0 }]);
      const locked = await rejectionOf(db.knex.migrate.latest({ migrationSource: migrationSource(tableNames(db.prefix)), tableName: `${db.prefix}migrations` }), Error);
      expect(locked.message).to.match(/already locked/);

      const store = createKnexStore(db.knex, { tablePrefix: db.prefix });
      await store.migrate();
      expect(await db.knex(lockTable).select('is_locked')).to.deep.equal([{ is_locked: 0 }]);
      const rows = await db.knex(`${db.prefix}migrations`).select('name') as { name: string }[];
      expect(rows.map((r) => r.name)).to.deep.equal(MIGRATIONS);
    });

    it('leaves a lock another instance holds alone, and waits for it', async () => {
      await runMigrations(db.knex, { tablePrefix: db.prefix });
      const lockTable = `${db.prefix}migrations_lock`;
      await db.knex(lockTable).update({ is_locked: 1 });
      const migrating = createKnexStore(db.knex, { tablePrefix: db.prefix }).migrate();
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(await db.knex(lockTable).select('is_locked')).to.deep.equal([{ is_locked: 1 }]);
      await db.knex(lockTable).update({ is_locked: 0 });
      await migrating;
      expect(await db.knex(lockTable).select('is_locked')).to.deep.equal([{ is_locked: 0 }]);
    });

    it('holds the longest values validation allows', async () => {
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => T0 });
      await store.migrate();
      const longAudience = (i: number): string => `https://${String(i).padStart(2, '0')}.${'a'.repeat(501)}`;
      const registration: ClientRegistration = {
        clientId: `~${'x'.repeat(127)}`,
        name: '🔑'.repeat(100),
        scopes: Array.from({ length: 100 }, (_, i) => `${String(i).padStart(3, '0')}${'s'.repeat(125)}`),
        audiences: Array.from({ length: 50 }, (_, i) => longAudience(i)),
        defaultAudience: longAudience(49),
        tokenLifetime: 86400,
        claims: { blob: 'é'.repeat(4096 - '{"blob":""}'.length) },
      };
      expect(registration.clientId).to.have.length(128);
      expect(longAudience(49)).to.have.length(512);
      expect(JSON.stringify(registration.claims)).to.have.length(4096);
      const { client, clientSecret } = await store.clients.create(registration);
      expect(await store.clients.get(client.clientId)).to.deep.equal(client);
      expect(await store.clients.authenticate(client.clientId, clientSecret)).to.deep.equal({ ok: true, client });
      await store.clients.flushUsage();
    });
  });

  describe(`runMigrations() on ${name}`, function () {
    this.timeout(30_000);

    let db: TestDatabase;

    beforeEach(() => {
      db = makeDb();
    });

    afterEach(async () => {
      await db.destroy();
    });

    it('creates the same tables as the store, which then finds nothing left to run', async () => {
      await runMigrations(db.knex, { tablePrefix: db.prefix });
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => T0 });
      for (const table of Object.values(store.tables)) expect(await db.knex.schema.hasTable(table), table).to.equal(true);
      await store.migrate();
      await runMigrations(db.knex, { tablePrefix: db.prefix });
      const rows = await db.knex(store.tables.migrations).select('name') as { name: string }[];
      expect(rows.map((r) => r.name)).to.deep.equal(MIGRATIONS);
      const issued = await store.clients.create(MINIMAL);
      expect(await store.clients.get(issued.clientId)).to.deep.equal(issued.client);
    });

    it('upgrades keys stored before 20261206000000_key_retention: they read as the default retention until the issuer records its own', async () => {
      const t = tableNames(db.prefix);
      const config = { migrationSource: migrationSource(t), tableName: t.migrations };
      await db.knex.migrate.up(config);
      expect(await db.knex.schema.hasColumn(t.keys, 'retention')).to.equal(false);
      // A key as the first version stored it: no retention column yet.
      const key = await generateSigningKey('ES256');
      await db.knex(t.keys).insert({
        kid: key.kid, alg: key.alg, public_jwk: JSON.stringify(key.publicJwk), private_key: key.privateKeyPem,
        created_at: T0, activates_at: T0, revoked_at: null,
      });
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => T0 + 60_000 });
      await store.migrate();
      expect(await db.knex.schema.hasColumn(t.keys, 'retention')).to.equal(true);
      const [listed] = await store.keys.list();
      expect(listed).to.deep.equal({
        kid: key.kid, alg: 'ES256', publicJwk: key.publicJwk, createdAt: new Date(T0), activatesAt: new Date(T0), revokedAt: null,
        retention: DEFAULT_KEY_RETENTION, encrypted: false,
      });
      expect(listed?.privateKeyPem).to.equal(key.privateKeyPem);
      await store.keys.ensure('ES256', { retention: 86_460 });
      expect((await store.keys.list()).map((k) => [k.kid, k.retention])).to.deep.equal([[key.kid, 86_460]]);
    });

    it('rolls back 20261212000000_client_changes, 20261210000000_audit_log, then 20261206000000_key_retention, keeping the keys', async () => {
      const t = tableNames(db.prefix);
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => T0 });
      await store.migrate();
      const key = await store.keys.rotate({ activateAfter: 0, retention: 360 });
      await db.knex.migrate.down({ migrationSource: migrationSource(t), tableName: t.migrations, name: '20261206000000_key_retention' });
      expect(await db.knex.schema.hasColumn(t.keys, 'retention')).to.equal(false);
      expect(await db.knex(t.keys).pluck('kid')).to.deep.equal([key.kid]);
      await store.migrate();
      expect(await store.keys.list()).to.deep.equal([{ ...key, retention: DEFAULT_KEY_RETENTION }]);
    });

    it('rolls back cleanly with the exported migration source, and migrates again', async () => {
      const t = tableNames(db.prefix);
      await runMigrations(db.knex, { tablePrefix: db.prefix });
      await db.knex.migrate.rollback({ migrationSource: migrationSource(t), tableName: t.migrations }, true);
      const all = [t.clients, t.secrets, t.keys, t.usedAssertions, t.revocations, t.revocationCounters];
      for (const table of all) expect(await db.knex.schema.hasTable(table), table).to.equal(false);
      expect(await db.knex(t.migrations).select('*')).to.deep.equal([]);
      await runMigrations(db.knex, { tablePrefix: db.prefix });
      for (const table of all) expect(await db.knex.schema.hasTable(table), table).to.equal(true);
    });
  });
}

describe('migrate() on an error retrying cannot fix', () => {
  it('throws the first error of a SQLite file in a missing directory, without retrying', async () => {
    const knex = knexFactory({ client: 'sqlite3', connection: { filename: `/nonexistent-${randomBytes(4).toString('hex')}/m2m.sqlite` }, useNullAsDefault: true });
    let attempts = 0;
    knex.client.pool?.on?.('createRequest', () => { attempts++; });
    try {
      const err = await rejectionOf(createKnexStore(knex).migrate(), Error);
      expect(err.message).to.match(/SQLITE_CANTOPEN/);
      expect(attempts).to.equal(1);
    } finally {
      await knex.destroy();
    }
  });
});

describe('tableNames()', () => {
  it('prefixes every table name', () => {
    expect(tableNames('acme_')).to.deep.equal({
      clients: 'acme_clients', secrets: 'acme_client_secrets', keys: 'acme_signing_keys', revisions: 'acme_revisions', audit: 'acme_audit_log',
      usedAssertions: 'acme_used_assertions', changes: 'acme_client_changes', revocations: 'acme_revocations',
      revocationCounters: 'acme_revocation_counters', migrations: 'acme_migrations',
    });
  });
});

describe('migrationSource()', () => {
  it('lists the bundled migrations in order and names them as given', async () => {
    const source = migrationSource(tableNames('m2m_'));
    const list = await source.getMigrations([]);
    expect(list).to.deep.equal(MIGRATIONS);
    expect(list.map((m) => source.getMigrationName(m))).to.deep.equal(MIGRATIONS);
    const migration = await source.getMigration(MIGRATIONS[0] as string);
    expect(migration.up).to.be.a('function');
    expect(migration.down).to.be.a('function');
  });
});
