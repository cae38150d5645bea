import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { hashSecret, generateClientSecret, SECRET_PREFIX } from '../../lib/core/secrets.js';
import type { ClientRegistration } from '../../lib/core/client.js';
import { createKnexStore, type KnexStore, type KnexStoreOptions } from '../../lib/storage/knex-store.js';
import { databases, type TestDatabase } from '../support/db.js';

const MINIMAL: ClientRegistration = { name: 'minimal', scopes: ['a'], audiences: ['https://a.internal'] };

const sleep = (ms: number) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Polls `check` every 20 ms until it holds; returns how long that took, or throws after `limit` ms. */
async function within(limit: number, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > limit) throw new Error(`not seen within ${limit} ms`);
    await sleep(20);
  }
}

for (const makeDb of databases) {
  const name = makeDb.name.replace(/Database$/, '');

  describe(`the client registry on ${name}`, function () {
    this.timeout(30_000);

    let db: TestDatabase;
    let store: KnexStore;
    const stores: KnexStore[] = [];

    function makeStore(options: KnexStoreOptions = {}): KnexStore {
      const made = createKnexStore(db.knex, { tablePrefix: db.prefix, ...options });
      stores.push(made);
      return made;
    }

    async function queriesDuring(fn: () => Promise<unknown>): Promise<string[]> {
      const sql: string[] = [];
      const listener = (q: { sql: string }): void => { sql.push(q.sql); };
      db.knex.on('query', listener);
      try {
        await fn();
      } finally {
        db.knex.removeListener('query', listener);
      }
      return sql;
    }

    const changeLog = async (): Promise<string[]> =>
      (await db.knex(store.tables.changes).orderBy('seq').select('client_id') as { client_id: string }[]).map((r) => r.client_id);

    const outcome = async (s: KnexStore, id: string, secret: string): Promise<string> => {
      const result = await s.clients.authenticate(id, secret);
      return result.ok ? 'ok' : result.reason;
    };

    beforeEach(async () => {
      db = makeDb();
      store = makeStore();
      await store.migrate();
    });

    afterEach(async () => {
      for (const s of stores.splice(0)) await s.clients.flushUsage();
      await db.destroy();
    });

    it('records every change to a client or its secrets in the change log, by the store or by SQL, but no last-used write', async () => {
      const a = await store.clients.create({ ...MINIMAL, clientId: 'a' });
      await store.clients.create({ ...MINIMAL, clientId: 'b' });
      await db.knex(store.tables.changes).delete();
      await db.knex(store.tables.clients).where({ client_id: 'a' }).update({ name: 'renamed by hand' });
      await db.knex(store.tables.secrets).where({ client_id: 'a' }).update({ last_used_at: 1 });
      await db.knex(store.tables.secrets).where({ client_id: 'b' }).update({ expires_at: 1 });
      await db.knex(store.tables.secrets).where({ id: a.secret.id }).delete();
      await db.knex(store.tables.clients).where({ client_id: 'a' }).update({ client_id: 'a2' });
      await db.knex(store.tables.secrets).where({ client_id: 'b' }).delete();
      await db.knex(store.tables.clients).where({ client_id: 'b' }).delete();
      expect(await changeLog()).to.deep.equal(['a', 'b', 'a', 'a', 'a2', 'b', 'b']);
      await store.clients.rotateSecret('a2');
      expect((await changeLog()).slice(7)).to.deep.equal(['a2']);
    });

    it('sees clients changed with SQL on the database within changePollInterval + 1 s, with a cache ttl of an hour', async () => {
      const reader = makeStore({ clientCacheTtl: 3600, changePollInterval: 0.1 });
      const issued = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
      expect(await outcome(reader, 'svc', issued.clientSecret)).to.equal('ok');
      const bound = 1100 + 200;
      await db.knex(store.tables.clients).where({ client_id: 'svc' }).update({ enabled: false });
      await within(bound, async () => (await outcome(reader, 'svc', issued.clientSecret)) === 'client_disabled');
      await db.knex(store.tables.clients).where({ client_id: 'svc' }).update({ enabled: true });
      await db.knex(store.tables.secrets).where({ client_id: 'svc' }).update({ expires_at: 1 });
      await within(bound, async () => (await outcome(reader, 'svc', issued.clientSecret)) === 'expired_secret');
      // A secret and a client added by hand, as a restore script would.
      const secret = generateClientSecret();
      await db.knex(store.tables.secrets).insert({
        id: 'by-hand', client_id: 'svc', secret_hash: hashSecret(secret), hint: secret.slice(0, SECRET_PREFIX.length + 4),
        created_at: 1, expires_at: null, last_used_at: null,
      });
      await within(bound, async () => (await outcome(reader, 'svc', secret)) === 'ok');
      expect(await outcome(reader, 'copied', secret)).to.equal('unknown_client');
      const row = await db.knex(store.tables.clients).where({ client_id: 'svc' }).first() as Record<string, unknown>;
      await db.knex(store.tables.clients).insert({ ...row, client_id: 'copied' });
      await db.knex(store.tables.secrets).update({ client_id: 'copied' }).where({ id: 'by-hand' });
      await within(bound, async () => (await outcome(reader, 'copied', secret)) === 'ok');
      expect(await outcome(reader, 'svc', secret)).to.equal('invalid_secret');
      await db.knex(store.tables.secrets).where({ client_id: 'copied' }).delete();
      await within(bound, async () => (await outcome(reader, 'copied', secret)) === 'invalid_secret');
    });

    it('reads again only the clients that changed: a cached client costs no query while others are created, rotated and disabled', async () => {
      const reader = makeStore({ clientCacheTtl: 3600, changePollInterval: 0.05 });
      const writer = makeStore();
      const hot = await writer.clients.create({ ...MINIMAL, clientId: 'hot' });
      const other = await writer.clients.create({ ...MINIMAL, clientId: 'other' });
      expect(await outcome(reader, 'hot', hot.clientSecret)).to.equal('ok');
      expect(await outcome(reader, 'other', other.clientSecret)).to.equal('ok');
      await writer.clients.create({ ...MINIMAL, clientId: 'new' });
      await writer.clients.rotateSecret('other', { gracePeriod: 0 });
      await writer.clients.update('other', { enabled: false });
      await within(1200, async () => (await outcome(reader, 'other', other.clientSecret)) === 'expired_secret');
      const sql = await queriesDuring(async () => {
        for (let i = 0; i < 20; i++) expect(await outcome(reader, 'hot', hot.clientSecret)).to.equal('ok');
      });
      expect(sql.filter((q) => !/client_changes/.test(q))).to.deep.equal([]);
    });

    it('answers cached clients from memory while a change holds the database', async () => {
      const reader = makeStore({ clientCacheTtl: 3600 });
      const cached = await reader.clients.create({ ...MINIMAL, clientId: 'cached' });
      expect(await outcome(reader, 'cached', cached.clientSecret)).to.equal('ok');
      // A change through the same store drops what it changed, not the rest.
      await reader.clients.create({ ...MINIMAL, clientId: 'created' });
      const trx = await db.knex.transaction();
      try {
        // SQLite: the store's one connection is taken; PostgreSQL: nobody can read the clients table.
        if (db.name === 'postgres') await trx.raw('lock table ?? in access exclusive mode', [store.tables.clients]);
        else await trx(store.tables.clients).where({ client_id: 'created' }).update({ name: 'held' });
        const answer = await Promise.race([outcome(reader, 'cached', cached.clientSecret), sleep(1000).then(() => 'stalled')]);
        expect(answer).to.equal('ok');
      } finally {
        await trx.rollback();
      }
    });

    it('keeps at most clientCacheSize clients, and unknown ids in a cache of their own', async () => {
      const reader = makeStore({ clientCacheSize: 2, clientCacheTtl: 3600, changePollInterval: 60 });
      const a = await store.clients.create({ ...MINIMAL, clientId: 'a' });
      const b = await store.clients.create({ ...MINIMAL, clientId: 'b' });
      const c = await store.clients.create({ ...MINIMAL, clientId: 'c' });
      const clientQueries = async (fn: () => Promise<unknown>) =>
        (await queriesDuring(fn)).filter((q) => !/client_changes/.test(q) && /^select/i.test(q)).length;
      expect(await clientQueries(async () => {
        await outcome(reader, 'a', a.clientSecret);
        await outcome(reader, 'b', b.clientSecret);
      })).to.equal(2);
      // A flood of unknown ids, each looked up twice: read once, then answered from memory.
      const ids = Array.from({ length: 10 }, () => `nobody-${randomBytes(4).toString('hex')}`);
      expect(await clientQueries(async () => { for (const id of [...ids, ...ids.slice(-2)]) await outcome(reader, id, a.clientSecret); })).to.equal(10);
      expect(await clientQueries(async () => {
        expect(await outcome(reader, 'a', a.clientSecret)).to.equal('ok');
        expect(await outcome(reader, 'b', b.clientSecret)).to.equal('ok');
      })).to.equal(0);
      // A third client pushes out the least recently used one.
      expect(await clientQueries(() => outcome(reader, 'c', c.clientSecret))).to.equal(1);
      expect(await clientQueries(() => outcome(reader, 'b', b.clientSecret))).to.equal(0);
      expect(await clientQueries(() => outcome(reader, 'a', a.clientSecret))).to.equal(1);
    });

    it('sees a client created elsewhere whose id it had found unknown', async () => {
      const reader = makeStore({ clientCacheTtl: 3600, changePollInterval: 0.1 });
      expect(await outcome(reader, 'late', generateClientSecret())).to.equal('unknown_client');
      const late = await store.clients.create({ ...MINIMAL, clientId: 'late' });
      await within(1300, async () => (await outcome(reader, 'late', late.clientSecret)) === 'ok');
    });

    it('writes the last-used times of many secrets in one statement', async () => {
      let now = 1_700_000_000_000;
      const reader = makeStore({ clock: () => now, lastUsedResolution: 0 });
      const issued = [];
      for (const id of ['u1', 'u2', 'u3']) issued.push(await store.clients.create({ ...MINIMAL, clientId: id }));
      for (const [i, c] of issued.entries()) {
        now = 1_700_000_000_000 + i;
        expect(await outcome(reader, c.clientId, c.clientSecret)).to.equal('ok');
      }
      const sql = await queriesDuring(() => reader.clients.flushUsage());
      expect(sql.map((q) => q.split(' ')[0])).to.deep.equal(['update']);
      const rows = await db.knex(store.tables.secrets).orderBy('client_id').select('client_id', 'last_used_at') as { client_id: string; last_used_at: unknown }[];
      expect(rows.map((r) => [r.client_id, Number(r.last_used_at)])).to.deep.equal([
        ['u1', 1_700_000_000_000], ['u2', 1_700_000_000_001], ['u3', 1_700_000_000_002]]);
    });
  });
}
