import { expect } from 'chai';
import { createKnexStore, type KnexStore } from '../../lib/index.js';
import { ClientExistsError, ClientNotFoundError } from '../../lib/errors.js';
import { databases, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/rejection.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const REGISTRATION = { clientId: 'nightly', name: 'Nightly report', scopes: ['reports:read'], audiences: ['https://reports.internal'] };

for (const makeDb of databases) {
  const name = makeDb.name.replace(/Database$/, '');

  describe(`the audit trail on ${name}`, function () {
    this.timeout(30_000);
    let db: TestDatabase;
    let now: number;
    let store: KnexStore;

    beforeEach(async () => {
      db = makeDb();
      now = T0;
      store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => now });
      await store.migrate();
    });
    afterEach(async () => {
      await store.clients.flushUsage();
      await db.destroy();
    });

    const summary = async (query = {}) => (await store.audit.list(query)).map((e) => [e.actor, e.action, e.clientId, e.target]);

    it('records each change to a client and its secrets, with the actor, in order, and never a secret', async () => {
      const ops = store.withActor('cli:alice@ops-1');
      const created = await ops.clients.create(REGISTRATION);
      now += 1000;
      await ops.clients.update('nightly', { name: 'Nightly report v2', scopes: ['reports:read', 'reports:list'] });
      await store.withActor('admin-api:deployer').clients.update('nightly', { enabled: false });
      await ops.clients.update('nightly', { enabled: true });
      const rotated = await ops.clients.rotateSecret('nightly', { gracePeriod: 60 });
      await ops.clients.revokeSecret('nightly', created.secret.id);
      await store.clients.delete('nightly');
      expect(await summary()).to.deep.equal([
        ['cli:alice@ops-1', 'client.created', 'nightly', 'nightly'],
        ['cli:alice@ops-1', 'secret.created', 'nightly', created.secret.id],
        ['cli:alice@ops-1', 'client.updated', 'nightly', 'nightly'],
        ['admin-api:deployer', 'client.disabled', 'nightly', 'nightly'],
        ['cli:alice@ops-1', 'client.enabled', 'nightly', 'nightly'],
        ['cli:alice@ops-1', 'secret.rotated', 'nightly', rotated.secret.id],
        ['cli:alice@ops-1', 'secret.revoked', 'nightly', created.secret.id],
        ['app', 'client.deleted', 'nightly', 'nightly'],
      ]);
      const entries = await store.audit.list();
      expect(entries[0]!.details).to.deep.include({ name: 'Nightly report', scopes: ['reports:read'], audiences: ['https://reports.internal'] });
      expect(entries[2]!.details).to.deep.equal({ name: 'Nightly report v2', scopes: ['reports:read', 'reports:list'] });
      expect(entries[2]!.at).to.deep.equal(new Date(T0 + 1000));
      const text = JSON.stringify(entries);
      expect(text).not.to.include(created.clientSecret).and.not.to.include(rotated.clientSecret);
      const hashes = await db.knex(store.tables.secrets).pluck('secret_hash');
      for (const hash of hashes) expect(text).not.to.include(hash);
    });

    it('records signing keys created, revoked and sealed, never the private key', async () => {
      const plain = store.withActor('ops');
      await plain.keys.ensure('ES256', { retention: 120 });
      const rotated = await plain.keys.rotate({ alg: 'RS256', activateAfter: 60, allowPlaintext: true });
      const sealing = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => now, keyEncryptionKey: 'k'.repeat(40) }).withActor('sealer');
      const sealed = await sealing.keys.seal();
      expect(sealed).to.equal(2);
      expect(await plain.keys.revoke(rotated.kid)).to.equal(true);
      expect(await plain.keys.revoke(rotated.kid)).to.equal(false);
      const entries = await store.audit.list();
      expect(entries.map((e) => [e.actor, e.action])).to.deep.equal([
        ['ops', 'key.created'], ['ops', 'key.created'], ['sealer', 'key.sealed'], ['sealer', 'key.sealed'], ['ops', 'key.revoked'],
      ]);
      expect(entries[1]!).to.deep.include({ clientId: null, target: rotated.kid });
      expect(entries[1]!.details).to.deep.equal({ alg: 'RS256', activatesAt: new Date(T0 + 60_000).toISOString(), retention: 120 });
      expect(JSON.stringify(entries)).not.to.match(/PRIVATE KEY|"d":/);
    });

    it('writes nothing for a change that fails', async () => {
      await store.clients.create(REGISTRATION);
      const before = await store.audit.list();
      await rejectionOf(store.clients.create(REGISTRATION), ClientExistsError);
      await rejectionOf(store.clients.update('nobody', { name: 'x' }), ClientNotFoundError);
      await rejectionOf(store.clients.update('nightly', { tokenLifetime: -5 }), TypeError);
      expect(await store.clients.delete('nobody')).to.equal(false);
      expect(await store.clients.revokeSecret('nightly', 'nope')).to.equal(false);
      await store.clients.update('nightly', { name: 'Nightly report' });
      expect(await store.audit.list()).to.deep.equal(before);
    });

    it('keeps a deleted client visible, filters by client, time and id, and pages', async () => {
      await store.clients.create(REGISTRATION);
      now += 60_000;
      await store.clients.create({ ...REGISTRATION, clientId: 'other' });
      await store.clients.delete('nightly');
      expect((await summary({ clientId: 'nightly' })).map((e) => e[1])).to.deep.equal(['client.created', 'secret.created', 'client.deleted']);
      expect((await summary({ since: new Date(T0 + 60_000) })).map((e) => e[3])).to.deep.include.members(['other', 'nightly']);
      const firstTwo = await store.audit.list({ limit: 2 });
      const rest = await store.audit.list({ after: firstTwo[1]!.id });
      expect([...firstTwo, ...rest]).to.deep.equal(await store.audit.list());
      for (const bad of [{ limit: 0 }, { limit: 1001 }, { since: new Date('nope') }, { after: -1 }, { clientId: 'x'.repeat(129) }]) {
        await rejectionOf(store.audit.list(bad as never), TypeError);
      }
    });

    it('prunes entries older than auditRetention, and refuses a malformed actor', async () => {
      const short = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => now, auditRetention: 86_400 });
      await short.clients.create(REGISTRATION);
      now += 86_400_000 + 1;
      await short.clients.update('nightly', { name: 'later' });
      expect(await short.audit.prune()).to.equal(2);
      expect((await summary()).map((e) => e[1])).to.deep.equal(['client.updated']);
      for (const actor of ['', 'a'.repeat(201), 'evil\nactor', 42]) expect(() => store.withActor(actor as string)).to.throw(TypeError, /actor/);
    });
  });
}
