import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import type { ClientJwk } from '../../lib/core/client-jwks.js';
import { InvalidOptionError } from '../../lib/core/options.js';
import { ClientAuthMethodError, type Client } from '../../lib/index.js';
import { migrationSource, tableNames } from '../../lib/storage/migrations.js';
import { createKnexStore, type KnexStore } from '../../lib/storage/knex-store.js';
import { databases, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/rejection.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const jwkOf = (key: KeyObject, kid: string): ClientJwk => ({ ...key.export({ format: 'jwk' }), kid }) as ClientJwk;
const EC = jwkOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, 'ec-1');
const RSA = jwkOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, 'rsa-1');
const NEXT = jwkOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, 'ec-2');
const JWKS_URI = 'https://archiver.internal/.well-known/jwks.json';
const BASE = { name: 'archiver', scopes: ['reports:read'], audiences: ['https://reports.internal'] };

/** The client `create` returns, with everything it is registered with. */
function expectedClient(clientId: string, fields: Partial<Client>): Client {
  return {
    clientId, name: 'archiver', scopes: ['reports:read'], defaultScopes: ['reports:read'], audiences: ['https://reports.internal'],
    defaultAudience: 'https://reports.internal', tokenLifetime: null, grantTypes: ['client_credentials'], enabled: true, claims: {},
    tokenEndpointAuthMethod: null, jwks: null, jwksUri: null, createdAt: new Date(T0), updatedAt: new Date(T0), ...fields,
  };
}

for (const makeDb of databases) {
  describe(`clients with public keys (private_key_jwt) on ${makeDb === databases[0] ? 'sqlite' : 'postgres'}`, function () {
    this.timeout(30_000);
    let db: TestDatabase;
    let store: KnexStore;
    let now: number;

    beforeEach(async () => {
      now = T0;
      db = makeDb();
      store = createKnexStore(db.knex, { tablePrefix: db.prefix, clock: () => now });
      await store.migrate();
    });
    afterEach(async () => {
      await db.destroy();
    });

    /** Every client and secret row, to show that a refused call changed nothing. */
    const rows = async (): Promise<unknown> => ({
      clients: await db.knex(store.tables.clients).select('*').orderBy('client_id'),
      secrets: await db.knex(store.tables.secrets).select('*').orderBy('id'),
    });

    describe('clients.create()', () => {
      it('registers a client with a key set and issues no secret', async () => {
        const created = await store.clients.create({ ...BASE, clientId: 'archiver', jwks: { keys: [EC, RSA] } });
        const client = expectedClient('archiver', { tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [EC, RSA] } });
        expect(created).to.deep.equal({ clientId: 'archiver', client });
        expect(await store.clients.get('archiver')).to.deep.equal(client);
        expect(await store.clients.listSecrets('archiver')).to.deep.equal([]);
        expect(await db.knex(store.tables.secrets).select('*')).to.deep.equal([]);
      });

      it('registers a client with a jwksUri and issues no secret', async () => {
        const created = await store.clients.create({ ...BASE, jwksUri: JWKS_URI });
        const client = expectedClient(created.clientId, { tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: JWKS_URI });
        expect(created).to.deep.equal({ clientId: created.clientId, client });
        expect(await store.clients.get(created.clientId)).to.deep.equal(client);
        expect(await db.knex(store.tables.secrets).select('*')).to.deep.equal([]);
      });

      it('records a secret method given at registration, and issues the secret', async () => {
        const created = await store.clients.create({ ...BASE, clientId: 'poster', tokenEndpointAuthMethod: 'client_secret_post' });
        expect(created.clientSecret).to.match(/^m2m_cs_/);
        expect((await store.clients.get('poster'))?.tokenEndpointAuthMethod).to.equal('client_secret_post');
      });

      const refusals: [string, Record<string, unknown>, string, string][] = [
        ['a private key', { jwks: { keys: [{ ...EC, d: 'AAAA' }] } }, 'jwks.keys[0]', 'jwks.keys[0] holds private key material ("d"): register public keys only'],
        ['a jwksUri over plain http', { jwksUri: 'http://archiver.internal/jwks.json' }, 'jwksUri',
          'jwksUri must use https (http only on localhost, 127.0.0.1 or [::1])'],
        ['both jwks and jwksUri', { jwks: { keys: [EC] }, jwksUri: JWKS_URI }, 'jwksUri', 'give jwks or jwksUri, not both'],
        ['a secretExpiresAt', { jwks: { keys: [EC] }, secretExpiresAt: new Date(T0 + 1000) }, 'secretExpiresAt',
          'secretExpiresAt does not apply to a private_key_jwt client, which has no secret'],
      ];
      for (const [what, fields, option, message] of refusals) {
        it(`refuses ${what} with an InvalidOptionError and stores nothing`, async () => {
          const err = await rejectionOf(store.clients.create({ ...BASE, clientId: 'archiver', ...fields } as never), InvalidOptionError);
          expect([err.option, err.code, err.message]).to.deep.equal([option, 'ERR_M2M_INVALID_OPTION', message]);
          expect(await rows()).to.deep.equal({ clients: [], secrets: [] });
        });
      }
    });

    describe('clients.update()', () => {
      beforeEach(async () => {
        await store.clients.create({ ...BASE, clientId: 'archiver', jwks: { keys: [EC] } });
        await store.clients.create({ ...BASE, clientId: 'reporter' });
        now = T0 + 60_000;
      });

      it('registers the next key beside the current one, then drops the old one', async () => {
        const both = await store.clients.update('archiver', { jwks: { keys: [EC, NEXT] } });
        expect(both).to.deep.equal(expectedClient('archiver', {
          tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [EC, NEXT] }, updatedAt: new Date(T0 + 60_000) }));
        expect(await store.clients.get('archiver')).to.deep.equal(both);
        const next = await store.clients.update('archiver', { jwks: { keys: [NEXT] } });
        expect((await store.clients.get('archiver'))?.jwks).to.deep.equal({ keys: [NEXT] });
        expect(next.jwks).to.deep.equal({ keys: [NEXT] });
      });

      it('switches the client to a jwksUri, dropping the registered keys', async () => {
        await store.clients.update('archiver', { jwksUri: JWKS_URI });
        const stored = await store.clients.get('archiver');
        expect([stored?.tokenEndpointAuthMethod, stored?.jwks, stored?.jwksUri]).to.deep.equal(['private_key_jwt', null, JWKS_URI]);
      });

      it('refuses keys for a secret client with ClientAuthMethodError and changes nothing', async () => {
        const before = await rows();
        const err = await rejectionOf(store.clients.update('reporter', { jwks: { keys: [EC] } }), ClientAuthMethodError);
        expect([err.code, err.clientId, err.method]).to.deep.equal(['ERR_M2M_CLIENT_AUTH_METHOD', 'reporter', null]);
        expect(await rows()).to.deep.equal(before);
      });

      it('refuses another method with ClientAuthMethodError and changes nothing', async () => {
        const before = await rows();
        const err = await rejectionOf(store.clients.update('archiver', { tokenEndpointAuthMethod: 'client_secret_basic' }), ClientAuthMethodError);
        expect([err.clientId, err.method]).to.deep.equal(['archiver', 'private_key_jwt']);
        expect(await rows()).to.deep.equal(before);
      });

      it('refuses a private key in an update and changes nothing', async () => {
        const before = await rows();
        const err = await rejectionOf(store.clients.update('archiver', { jwks: { keys: [EC, { ...NEXT, d: 'AAAA' }] } }), InvalidOptionError);
        expect(err.option).to.equal('jwks.keys[1]');
        expect(await rows()).to.deep.equal(before);
      });
    });

    describe('clients.rotateSecret()', () => {
      it('refuses a private_key_jwt client with ClientAuthMethodError and issues no secret', async () => {
        await store.clients.create({ ...BASE, clientId: 'archiver', jwks: { keys: [EC] } });
        const before = await rows();
        const err = await rejectionOf(store.clients.rotateSecret('archiver'), ClientAuthMethodError);
        expect([err.code, err.method, err.message]).to.deep.equal(['ERR_M2M_CLIENT_AUTH_METHOD', 'private_key_jwt',
          'client "archiver": a private_key_jwt client has no secret: register its next key instead (clients.update with jwks)']);
        expect(await rows()).to.deep.equal(before);
      });
    });

    describe('clients.lookup()', () => {
      it('finds a client from the registry copy, and nothing for an unknown or malformed id', async () => {
        const { client } = await store.clients.create({ ...BASE, clientId: 'archiver', jwksUri: JWKS_URI });
        expect(await store.clients.lookup('archiver')).to.deep.equal(client);
        expect(await store.clients.lookup('nobody')).to.equal(undefined);
        expect(await store.clients.lookup('x'.repeat(500))).to.equal(undefined);
      });
    });

    describe('clients stored before 20261220000000_client_authentication', () => {
      it('read with no method (either secret method) and keep their secret', async () => {
        const t = tableNames(`${db.prefix}old_`);
        const config = { migrationSource: migrationSource(t), tableName: t.migrations };
        await db.knex.migrate.up(config);
        await db.knex.migrate.up(config);
        const old = createKnexStore(db.knex, { tablePrefix: `${db.prefix}old_`, clock: () => T0 });
        expect(await db.knex.schema.hasColumn(t.clients, 'token_endpoint_auth_method')).to.equal(false);
        await db.knex(t.clients).insert({
          client_id: 'legacy', name: 'legacy', scopes: 'a', default_scopes: 'a', audiences: '["aud"]', default_audience: 'aud',
          token_lifetime: null, grant_types: '["client_credentials"]', enabled: true, claims: '{}', created_at: T0, updated_at: T0,
        });
        await old.migrate();
        const legacy = await old.clients.get('legacy');
        expect([legacy?.tokenEndpointAuthMethod, legacy?.jwks, legacy?.jwksUri]).to.deep.equal([null, null, null]);
        const { clientSecret } = await old.clients.rotateSecret('legacy');
        expect((await old.clients.authenticate('legacy', clientSecret)).ok).to.equal(true);
      });
    });
  });
}
