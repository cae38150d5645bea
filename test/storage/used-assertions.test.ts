import { expect } from 'chai';
import { createKnexStore, type KnexStore } from '../../lib/storage/knex-store.js';
import { databases, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/rejection.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MINUTE = 60_000;

for (const makeDb of databases) {
  describe(`usedAssertions on ${makeDb === databases[0] ? 'sqlite' : 'postgres'}`, function () {
    this.timeout(30_000);
    let db: TestDatabase;
    let now: number;
    let stores: KnexStore[];

    /** A store as one issuer instance holds it, on the shared database. */
    const instance = (): KnexStore => {
      const store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => now });
      stores.push(store);
      return store;
    };

    beforeEach(async () => {
      now = T0;
      stores = [];
      db = makeDb();
      await instance().migrate();
    });
    afterEach(async () => {
      await db.destroy();
    });

    const rows = async (): Promise<{ client_id: string; expires_at: number }[]> =>
      (await db.knex(`${db.prefix}used_assertions`).select('client_id', 'expires_at').orderBy('expires_at'))
        .map((row: { client_id: string; expires_at: number | string }) => ({ client_id: row.client_id, expires_at: Number(row.expires_at) }));

    it('accepts a jti once per client, then refuses it until it expires', async () => {
      const { usedAssertions } = instance();
      const until = new Date(T0 + MINUTE);
      expect(await usedAssertions.markUsed('archiver', 'jti-1', until)).to.equal(true);
      expect(await usedAssertions.markUsed('archiver', 'jti-1', until)).to.equal(false);
      expect(await usedAssertions.markUsed('archiver', 'jti-2', until)).to.equal(true);
      // Another client's equal jti is its own.
      expect(await usedAssertions.markUsed('reporter', 'jti-1', until)).to.equal(true);
      expect(await rows()).to.deep.equal([
        { client_id: 'archiver', expires_at: T0 + MINUTE }, { client_id: 'archiver', expires_at: T0 + MINUTE },
        { client_id: 'reporter', expires_at: T0 + MINUTE },
      ]);
    });

    it('refuses a jti on a second instance that the first has recorded', async () => {
      const [a, b] = [instance(), instance()];
      expect(await a.usedAssertions.markUsed('archiver', 'jti-1', new Date(T0 + MINUTE))).to.equal(true);
      expect(await b.usedAssertions.markUsed('archiver', 'jti-1', new Date(T0 + MINUTE))).to.equal(false);
    });

    it('lets exactly one of several instances record one jti at the same time', async () => {
      const all = [instance(), instance(), instance(), instance()];
      const results = await Promise.all(all.map((store) => store.usedAssertions.markUsed('archiver', 'raced', new Date(T0 + MINUTE))));
      expect(results.filter(Boolean)).to.have.length(1);
      expect(await rows()).to.have.length(1);
    });

    it('accepts a jti again once its record has expired, even before a purge', async () => {
      const { usedAssertions } = instance();
      expect(await usedAssertions.markUsed('archiver', 'jti-1', new Date(T0 + MINUTE))).to.equal(true);
      now = T0 + MINUTE;
      expect(await usedAssertions.markUsed('archiver', 'jti-1', new Date(T0 + 2 * MINUTE))).to.equal(true);
      expect(await usedAssertions.markUsed('archiver', 'jti-1', new Date(T0 + 2 * MINUTE))).to.equal(false);
      expect(await rows()).to.deep.equal([{ client_id: 'archiver', expires_at: T0 + 2 * MINUTE }]);
    });

    it('keeps any jti as a short key: long, unicode, or holding SQL and NUL', async () => {
      const { usedAssertions } = instance();
      for (const jti of ['j'.repeat(10_000), '読み取り 🔑', "'; DROP TABLE m2m_used_assertions; --", 'a\u0000b']) {
        expect(await usedAssertions.markUsed('archiver', jti, new Date(T0 + MINUTE)), jti.slice(0, 20)).to.equal(true);
        expect(await usedAssertions.markUsed('archiver', jti, new Date(T0 + MINUTE)), jti.slice(0, 20)).to.equal(false);
      }
      const ids = await db.knex(`${db.prefix}used_assertions`).pluck('id') as string[];
      expect(ids.every((id) => /^[A-Za-z0-9_-]{43}$/.test(id))).to.equal(true);
    });

    it('purges expired records, and only those', async () => {
      const { usedAssertions } = instance();
      await usedAssertions.markUsed('archiver', 'old', new Date(T0 + MINUTE));
      await usedAssertions.markUsed('archiver', 'new', new Date(T0 + 3 * MINUTE));
      now = T0 + 2 * MINUTE;
      expect(await usedAssertions.purgeExpired()).to.equal(1);
      expect(await rows()).to.deep.equal([{ client_id: 'archiver', expires_at: T0 + 3 * MINUTE }]);
    });

    it('purges expired records by itself when it records one', async () => {
      const { usedAssertions } = instance();
      await usedAssertions.markUsed('archiver', 'old', new Date(T0 + MINUTE));
      now = T0 + 2 * MINUTE;
      await usedAssertions.markUsed('archiver', 'new', new Date(T0 + 3 * MINUTE));
      // The purge runs in the background; a later purge finds nothing left of it to do.
      let left = (await rows()).length;
      for (let i = 0; i < 50 && left > 1; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        left = (await rows()).length;
      }
      expect(await rows()).to.deep.equal([{ client_id: 'archiver', expires_at: T0 + 3 * MINUTE }]);
    });

    it('refuses malformed input with a TypeError and records nothing', async () => {
      const { usedAssertions } = instance();
      const bad: [string, string, Date][] = [
        ['', 'jti', new Date(T0)], ['archiver', '', new Date(T0)], ['a b', 'jti', new Date(T0)],
        ['archiver', 'jti', new Date(Number.NaN)], ['archiver', 'jti', T0 as unknown as Date],
      ];
      for (const [clientId, jti, expiresAt] of bad) await rejectionOf(usedAssertions.markUsed(clientId, jti, expiresAt), TypeError);
      expect(await rows()).to.deep.equal([]);
    });
  });
}
