import { expect } from 'chai';
import { createKnexStore, type KnexStore } from '../../lib/storage/knex-store.js';
import { CUTOFF_RETENTION } from '../../lib/storage/revocations.js';
import { ClientNotFoundError } from '../../lib/errors.js';
import { databases, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/rejection.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MINUTE = 60_000;
const REGISTRATION = { clientId: 'nightly', name: 'Nightly report', scopes: ['reports:read'], audiences: ['https://reports.internal'] };
/** `iat` of a token issued at `ms`, as a Date: whole seconds. */
const iat = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

for (const makeDb of databases) {
  describe(`store.revocations on ${makeDb.name.replace(/Database$/, '')}`, function () {
    this.timeout(30_000);
    let db: TestDatabase;
    let now: number;
    let store: KnexStore;

    /** A store as another issuer instance (or the CLI) holds it, on the shared database. */
    const instance = (): KnexStore => createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => now });

    beforeEach(async () => {
      now = T0;
      db = makeDb();
      store = instance();
      await store.migrate();
    });
    afterEach(async () => {
      await store.clients.flushUsage();
      await db.destroy();
    });

    const rows = async (): Promise<unknown[]> =>
      (await db.knex(store.tables.revocations).select('client_id', 'jti', 'revoked_before', 'expires_at').orderBy('seq'))
        .map((row: Record<string, string | number | null>) => ({
          ...row, revoked_before: row.revoked_before === null ? null : Number(row.revoked_before), expires_at: Number(row.expires_at),
        }));
    const check = (jti: string, clientId: string, issuedAt: number) => store.revocations.isRevoked({ jti, clientId, issuedAt: iat(issuedAt) });

    describe('revokeToken()', () => {
      it('revokes one token of one client until it expires', async () => {
        const { revocations } = store;
        expect(await revocations.revokeToken({ jti: 'jti-1', clientId: 'nightly', expiresAt: new Date(T0 + 5 * MINUTE) })).to.equal(true);
        expect(await check('jti-1', 'nightly', T0)).to.equal(true);
        expect(await check('jti-2', 'nightly', T0)).to.equal(false);
        // Another client's equal jti is another token.
        expect(await check('jti-1', 'reporter', T0)).to.equal(false);
        expect(await rows()).to.deep.equal([{ client_id: 'nightly', jti: 'jti-1', revoked_before: null, expires_at: T0 + 5 * MINUTE }]);
      });

      it('is idempotent: revoking a token again records nothing and answers false', async () => {
        const token = { jti: 'jti-1', clientId: 'nightly', expiresAt: new Date(T0 + 5 * MINUTE) };
        expect(await store.revocations.revokeToken(token)).to.equal(true);
        const first = await store.revocations.list();
        expect(await store.revocations.revokeToken(token)).to.equal(false);
        expect(await instance().revocations.revokeToken(token)).to.equal(false);
        expect(await rows()).to.have.length(1);
        expect((await store.revocations.list()).entries).to.deep.equal(first.entries);
        expect((await store.revocations.list({ since: first.cursor })).entries).to.deep.equal([]);
      });

      it('lets exactly one of several instances record one token revoked at the same time', async () => {
        const all = [instance(), instance(), instance(), instance()];
        const token = { jti: 'raced', clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) };
        const results = await Promise.all(all.map((s) => s.revocations.revokeToken(token)));
        expect(results.filter(Boolean)).to.have.length(1);
        expect(await rows()).to.have.length(1);
      });

      it('records nothing for a token that has already expired', async () => {
        expect(await store.revocations.revokeToken({ jti: 'old', clientId: 'nightly', expiresAt: new Date(T0) })).to.equal(false);
        expect(await rows()).to.deep.equal([]);
      });

      it('keeps any jti as data: unicode, quotes, SQL', async () => {
        for (const jti of ['読み取り 🔑', "'; DROP TABLE m2m_revocations; --", 'j'.repeat(255)]) {
          expect(await store.revocations.revokeToken({ jti, clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) }), jti.slice(0, 20)).to.equal(true);
          expect(await check(jti, 'nightly', T0), jti.slice(0, 20)).to.equal(true);
        }
        expect((await store.revocations.list()).entries.map((e) => (e.type === 'token' ? e.jti : ''))).to.deep.equal(
          ['読み取り 🔑', "'; DROP TABLE m2m_revocations; --", 'j'.repeat(255)]);
      });

      it('refuses malformed input with a TypeError and records nothing', async () => {
        const until = new Date(T0 + MINUTE);
        const bad = [
          { jti: '', clientId: 'nightly', expiresAt: until }, { jti: 'j'.repeat(256), clientId: 'nightly', expiresAt: until },
          { jti: 'a\u0000b', clientId: 'nightly', expiresAt: until }, { jti: 'jti', clientId: 'a b', expiresAt: until },
          { jti: 'jti', clientId: 'nightly', expiresAt: new Date(Number.NaN) }, { jti: 'jti', clientId: 'nightly', expiresAt: T0 },
          { jti: 42, clientId: 'nightly', expiresAt: until },
        ];
        for (const token of bad) await rejectionOf(store.revocations.revokeToken(token as never), TypeError);
        await rejectionOf(store.revocations.isRevoked({ jti: 'jti', clientId: 'nightly', issuedAt: 'today' as never }), TypeError);
        expect(await rows()).to.deep.equal([]);
      });
    });

    describe('clients.revokeTokens()', () => {
      it('revokes every token the client was issued until the next whole second, and audits it', async () => {
        await store.clients.create(REGISTRATION);
        now = T0 + 400;
        const cutoff = await store.withActor('ops').clients.revokeTokens('nightly');
        expect(cutoff).to.deep.equal(new Date(T0 + 1000));
        expect(await check('any', 'nightly', T0 - MINUTE)).to.equal(true);
        // iat is in whole seconds: a token issued later in this second cannot be told apart.
        expect(await check('any', 'nightly', T0 + 900)).to.equal(true);
        expect(await check('any', 'nightly', T0 + 1000)).to.equal(false);
        expect(await check('any', 'other', T0)).to.equal(false);
        const [entry] = (await store.audit.list()).filter((e) => e.action === 'client.tokens_revoked');
        expect(entry).to.deep.include({ actor: 'ops', clientId: 'nightly', target: 'nightly', details: { revokedBefore: new Date(T0 + 1000).toISOString() } });
        // The client keeps its secret: it may get new tokens.
        expect((await store.clients.get('nightly'))?.enabled).to.equal(true);
      });

      it('moves the cutoff forward when repeated, never back', async () => {
        await store.clients.create(REGISTRATION);
        now = T0 + 5000;
        await store.clients.revokeTokens('nightly');
        now = T0;
        expect(await store.clients.revokeTokens('nightly')).to.deep.equal(new Date(T0 + 6000));
        now = T0 + 9500;
        expect(await store.clients.revokeTokens('nightly')).to.deep.equal(new Date(T0 + 10_000));
        expect(await rows()).to.deep.equal([{ client_id: 'nightly', jti: null, revoked_before: T0 + 10_000, expires_at: T0 + 10_000 + CUTOFF_RETENTION }]);
      });

      it('refuses an unknown client with ClientNotFoundError, recording and auditing nothing', async () => {
        const audit = await store.audit.list();
        await rejectionOf(store.clients.revokeTokens('nobody'), ClientNotFoundError);
        await rejectionOf(store.clients.revokeTokens("x' or '1'='1"), ClientNotFoundError);
        expect(await rows()).to.deep.equal([]);
        expect(await store.audit.list()).to.deep.equal(audit);
      });
    });

    describe('disabling and deleting a client', () => {
      it('revokes its tokens when it is disabled, in the same change, and not again when it is enabled', async () => {
        await store.clients.create(REGISTRATION);
        now = T0 + 2500;
        await store.clients.update('nightly', { enabled: false });
        expect(await check('before', 'nightly', T0 + 2000)).to.equal(true);
        now = T0 + 4000;
        await store.clients.update('nightly', { enabled: true });
        await store.clients.update('nightly', { name: 'renamed' });
        expect(await check('after', 'nightly', T0 + 4000)).to.equal(false);
        expect(await rows()).to.deep.equal([{ client_id: 'nightly', jti: null, revoked_before: T0 + 3000, expires_at: T0 + 3000 + CUTOFF_RETENTION }]);
      });

      it('leaves no cutoff when the change that disables the client fails', async () => {
        await store.clients.create(REGISTRATION);
        // The audit entry is written last in the change's transaction: without its table, the change fails there.
        await db.knex.schema.renameTable(store.tables.audit, `${store.tables.audit}_away`);
        try {
          await rejectionOf(store.clients.update('nightly', { enabled: false }), Error);
          await rejectionOf(store.clients.delete('nightly'), Error);
          await rejectionOf(store.clients.revokeTokens('nightly'), Error);
        } finally {
          await db.knex.schema.renameTable(`${store.tables.audit}_away`, store.tables.audit);
        }
        expect(await rows()).to.deep.equal([]);
        expect((await store.clients.get('nightly'))?.enabled).to.equal(true);
        expect(await check('any', 'nightly', T0)).to.equal(false);
        expect(await store.revocations.list()).to.deep.equal({ entries: [], cursor: '0', more: false });
      });

      it('keeps the cutoff of a deleted client, so that a client registered again under its id does not revive its tokens', async () => {
        await store.clients.create(REGISTRATION);
        now = T0 + 300;
        expect(await store.clients.delete('nightly')).to.equal(true);
        expect(await store.clients.delete('nightly')).to.equal(false);
        now = T0 + 2000;
        await store.clients.create(REGISTRATION);
        expect(await check('old', 'nightly', T0)).to.equal(true);
        expect(await check('new', 'nightly', T0 + 2000)).to.equal(false);
        expect(await rows()).to.have.length(1);
      });
    });

    describe('list()', () => {
      it('gives the entries in the order they changed, with a cursor for what changes next', async () => {
        await store.clients.create(REGISTRATION);
        await store.revocations.revokeToken({ jti: 'a', clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) });
        await store.clients.revokeTokens('nightly');
        await instance().revocations.revokeToken({ jti: 'b', clientId: 'other', expiresAt: new Date(T0 + 2 * MINUTE) });
        const all = await store.revocations.list();
        expect(all.entries).to.deep.equal([
          { type: 'token', clientId: 'nightly', jti: 'a', expiresAt: new Date(T0 + MINUTE) },
          { type: 'client', clientId: 'nightly', revokedBefore: new Date(T0 + 1000), expiresAt: new Date(T0 + 1000 + CUTOFF_RETENTION) },
          { type: 'token', clientId: 'other', jti: 'b', expiresAt: new Date(T0 + 2 * MINUTE) },
        ]);
        expect(all.more).to.equal(false);
        expect(all.cursor).to.match(/^\d+$/);
        expect(await store.revocations.list({ since: all.cursor })).to.deep.equal({ entries: [], cursor: all.cursor, more: false });

        // A cutoff moved forward is a change: it comes again after the cursor.
        now = T0 + 5000;
        await store.clients.update('nightly', { enabled: false });
        const next = await store.revocations.list({ since: all.cursor });
        expect(next.entries).to.deep.equal([
          { type: 'client', clientId: 'nightly', revokedBefore: new Date(T0 + 6000), expiresAt: new Date(T0 + 6000 + CUTOFF_RETENTION) },
        ]);
        expect(Number(next.cursor)).to.be.greaterThan(Number(all.cursor));
      });

      it('pages with limit and more', async () => {
        for (const jti of ['a', 'b', 'c', 'd', 'e']) await store.revocations.revokeToken({ jti, clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) });
        const seen: string[] = [];
        let since: string | undefined;
        let pages = 0;
        for (let more = true; more; pages++) {
          const page = await store.revocations.list({ limit: 2, ...(since === undefined ? {} : { since }) });
          seen.push(...page.entries.map((e) => (e.type === 'token' ? e.jti : '')));
          ({ more, cursor: since } = page);
        }
        expect([seen, pages]).to.deep.equal([['a', 'b', 'c', 'd', 'e'], 3]);
      });

      it('leaves out expired entries but moves the cursor past them', async () => {
        await store.revocations.revokeToken({ jti: 'short', clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) });
        await store.revocations.revokeToken({ jti: 'long', clientId: 'nightly', expiresAt: new Date(T0 + 3 * MINUTE) });
        now = T0 + 2 * MINUTE;
        const page = await store.revocations.list({ limit: 1 });
        expect([page.entries, page.more]).to.deep.equal([[], true]);
        expect((await store.revocations.list({ since: page.cursor })).entries.map((e) => e.type === 'token' && e.jti)).to.deep.equal(['long']);
      });

      it('sees every change of instances revoking at the same time, each once', async () => {
        const all = [instance(), instance(), instance()];
        await Promise.all(all.flatMap((s, i) => [0, 1, 2].map((j) =>
          s.revocations.revokeToken({ jti: `${i}-${j}`, clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) }))));
        const { entries } = await store.revocations.list();
        expect(entries.map((e) => (e.type === 'token' ? e.jti : '')).sort()).to.deep.equal(['0-0', '0-1', '0-2', '1-0', '1-1', '1-2', '2-0', '2-1', '2-2']);
        const seqs = (await db.knex(store.tables.revocations).pluck('seq')).map(Number);
        expect(new Set(seqs).size).to.equal(9);
      });

      it('refuses a malformed cursor or limit with a TypeError', async () => {
        for (const query of [{ since: '' }, { since: '-1' }, { since: '1 or 1=1' }, { since: '9'.repeat(16) }, { since: 5 }, { limit: 0 }, { limit: 10_001 }, { limit: 1.5 }]) {
          await rejectionOf(store.revocations.list(query as never), TypeError);
        }
      });
    });

    describe('prune()', () => {
      it('removes the expired entries, and only those', async () => {
        await store.clients.create(REGISTRATION);
        await store.revocations.revokeToken({ jti: 'old', clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) });
        await store.revocations.revokeToken({ jti: 'new', clientId: 'nightly', expiresAt: new Date(T0 + 3 * MINUTE) });
        await store.clients.revokeTokens('nightly');
        now = T0 + 2 * MINUTE;
        expect(await store.revocations.prune()).to.equal(1);
        expect((await rows()).map((r) => (r as { jti: string | null }).jti)).to.deep.equal(['new', null]);
        // A cutoff is kept until every token it revokes has expired.
        now = T0 + 1000 + CUTOFF_RETENTION - 1;
        expect(await store.revocations.prune()).to.equal(1);
        expect(await check('any', 'nightly', T0)).to.equal(true);
        now = T0 + 1000 + CUTOFF_RETENTION;
        expect(await store.revocations.prune()).to.equal(1);
        expect(await rows()).to.deep.equal([]);
      });

      it('prunes by itself, in the background, when it records a token', async () => {
        await store.revocations.revokeToken({ jti: 'old', clientId: 'nightly', expiresAt: new Date(T0 + MINUTE) });
        now = T0 + 2 * MINUTE;
        await store.revocations.revokeToken({ jti: 'new', clientId: 'nightly', expiresAt: new Date(T0 + 3 * MINUTE) });
        let left = (await rows()).length;
        for (let i = 0; i < 50 && left > 1; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          left = (await rows()).length;
        }
        expect((await rows()).map((r) => (r as { jti: string }).jti)).to.deep.equal(['new']);
      });
    });
  });
}
