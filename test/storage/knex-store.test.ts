import { Console } from 'node:console';
import { createHash, createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { format, inspect } from 'node:util';
import { expect } from 'chai';
import type { Knex } from 'knex';
import type { Client, ClientRegistration } from '../../lib/core/client.js';
import { toPublicJwk, type SigningAlgorithm } from '../../lib/core/keys.js';
import { DEFAULT_KEY_RETENTION, type SigningKeyRecord } from '../../lib/core/key-set.js';
import { generateClientSecret, SECRET_PREFIX } from '../../lib/core/secrets.js';
import type { AuthenticationFailure } from '../../lib/core/store.js';
import { ClientNotFoundError } from '../../lib/core/store.js';
import { ClientExistsError, KeyDecryptionError, M2MError, UnsupportedKeyError } from '../../lib/index.js';
import { RESERVED_CLAIMS } from '../../lib/core/token.js';
import { createKnexStore, type KnexStore, type KnexStoreOptions } from '../../lib/storage/knex-store.js';
import { databases, type TestDatabase } from '../support/db.js';
import { InvalidOptionError } from '../../lib/core/options.js';

/** A keyEncryptionKey as `openssl rand -base64 32` prints one. */
const KEK = 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=';
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TEN_KB = 'x'.repeat(10_240);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const sha256Hex = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');
const num = (value: unknown): number | null => (value === null ? null : Number(value));

/** A registration that exercises every field and every awkward value. */
const FULL: ClientRegistration = {
  clientId: 'svc-reports',
  name: 'Nightly report — Zürich ✓ "quoted" \\ back',
  scopes: ['reports:read', 'reports:write', "odd!#$%&'()*+,-./:;<=>?@[]^_`{|}~"],
  defaultScopes: ['reports:write'],
  audiences: ['https://reports.internal', 'urn:example:billing', 'an audience with spaces'],
  defaultAudience: null,
  tokenLifetime: 86400,
  grantTypes: ['client_credentials'],
  enabled: false,
  claims: {
    tenant: 'acme',
    nested: { list: [1, 'two', null, true, 1.5], empty: {}, emptyList: [] },
    unicode: '読み取り 🔑',
    quote: 'it\'s "quoted" \\ back\nnewline',
    big: 9007199254740991,
    negative: -0.25,
    sql: "'; DROP TABLE m2m_clients; --",
  },
};

const MINIMAL: ClientRegistration = {
  name: 'minimal',
  scopes: [],
  audiences: ['https://a.internal'],
};

function storeName(make: () => TestDatabase): string {
  return make.name.replace(/Database$/, '');
}

/** Every table of this test's prefix, with every row, for looking through everything stored. */
async function dumpTables(db: TestDatabase): Promise<Record<string, unknown[]>> {
  const names: string[] = db.name === 'sqlite'
    ? (await db.knex.raw<{ name: string }[]>("select name from sqlite_master where type = 'table' and name like ?", [`${db.prefix}%`]))
      .map((r) => r.name)
    : (await db.knex.raw<{ rows: { tablename: string }[] }>(
      "select tablename from pg_tables where schemaname = 'public' and tablename like ?", [`${db.prefix}%`])).rows
      .map((r) => r.tablename);
  const dump: Record<string, unknown[]> = {};
  for (const name of names) dump[name] = await db.knex(name).select('*');
  return dump;
}

for (const makeDb of databases) {
  describe(`createKnexStore() on ${storeName(makeDb)}`, function () {
    this.timeout(30_000);

    let db: TestDatabase;
    let store: KnexStore;
    let now: number;
    const clock = (): number => now;

    function makeStore(options: KnexStoreOptions = {}): KnexStore {
      return createKnexStore(db.knex, { tablePrefix: db.prefix, clock, ...options });
    }

    beforeEach(async () => {
      now = T0;
      db = makeDb();
      store = makeStore();
      await store.migrate();
    });

    afterEach(async () => {
      await store.clients.flushUsage();
      await db.destroy();
    });

    const count = async (table: string): Promise<number> => (await db.knex(table).select('*')).length;

    /** Counts the SQL statements `fn` sends. */
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

    describe('options', () => {
      it('names its tables after the prefix', () => {
        expect(store.tables).to.deep.equal({
          clients: `${db.prefix}clients`,
          secrets: `${db.prefix}client_secrets`,
          keys: `${db.prefix}signing_keys`,
          revisions: `${db.prefix}revisions`,
          audit: `${db.prefix}audit_log`,
          usedAssertions: `${db.prefix}used_assertions`,
          changes: `${db.prefix}client_changes`,
          revocations: `${db.prefix}revocations`,
          revocationCounters: `${db.prefix}revocation_counters`,
          migrations: `${db.prefix}migrations`,
        });
      });

      it('uses the m2m_ prefix by default', () => {
        expect(createKnexStore(db.knex).tables).to.deep.equal({
          clients: 'm2m_clients', secrets: 'm2m_client_secrets', keys: 'm2m_signing_keys', revisions: 'm2m_revisions', audit: 'm2m_audit_log',
          usedAssertions: 'm2m_used_assertions', changes: 'm2m_client_changes', revocations: 'm2m_revocations',
          revocationCounters: 'm2m_revocation_counters', migrations: 'm2m_migrations',
        });
      });

      it('rejects something that is not a Knex instance with an InvalidOptionError', () => {
        for (const value of [undefined, null, {}, () => undefined, 'knex']) {
          expect(() => createKnexStore(value as unknown as Knex)).to.throw(InvalidOptionError, 'createKnexStore() needs a Knex instance');
        }
      });

      for (const prefix of ['', '1m2m_', 'm2m-', 'm2m_; DROP TABLE m2m_clients; --', 'm2m."x"', 'präfix_', 'p'.repeat(32)]) {
        it(`rejects the tablePrefix ${JSON.stringify(prefix.slice(0, 40))} with an InvalidOptionError`, () => {
          expect(() => createKnexStore(db.knex, { tablePrefix: prefix })).to.throw(InvalidOptionError, /tablePrefix/);
        });
      }

      it('rejects a clock that is not a function with an InvalidOptionError', () => {
        expect(() => createKnexStore(db.knex, { clock: 5 as unknown as () => number })).to.throw(InvalidOptionError, /clock/);
      });

      it('rejects a negative, non-finite or non-numeric lastUsedResolution with an InvalidOptionError', () => {
        for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, '60', null]) {
          expect(() => createKnexStore(db.knex, { lastUsedResolution: value as number })).to.throw(InvalidOptionError, /lastUsedResolution/);
        }
      });
    });

    describe('clients.create()', () => {
      it('returns the client, its first secret in plain text and the secret\'s metadata', async () => {
        const issued = await store.clients.create(FULL);
        expect(issued.clientSecret).to.match(/^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/);
        expect(issued.secret.id).to.be.a('string').and.to.have.length.within(1, 64);
        expect(issued).to.deep.equal({
          clientId: 'svc-reports',
          clientSecret: issued.clientSecret,
          secret: {
            id: issued.secret.id,
            hint: issued.clientSecret.slice(0, SECRET_PREFIX.length + 4),
            createdAt: new Date(T0),
            expiresAt: null,
            lastUsedAt: null,
          },
          client: {
            clientId: 'svc-reports',
            name: FULL.name,
            scopes: [...FULL.scopes],
            defaultScopes: ['reports:write'],
            audiences: [...FULL.audiences],
            defaultAudience: null,
            tokenLifetime: 86400,
            grantTypes: ['client_credentials'],
            enabled: false,
            claims: FULL.claims,
            tokenEndpointAuthMethod: null,
            jwks: null,
            jwksUri: null,
            createdAt: new Date(T0),
            updatedAt: new Date(T0),
          },
        });
      });

      it('round-trips every field exactly through get()', async () => {
        const { client } = await store.clients.create(FULL);
        const stored = await store.clients.get('svc-reports');
        expect(stored).to.deep.equal(client);
        expect(stored?.enabled).to.equal(false);
        expect(stored?.defaultAudience).to.equal(null);
        expect(stored?.tokenLifetime).to.equal(86400);
        expect(stored?.createdAt).to.be.instanceOf(Date);
      });

      it('round-trips the defaults of a minimal registration through get()', async () => {
        const { clientId, client } = await store.clients.create(MINIMAL);
        expect(clientId).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const expected: Client = {
          clientId,
          name: 'minimal',
          scopes: [],
          defaultScopes: [],
          audiences: ['https://a.internal'],
          defaultAudience: 'https://a.internal',
          tokenLifetime: null,
          grantTypes: ['client_credentials'],
          enabled: true,
          claims: {},
          tokenEndpointAuthMethod: null,
          jwks: null,
          jwksUri: null,
          createdAt: new Date(T0),
          updatedAt: new Date(T0),
        };
        expect(client).to.deep.equal(expected);
        expect(await store.clients.get(clientId)).to.deep.equal(expected);
      });

      it('accepts a secretExpiresAt for the first secret', async () => {
        const { clientId, secret } = await store.clients.create({ ...MINIMAL, secretExpiresAt: new Date(T0 + DAY) });
        expect(secret.expiresAt).to.deep.equal(new Date(T0 + DAY));
        expect((await store.clients.listSecrets(clientId))[0]?.expiresAt).to.deep.equal(new Date(T0 + DAY));
      });

      it('rejects a duplicate clientId with ClientExistsError (ERR_M2M_CLIENT_EXISTS) and leaves the first client unchanged', async () => {
        const first = await store.clients.create(FULL);
        now = T0 + MINUTE;
        let caught: unknown;
        try {
          await store.clients.create({ ...MINIMAL, clientId: 'svc-reports', name: 'impostor' });
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ClientExistsError).and.instanceOf(M2MError).and.not.instanceOf(TypeError);
        const conflict = caught as ClientExistsError;
        expect([conflict.code, conflict.name, conflict.clientId, conflict.message]).to.deep.equal(
          ['ERR_M2M_CLIENT_EXISTS', 'ClientExistsError', 'svc-reports', 'a client with id "svc-reports" already exists']);
        // The database's unique-key error, kept for the host's logs.
        expect(conflict.cause).to.be.instanceOf(Error);
        expect(await store.clients.get('svc-reports')).to.deep.equal(first.client);
        expect(await count(store.tables.clients)).to.equal(1);
        expect(await count(store.tables.secrets)).to.equal(1);
        const auth = await store.clients.authenticate('svc-reports', first.clientSecret);
        expect(auth).to.deep.equal({ ok: false, reason: 'client_disabled' });
      });

      it('keeps client ids case-sensitive', async () => {
        await store.clients.create({ ...MINIMAL, clientId: 'svc', name: 'lower' });
        await store.clients.create({ ...MINIMAL, clientId: 'SVC', name: 'upper' });
        expect((await store.clients.get('svc'))?.name).to.equal('lower');
        expect((await store.clients.get('SVC'))?.name).to.equal('upper');
        expect(await store.clients.get('Svc')).to.equal(undefined);
      });

      describe('rejects with a TypeError and stores nothing', () => {
        const cases: readonly [string, Record<string, unknown>, RegExp][] = [
          ['a scope with a space', { scopes: ['reports read'] }, /^scopes/],
          ['a scope with a double quote', { scopes: ['reports"read'] }, /^scopes/],
          ['a scope with a backslash', { scopes: ['reports\\read'] }, /^scopes/],
          ['a scope with a control character', { scopes: ['reports\x00read'] }, /^scopes/],
          ['a scope with a line feed', { scopes: ['reports\nread'] }, /^scopes/],
          ['a scope with unicode', { scopes: ['données:lire'] }, /^scopes/],
          ['a 10 kB scope', { scopes: [TEN_KB] }, /^scopes/],
          ['a malformed default scope', { scopes: ['a'], defaultScopes: ['a b'] }, /^defaultScopes/],
          ['a default scope not among the scopes', { scopes: ['a'], defaultScopes: ['b'] }, /default scope "b"/],
          ['empty audiences', { audiences: [] }, /^audiences/],
          ['a 10 kB audience', { audiences: [TEN_KB] }, /audience/],
          ['an audience with a control character', { audiences: ['https://a\r\nSet-Cookie: x'] }, /audience/],
          ['a defaultAudience not among the audiences', { defaultAudience: 'https://elsewhere' }, /defaultAudience/],
          ['a 10 kB defaultAudience', { defaultAudience: TEN_KB }, /defaultAudience/],
          ['a name of 201 characters', { name: 'n'.repeat(201) }, /^name/],
          ['a 10 kB name', { name: TEN_KB }, /^name/],
          ['an empty name', { name: '' }, /^name/],
          ['a 10 kB clientId', { clientId: TEN_KB }, /clientId/],
          ['a clientId with a space', { clientId: 'svc reports' }, /clientId/],
          ['a clientId with unicode', { clientId: 'sérvice' }, /clientId/],
          ['10 kB claims', { claims: { blob: TEN_KB } }, /claims/],
          ['a tokenLifetime of 0', { tokenLifetime: 0 }, /tokenLifetime/],
          ['a tokenLifetime over a day', { tokenLifetime: 86401 }, /tokenLifetime/],
          ['a string enabled', { enabled: 'false' }, /enabled/],
          ['another grant type', { grantTypes: ['password'] }, /grantTypes/],
          ['a string secretExpiresAt', { secretExpiresAt: '2030-01-01' }, /secretExpiresAt/],
          ['an invalid secretExpiresAt', { secretExpiresAt: new Date(Number.NaN) }, /secretExpiresAt/],
          ...[...RESERVED_CLAIMS].map((name): [string, Record<string, unknown>, RegExp] =>
            [`the reserved claim name ${name}`, { claims: { tenant: 'acme', [name]: 'x' } }, new RegExp(`reserved claim "${name}"`)]),
        ];
        for (const [label, fields, message] of cases) {
          it(`for ${label}`, async () => {
            let caught: unknown;
            try {
              await store.clients.create({ ...MINIMAL, clientId: 'svc', ...fields } as unknown as ClientRegistration);
            } catch (err) {
              caught = err;
            }
            expect(caught).to.be.instanceOf(TypeError);
            expect((caught as Error).message).to.match(message);
            expect(await count(store.tables.clients)).to.equal(0);
            expect(await count(store.tables.secrets)).to.equal(0);
          });
        }
      });
    });

    describe('clients.get()', () => {
      it('returns undefined for an unknown client', async () => {
        expect(await store.clients.get('nobody')).to.equal(undefined);
      });

      it('returns undefined for an id that could not be a client id', async () => {
        await store.clients.create(MINIMAL);
        for (const id of ['', ' ', TEN_KB, 'a\x00', 42 as unknown as string]) {
          expect(await store.clients.get(id)).to.equal(undefined);
        }
      });
    });

    describe('ids holding SQL', () => {
      const hostile = [
        "x' OR '1'='1",
        `'; DROP TABLE m2m_clients; --`,
        "x'OR'1'='1",
        "';DROP/**/TABLE/**/m2m_clients;--",
        'svc"--',
        'svc\\',
        '%',
        '_',
      ];

      it('treats them as data in get(), update(), delete(), listSecrets(), rotateSecret() and authenticate()', async () => {
        const victim = await store.clients.create({ ...MINIMAL, clientId: 'victim' });
        const tableDrop = `';DROP/**/TABLE/**/${store.tables.clients};--`;
        for (const id of [...hostile, tableDrop]) {
          expect(await store.clients.get(id), id).to.equal(undefined);
          expect(await store.clients.delete(id), id).to.equal(false);
          for (const attempt of [
            () => store.clients.update(id, { name: 'owned' }),
            () => store.clients.listSecrets(id),
            () => store.clients.rotateSecret(id),
          ]) {
            let caught: unknown;
            try {
              await attempt();
            } catch (err) {
              caught = err;
            }
            expect(caught, id).to.be.instanceOf(ClientNotFoundError);
          }
          const auth = await store.clients.authenticate(id, victim.clientSecret);
          expect(auth.ok, id).to.equal(false);
        }
        expect(await db.knex.schema.hasTable(store.tables.clients)).to.equal(true);
        expect(await db.knex.schema.hasTable(store.tables.secrets)).to.equal(true);
        expect(await store.clients.get('victim')).to.deep.equal(victim.client);
        expect(await store.clients.authenticate('victim', victim.clientSecret)).to.deep.equal({ ok: true, client: victim.client });
      });

      it('stores and finds a client whose id holds SQL, and only that client', async () => {
        const tableDrop = `';DROP/**/TABLE/**/${store.tables.clients};--`;
        const a = await store.clients.create({ ...MINIMAL, clientId: "x'OR'1'='1", name: 'quote' });
        const b = await store.clients.create({ ...MINIMAL, clientId: tableDrop, name: 'drop' });
        const c = await store.clients.create({ ...MINIMAL, clientId: 'plain', name: 'plain' });
        expect(await store.clients.get("x'OR'1'='1")).to.deep.equal(a.client);
        expect(await store.clients.get(tableDrop)).to.deep.equal(b.client);
        expect(await store.clients.get("x'OR'1'='2")).to.equal(undefined);
        expect(await store.clients.get('%')).to.equal(undefined);
        expect(await store.clients.authenticate(tableDrop, b.clientSecret)).to.deep.equal({ ok: true, client: b.client });
        expect(await store.clients.authenticate("x'OR'1'='1", b.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
        expect(await store.clients.delete(tableDrop)).to.equal(true);
        expect(await db.knex.schema.hasTable(store.tables.clients)).to.equal(true);
        expect((await store.clients.list()).map((x) => x.clientId)).to.deep.equal(["x'OR'1'='1", 'plain'].sort());
        expect(await store.clients.get('plain')).to.deep.equal(c.client);
      });

      it('treats a secret id holding SQL as data in revokeSecret()', async () => {
        const issued = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        for (const id of ["x' OR '1'='1", "' OR 1=1 --", '%', TEN_KB]) {
          expect(await store.clients.revokeSecret('svc', id), id).to.equal(false);
        }
        expect(await count(store.tables.secrets)).to.equal(1);
        expect((await store.clients.authenticate('svc', issued.clientSecret)).ok).to.equal(true);
      });
    });

    describe('clients.list()', () => {
      it('returns an empty list when there are no clients', async () => {
        expect(await store.clients.list()).to.deep.equal([]);
      });

      it('returns every client ordered by id', async () => {
        const ids = ['b', 'B', 'a', 'A1', '_x', '~z', 'a-2', 'a.1'];
        const created: Client[] = [];
        for (const clientId of ids) created.push((await store.clients.create({ ...FULL, clientId })).client);
        const byId = [...created].sort((x, y) => (x.clientId < y.clientId ? -1 : 1));
        expect(await store.clients.list()).to.deep.equal(byId);
      });
    });

    describe('clients.update()', () => {
      it('changes the fields given, keeps the rest, and moves updatedAt only', async () => {
        const { client } = await store.clients.create(FULL);
        now = T0 + HOUR;
        const updated = await store.clients.update('svc-reports', {
          name: 'renamed',
          scopes: ['reports:read', 'audit'],
          defaultScopes: ['audit'],
          defaultAudience: 'urn:example:billing',
          tokenLifetime: null,
          enabled: true,
          claims: { region: 'eu', list: [] },
        });
        const expected: Client = {
          ...client,
          name: 'renamed',
          scopes: ['reports:read', 'audit'],
          defaultScopes: ['audit'],
          defaultAudience: 'urn:example:billing',
          tokenLifetime: null,
          enabled: true,
          claims: { region: 'eu', list: [] },
          createdAt: new Date(T0),
          updatedAt: new Date(T0 + HOUR),
        };
        expect(updated).to.deep.equal(expected);
        expect(await store.clients.get('svc-reports')).to.deep.equal(expected);
      });

      it('turns enabled off and on', async () => {
        await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        expect((await store.clients.update('svc', { enabled: false })).enabled).to.equal(false);
        expect((await store.clients.get('svc'))?.enabled).to.equal(false);
        expect((await store.clients.update('svc', { enabled: true })).enabled).to.equal(true);
        expect((await store.clients.get('svc'))?.enabled).to.equal(true);
      });

      it('sets a null defaultAudience and a tokenLifetime', async () => {
        await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        await store.clients.update('svc', { defaultAudience: null, tokenLifetime: 1 });
        const stored = await store.clients.get('svc');
        expect(stored?.defaultAudience).to.equal(null);
        expect(stored?.tokenLifetime).to.equal(1);
      });

      it('rejects an unknown client with ClientNotFoundError', async () => {
        let caught: unknown;
        try {
          await store.clients.update('nobody', { name: 'x' });
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ClientNotFoundError).and.instanceOf(M2MError);
        const missing = caught as ClientNotFoundError;
        expect([missing.code, missing.name, missing.clientId, missing.message]).to.deep.equal(
          ['ERR_M2M_CLIENT_NOT_FOUND', 'ClientNotFoundError', 'nobody', 'no client with id "nobody"']);
      });

      for (const [label, update] of [
        ['a scope with a space', { scopes: ['a b'] }],
        ['empty audiences', { audiences: [] }],
        ['a reserved claim', { claims: { iss: 'https://evil' } }],
        ['a 10 kB name', { name: TEN_KB }],
        ['a string enabled', { enabled: 'yes' }],
      ] as const) {
        it(`rejects ${label} with a TypeError and leaves the client unchanged`, async () => {
          const { client } = await store.clients.create(FULL);
          now = T0 + HOUR;
          let caught: unknown;
          try {
            await store.clients.update('svc-reports', update as unknown as Parameters<KnexStore['clients']['update']>[1]);
          } catch (err) {
            caught = err;
          }
          expect(caught).to.be.instanceOf(TypeError);
          expect(await store.clients.get('svc-reports')).to.deep.equal(client);
        });
      }
    });

    describe('clients.delete()', () => {
      it('removes the client and every one of its secrets', async () => {
        const issued = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        now = T0 + MINUTE;
        await store.clients.rotateSecret('svc');
        const other = await store.clients.create({ ...MINIMAL, clientId: 'other' });
        expect(await count(store.tables.secrets)).to.equal(3);
        expect(await store.clients.delete('svc')).to.equal(true);
        expect(await store.clients.get('svc')).to.equal(undefined);
        expect(await db.knex(store.tables.secrets).where({ client_id: 'svc' }).select('*')).to.deep.equal([]);
        expect(await count(store.tables.secrets)).to.equal(1);
        expect(await store.clients.authenticate('svc', issued.clientSecret)).to.deep.equal({ ok: false, reason: 'unknown_client' });
        expect((await store.clients.authenticate('other', other.clientSecret)).ok).to.equal(true);
      });

      it('returns false for an unknown client', async () => {
        expect(await store.clients.delete('nobody')).to.equal(false);
      });

      it('returns false the second time', async () => {
        await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        expect(await store.clients.delete('svc')).to.equal(true);
        expect(await store.clients.delete('svc')).to.equal(false);
      });

      it('lets the id be registered again with a fresh secret', async () => {
        const first = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        await store.clients.delete('svc');
        const second = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        expect(await store.clients.authenticate('svc', first.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
        expect((await store.clients.authenticate('svc', second.clientSecret)).ok).to.equal(true);
      });
    });

    describe('secrets at rest', () => {
      it('stores only the SHA-256 hash of the secret and a short hint', async () => {
        const { clientSecret, secret } = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        const rows = await db.knex(store.tables.secrets).select('*') as Record<string, unknown>[];
        expect(rows).to.have.length(1);
        const row = rows[0] as Record<string, unknown>;
        expect({
          ...row, created_at: num(row.created_at), expires_at: num(row.expires_at), last_used_at: num(row.last_used_at),
        }).to.deep.equal({
          id: secret.id,
          client_id: 'svc',
          secret_hash: sha256Hex(clientSecret),
          hint: clientSecret.slice(0, 11),
          created_at: T0,
          expires_at: null,
          last_used_at: null,
        });
      });

      it('keeps the plain secret out of every table, in any encoding', async () => {
        const issued = await store.clients.create(FULL);
        now = T0 + MINUTE;
        const rotated = await store.clients.rotateSecret('svc-reports');
        await store.keys.ensure('ES256');
        const dump = JSON.stringify(await dumpTables(db));
        expect(dump).to.include(sha256Hex(issued.clientSecret));
        for (const secret of [issued.clientSecret, rotated.clientSecret]) {
          const body = secret.slice(SECRET_PREFIX.length, SECRET_PREFIX.length + 43);
          const bytes = Buffer.from(body, 'base64url');
          expect(dump).to.not.include(secret);
          expect(dump).to.not.include(body);
          expect(dump.toLowerCase()).to.not.include(bytes.toString('hex'));
          expect(dump).to.not.include(bytes.toString('base64').replace(/=+$/, ''));
          // Beyond the 4-character hint, no 10-character stretch of the random part is stored.
          for (let i = 0; i + 10 <= body.length; i++) {
            expect(dump, `secret characters ${i}..${i + 10}`).to.not.include(body.slice(i, i + 10));
          }
        }
      });

      it('never returns the hash from listSecrets()', async () => {
        const { clientSecret, secret } = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        const listed = await store.clients.listSecrets('svc');
        expect(listed).to.deep.equal([secret]);
        expect(JSON.stringify(listed)).to.not.include(sha256Hex(clientSecret));
      });
    });

    describe('clients.authenticate()', () => {
      let issued: Awaited<ReturnType<KnexStore['clients']['create']>>;

      beforeEach(async () => {
        issued = await store.clients.create({ ...FULL, enabled: true });
      });

      it('accepts the right secret and returns the client', async () => {
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret))
          .to.deep.equal({ ok: true, client: await store.clients.get('svc-reports') });
      });

      it('gives unknown_client for a client that does not exist', async () => {
        expect(await store.clients.authenticate('nobody', issued.clientSecret)).to.deep.equal({ ok: false, reason: 'unknown_client' });
      });

      it('gives unknown_client for the right secret under the id in another case', async () => {
        expect(await store.clients.authenticate('SVC-REPORTS', issued.clientSecret))
          .to.deep.equal({ ok: false, reason: 'unknown_client' });
      });

      it('gives invalid_secret for a well-formed wrong secret', async () => {
        expect(await store.clients.authenticate('svc-reports', generateClientSecret()))
          .to.deep.equal({ ok: false, reason: 'invalid_secret' });
      });

      it('gives invalid_secret for another client\'s secret', async () => {
        const other = await store.clients.create({ ...MINIMAL, clientId: 'other' });
        expect(await store.clients.authenticate('svc-reports', other.clientSecret))
          .to.deep.equal({ ok: false, reason: 'invalid_secret' });
        expect(await store.clients.authenticate('other', issued.clientSecret))
          .to.deep.equal({ ok: false, reason: 'invalid_secret' });
      });

      it('gives invalid_secret when the client has no secret left', async () => {
        await store.clients.revokeSecret('svc-reports', issued.secret.id);
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret))
          .to.deep.equal({ ok: false, reason: 'invalid_secret' });
      });

      it('gives malformed_credentials for the stored hash presented as the secret', async () => {
        const hash = sha256Hex(issued.clientSecret);
        expect(await store.clients.authenticate('svc-reports', hash)).to.deep.equal({ ok: false, reason: 'malformed_credentials' });
      });

      for (const [label, secret] of [
        ['an arbitrary string', 'wrong'],
        ['the empty string', ''],
        ['a secret with surrounding space', ' SECRET '],
        ['a secret with one character changed', 'CHANGED'],
        ['a truncated secret', 'TRUNCATED'],
        ['a 10 kB secret', TEN_KB],
        ['a secret holding SQL', "' OR '1'='1"],
      ] as const) {
        it(`gives malformed_credentials for ${label}`, async () => {
          const real = issued.clientSecret;
          const value = secret === ' SECRET ' ? ` ${real} `
            : secret === 'CHANGED' ? `${real.slice(0, 20)}${real[20] === 'A' ? 'B' : 'A'}${real.slice(21)}`
              : secret === 'TRUNCATED' ? real.slice(0, -1) : secret;
          expect(await store.clients.authenticate('svc-reports', value))
            .to.deep.equal({ ok: false, reason: 'malformed_credentials' });
        });
      }

      it('gives malformed_credentials for a client id that could not exist', async () => {
        for (const id of ['', 'svc reports', TEN_KB, 'svc\n']) {
          expect(await store.clients.authenticate(id, issued.clientSecret), JSON.stringify(id.slice(0, 20)))
            .to.deep.equal({ ok: false, reason: 'malformed_credentials' });
        }
      });

      it('gives client_disabled for the right secret of a disabled client', async () => {
        await store.clients.update('svc-reports', { enabled: false });
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret))
          .to.deep.equal({ ok: false, reason: 'client_disabled' });
      });

      it('gives invalid_secret, not client_disabled, for a wrong secret of a disabled client', async () => {
        await store.clients.update('svc-reports', { enabled: false });
        expect(await store.clients.authenticate('svc-reports', generateClientSecret()))
          .to.deep.equal({ ok: false, reason: 'invalid_secret' });
      });

      it('accepts a secret until its expiry and gives expired_secret from that instant', async () => {
        const { clientSecret } = await store.clients.create({ ...MINIMAL, clientId: 'svc', secretExpiresAt: new Date(T0 + HOUR) });
        now = T0 + HOUR - 1;
        expect((await store.clients.authenticate('svc', clientSecret)).ok).to.equal(true);
        now = T0 + HOUR;
        expect(await store.clients.authenticate('svc', clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
        now = T0 + 2 * DAY;
        expect(await store.clients.authenticate('svc', clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
      });

      /**
       * Makes one client of each failing kind, then authenticates once per outcome and returns,
       * per outcome, the first word of each SQL statement sent (the usage write included). With
       * `warm`, each outcome is run once before, unmeasured, so the cache holds every client id.
       */
      async function statementsPerOutcome(warm = false): Promise<Record<string, string[]>> {
        const off = await store.clients.create({ ...MINIMAL, clientId: 'off', enabled: false });
        const expiring = await store.clients.create({ ...MINIMAL, clientId: 'old', secretExpiresAt: new Date(T0 + 1) });
        now = T0 + 2;
        await store.clients.authenticate('warm-up', issued.clientSecret);
        const outcomes: [string, string, AuthenticationFailure | 'ok'][] = [
          ['nobody', issued.clientSecret, 'unknown_client'],
          ['svc-reports', generateClientSecret(), 'invalid_secret'],
          ['old', expiring.clientSecret, 'expired_secret'],
          ['off', off.clientSecret, 'client_disabled'],
          ['svc-reports', issued.clientSecret, 'ok'],
        ];
        const seen: Record<string, string[]> = {};
        if (warm) for (const [id, secret] of outcomes) await store.clients.authenticate(id, secret);
        await store.clients.flushUsage();
        for (const [id, secret, outcome] of outcomes) {
          let result: Awaited<ReturnType<KnexStore['clients']['authenticate']>> | undefined;
          const sql = await queriesDuring(async () => {
            result = await store.clients.authenticate(id, secret);
            await store.clients.flushUsage();
          });
          expect(result?.ok ? 'ok' : (result as { reason: string } | undefined)?.reason).to.equal(outcome);
          seen[outcome] = sql.map((q) => q.split(' ')[0]?.toLowerCase() ?? '');
        }
        return seen;
      }

      it('with clientCacheTtl 0, sends exactly one query however the check ends, plus the usage write on success', async () => {
        store = makeStore({ clientCacheTtl: 0 });
        expect(await statementsPerOutcome()).to.deep.equal({
          unknown_client: ['select'], invalid_secret: ['select'], expired_secret: ['select'], client_disabled: ['select'],
          ok: ['select', 'update'],
        });
      });

      it('answers every outcome from memory once each client id has been looked up: no query but the usage write', async () => {
        // A poll interval longer than the test: no change-log read lands among the counted queries.
        store = makeStore({ clientCacheTtl: 3600, changePollInterval: 60, lastUsedResolution: 0 });
        const first = await queriesDuring(() => store.clients.authenticate('nobody', issued.clientSecret));
        // The change log's position, then the client.
        expect(first.map((q) => /client_changes/.test(q) ? 'log' : 'client')).to.deep.equal(['log', 'client']);
        expect(await statementsPerOutcome(true)).to.deep.equal({
          unknown_client: [], invalid_secret: [], expired_secret: [], client_disabled: [], ok: ['update'],
        });
      });

      it('sees a change made through another store (another instance, the CLI) once clientCacheTtl has passed', async () => {
        store = makeStore({ clientCacheTtl: 0.05 });
        const other = makeStore();
        expect((await store.clients.authenticate('svc-reports', issued.clientSecret)).ok).to.equal(true);
        await other.clients.update('svc-reports', { enabled: false });
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret)).to.deep.equal({ ok: false, reason: 'client_disabled' });
        const { clientSecret } = await other.clients.rotateSecret('svc-reports', { gracePeriod: 0 });
        await other.clients.update('svc-reports', { enabled: true });
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
        expect((await store.clients.authenticate('svc-reports', clientSecret)).ok).to.equal(true);
        await other.clients.delete('svc-reports');
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(await store.clients.authenticate('svc-reports', clientSecret)).to.deep.equal({ ok: false, reason: 'unknown_client' });
      });

      it('sees its own changes at once, whatever clientCacheTtl says', async () => {
        store = makeStore({ clientCacheTtl: 3600 });
        expect((await store.clients.authenticate('svc-reports', issued.clientSecret)).ok).to.equal(true);
        await store.clients.update('svc-reports', { enabled: false });
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret)).to.deep.equal({ ok: false, reason: 'client_disabled' });
        const [secret] = await store.clients.listSecrets('svc-reports');
        await store.clients.update('svc-reports', { enabled: true });
        await store.clients.revokeSecret('svc-reports', secret?.id ?? '');
        expect(await store.clients.authenticate('svc-reports', issued.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
      });

      it('reads only the change log, every changePollInterval, while nothing changes', async () => {
        store = makeStore({ clientCacheTtl: 3600, changePollInterval: 0.05 });
        await store.clients.authenticate('svc-reports', issued.clientSecret);
        await store.clients.flushUsage();
        const sql = await queriesDuring(() => new Promise((resolve) => { setTimeout(resolve, 400); }));
        expect(sql.length).to.be.within(3, 9);
        for (const q of sql) expect(q).to.match(/^select .* from .*client_changes.* where .*seq/i);
        expect((await store.clients.authenticate('svc-reports', issued.clientSecret)).ok).to.equal(true);
      });

      it('shares one load of a client between concurrent authentications', async () => {
        store = makeStore({ clientCacheTtl: 3600, changePollInterval: 60 });
        const sql = await queriesDuring(() => Promise.all(Array.from({ length: 20 }, () => store.clients.authenticate('svc-reports', issued.clientSecret))));
        // The change log's position, then the client, once. (Another test's store on the same
        // Knex may poll the change log meanwhile: its reads are not this store's loads.)
        const loads = sql.filter((q) => /^select/i.test(q) && !/ where .*seq.* > /i.test(q));
        expect(loads.map((q) => (/max\(/i.test(q) ? 'position' : /left join/i.test(q) ? 'client' : q))).to.deep.equal(['position', 'client']);
      });

      it('refuses a negative or non-numeric clientCacheTtl with an InvalidOptionError', () => {
        for (const value of [-1, Number.NaN, Infinity, '1', null]) {
          expect(() => makeStore({ clientCacheTtl: value as number })).to.throw(InvalidOptionError, /clientCacheTtl/);
        }
      });

      it('refuses a clientCacheSize, changePollInterval or outageWindow out of bounds with an InvalidOptionError naming it', () => {
        const bad: [keyof KnexStoreOptions, unknown[]][] = [
          ['clientCacheSize', [-1, 1.5, 10_000_001, '10', null]],
          ['changePollInterval', [0, 0.01, 61, Number.NaN, '1']],
          ['outageWindow', [-1, 1801, Infinity, '60']],
        ];
        for (const [option, values] of bad) {
          for (const value of values) expect(() => makeStore({ [option]: value }), `${option} ${String(value)}`).to.throw(InvalidOptionError, option);
        }
      });

      it('sends no query for malformed credentials', async () => {
        const sql = await queriesDuring(() => store.clients.authenticate('svc-reports', 'not-a-secret'));
        expect(sql).to.deep.equal([]);
      });
    });

    describe('clients.rotateSecret()', () => {
      let first: Awaited<ReturnType<KnexStore['clients']['create']>>;

      beforeEach(async () => {
        first = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        now = T0 + HOUR;
      });

      it('adds a new secret and lets the old one expire after one day by default', async () => {
        const rotated = await store.clients.rotateSecret('svc');
        expect(rotated.clientId).to.equal('svc');
        expect(rotated.clientSecret).to.not.equal(first.clientSecret);
        expect(rotated.secret).to.deep.equal({
          id: rotated.secret.id,
          hint: rotated.clientSecret.slice(0, 11),
          createdAt: new Date(T0 + HOUR),
          expiresAt: null,
          lastUsedAt: null,
        });
        expect(await store.clients.listSecrets('svc')).to.deep.equal([
          rotated.secret,
          { ...first.secret, expiresAt: new Date(T0 + HOUR + DAY) },
        ]);
      });

      it('accepts old and new secrets during the grace period and only the new one after it', async () => {
        const rotated = await store.clients.rotateSecret('svc', { gracePeriod: 300 });
        now = T0 + HOUR + 300 * SECOND - 1;
        expect((await store.clients.authenticate('svc', first.clientSecret)).ok).to.equal(true);
        expect((await store.clients.authenticate('svc', rotated.clientSecret)).ok).to.equal(true);
        now = T0 + HOUR + 300 * SECOND;
        expect(await store.clients.authenticate('svc', first.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
        expect((await store.clients.authenticate('svc', rotated.clientSecret)).ok).to.equal(true);
      });

      it('expires the old secret at once with a gracePeriod of 0', async () => {
        const rotated = await store.clients.rotateSecret('svc', { gracePeriod: 0 });
        expect(await store.clients.authenticate('svc', first.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
        expect((await store.clients.authenticate('svc', rotated.clientSecret)).ok).to.equal(true);
      });

      it('keeps the earlier expiry of a secret already expiring sooner than the grace period', async () => {
        const soon = await store.clients.create({ ...MINIMAL, clientId: 'soon', secretExpiresAt: new Date(T0 + 2 * HOUR) });
        await store.clients.rotateSecret('soon', { gracePeriod: 86_400 });
        const secrets = await store.clients.listSecrets('soon');
        expect(secrets.find((s) => s.id === soon.secret.id)?.expiresAt).to.deep.equal(new Date(T0 + 2 * HOUR));
        now = T0 + 2 * HOUR;
        expect(await store.clients.authenticate('soon', soon.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
      });

      it('brings forward the expiry of a secret expiring later than the grace period', async () => {
        const late = await store.clients.create({ ...MINIMAL, clientId: 'late', secretExpiresAt: new Date(T0 + 30 * DAY) });
        await store.clients.rotateSecret('late', { gracePeriod: 60 });
        const secrets = await store.clients.listSecrets('late');
        expect(secrets.find((s) => s.id === late.secret.id)?.expiresAt).to.deep.equal(new Date(T0 + HOUR + MINUTE));
      });

      it('deletes secrets that have already expired, so authentication no longer compares them', async () => {
        const gone = await store.clients.create({ ...MINIMAL, clientId: 'gone', secretExpiresAt: new Date(T0 + MINUTE) });
        const rotated = await store.clients.rotateSecret('gone');
        const secrets = await store.clients.listSecrets('gone');
        expect(secrets.map((s) => s.id)).to.deep.equal([rotated.secret.id]);
        expect(await store.clients.authenticate('gone', gone.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
      });

      it('gives the new secret the expiry asked for', async () => {
        const rotated = await store.clients.rotateSecret('svc', { expiresAt: new Date(T0 + 7 * DAY) });
        expect(rotated.secret.expiresAt).to.deep.equal(new Date(T0 + 7 * DAY));
        now = T0 + 7 * DAY;
        expect(await store.clients.authenticate('svc', rotated.clientSecret)).to.deep.equal({ ok: false, reason: 'expired_secret' });
      });

      it('touches no other client\'s secrets', async () => {
        const other = await store.clients.create({ ...MINIMAL, clientId: 'other' });
        await store.clients.rotateSecret('svc', { gracePeriod: 0 });
        expect(await store.clients.listSecrets('other')).to.deep.equal([other.secret]);
        expect((await store.clients.authenticate('other', other.clientSecret)).ok).to.equal(true);
      });

      it('lists secrets newest first after several rotations', async () => {
        now = T0 + 2 * HOUR;
        const second = await store.clients.rotateSecret('svc', { gracePeriod: 3600 });
        now = T0 + 3 * HOUR;
        const third = await store.clients.rotateSecret('svc', { gracePeriod: 3600 });
        const listed = await store.clients.listSecrets('svc');
        expect(listed.map((s) => s.id)).to.deep.equal([third.secret.id, second.secret.id, first.secret.id]);
        expect(listed.map((s) => s.expiresAt)).to.deep.equal([null, new Date(T0 + 4 * HOUR), new Date(T0 + 3 * HOUR)]);
      });

      it('rejects an unknown client with ClientNotFoundError', async () => {
        let caught: unknown;
        try {
          await store.clients.rotateSecret('nobody');
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ClientNotFoundError);
        expect(await count(store.tables.secrets)).to.equal(1);
      });

      for (const gracePeriod of [-1, Number.NaN, Number.POSITIVE_INFINITY, '60']) {
        it(`rejects the gracePeriod ${String(gracePeriod)} with a TypeError and changes nothing`, async () => {
          let caught: unknown;
          try {
            await store.clients.rotateSecret('svc', { gracePeriod: gracePeriod as number });
          } catch (err) {
            caught = err;
          }
          expect(caught).to.be.instanceOf(TypeError);
          expect(await store.clients.listSecrets('svc')).to.deep.equal([first.secret]);
        });
      }

      it('rejects an expiresAt that is not a Date with a TypeError', async () => {
        let caught: unknown;
        try {
          await store.clients.rotateSecret('svc', { expiresAt: T0 as unknown as Date });
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(TypeError);
        expect(await store.clients.listSecrets('svc')).to.deep.equal([first.secret]);
      });
    });

    describe('clients.listSecrets()', () => {
      it('rejects an unknown client with ClientNotFoundError', async () => {
        let caught: unknown;
        try {
          await store.clients.listSecrets('nobody');
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ClientNotFoundError);
      });

      it('returns an empty list for a client whose secrets are all revoked', async () => {
        const { secret } = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        await store.clients.revokeSecret('svc', secret.id);
        expect(await store.clients.listSecrets('svc')).to.deep.equal([]);
      });
    });

    describe('clients.revokeSecret()', () => {
      it('withdraws one secret at once and leaves the others', async () => {
        const first = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        now = T0 + MINUTE;
        const second = await store.clients.rotateSecret('svc');
        expect(await store.clients.revokeSecret('svc', first.secret.id)).to.equal(true);
        expect(await store.clients.authenticate('svc', first.clientSecret)).to.deep.equal({ ok: false, reason: 'invalid_secret' });
        expect((await store.clients.authenticate('svc', second.clientSecret)).ok).to.equal(true);
        await store.clients.flushUsage();
        expect(await store.clients.listSecrets('svc')).to.deep.equal([{ ...second.secret, lastUsedAt: new Date(T0 + MINUTE) }]);
      });

      it('returns false the second time', async () => {
        const { secret } = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        expect(await store.clients.revokeSecret('svc', secret.id)).to.equal(true);
        expect(await store.clients.revokeSecret('svc', secret.id)).to.equal(false);
      });

      it('refuses to revoke a secret through another client\'s id', async () => {
        const victim = await store.clients.create({ ...MINIMAL, clientId: 'victim' });
        await store.clients.create({ ...MINIMAL, clientId: 'attacker' });
        expect(await store.clients.revokeSecret('attacker', victim.secret.id)).to.equal(false);
        expect((await store.clients.authenticate('victim', victim.clientSecret)).ok).to.equal(true);
      });

      it('returns false for an unknown client or secret id', async () => {
        const { secret } = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
        expect(await store.clients.revokeSecret('nobody', secret.id)).to.equal(false);
        expect(await store.clients.revokeSecret('svc', 'no-such-secret')).to.equal(false);
        expect(await store.clients.revokeSecret('svc', '')).to.equal(false);
      });
    });

    describe('last-used time', () => {
      let issued: Awaited<ReturnType<KnexStore['clients']['create']>>;
      const lastUsed = async (): Promise<(number | null)[]> =>
        (await store.clients.listSecrets(issued.clientId)).map((s) => s.lastUsedAt?.getTime() ?? null);

      beforeEach(async () => {
        issued = await store.clients.create({ ...MINIMAL, clientId: 'svc' });
      });

      it('is written after a successful authentication', async () => {
        now = T0 + 5 * SECOND;
        expect((await store.clients.authenticate('svc', issued.clientSecret)).ok).to.equal(true);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0 + 5 * SECOND]);
        const row = await db.knex(store.tables.secrets).where({ id: issued.secret.id }).first('last_used_at') as { last_used_at: unknown };
        expect(num(row.last_used_at)).to.equal(T0 + 5 * SECOND);
      });

      it('is not written again within the resolution window, and is written after it', async () => {
        await store.clients.authenticate('svc', issued.clientSecret);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0]);
        now = T0 + 59 * SECOND;
        expect((await store.clients.authenticate('svc', issued.clientSecret)).ok).to.equal(true);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0]);
        now = T0 + 61 * SECOND;
        expect((await store.clients.authenticate('svc', issued.clientSecret)).ok).to.equal(true);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0 + 61 * SECOND]);
      });

      it('sends no write within the resolution window', async () => {
        await store.clients.authenticate('svc', issued.clientSecret);
        await store.clients.flushUsage();
        now = T0 + 30 * SECOND;
        const sql = await queriesDuring(async () => {
          await store.clients.authenticate('svc', issued.clientSecret);
          await store.clients.flushUsage();
        });
        expect(sql.filter((q) => !/^select/i.test(q))).to.deep.equal([]);
      });

      it('is not written for a failed authentication', async () => {
        await store.clients.authenticate('svc', generateClientSecret());
        await store.clients.update('svc', { enabled: false });
        await store.clients.authenticate('svc', issued.clientSecret);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([null]);
      });

      it('is written for the secret that was used, not the others', async () => {
        now = T0 + MINUTE;
        const rotated = await store.clients.rotateSecret('svc');
        now = T0 + 2 * MINUTE;
        await store.clients.authenticate('svc', rotated.clientSecret);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0 + 2 * MINUTE, null]);
        now = T0 + 3 * MINUTE;
        await store.clients.authenticate('svc', issued.clientSecret);
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0 + 2 * MINUTE, T0 + 3 * MINUTE]);
      });

      it('follows the lastUsedResolution option', async () => {
        const eager = makeStore({ lastUsedResolution: 0 });
        await eager.clients.authenticate('svc', issued.clientSecret);
        await eager.clients.flushUsage();
        now = T0 + 1;
        await eager.clients.authenticate('svc', issued.clientSecret);
        await eager.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([T0 + 1]);
      });

      it('is returned by listSecrets() and resolves flushUsage() with nothing pending', async () => {
        await store.clients.flushUsage();
        expect(await lastUsed()).to.deep.equal([null]);
      });
    });

    describe('keys', () => {
      const rowOf = async (kid: string): Promise<Record<string, unknown>> =>
        await db.knex(store.tables.keys).where({ kid }).first() as Record<string, unknown>;

      function independentThumbprint(jwk: Record<string, unknown>): string {
        const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n'];
        const ordered: Record<string, unknown> = {};
        for (const name of members) ordered[name] = jwk[name];
        return createHash('sha256').update(JSON.stringify(ordered)).digest('base64url');
      }

      it('lists no key before any is created', async () => {
        expect(await store.keys.list()).to.deep.equal([]);
      });

      it('rejects list() with UnsupportedKeyError (ERR_M2M_KEY_UNSUPPORTED) for a stored key of an unknown algorithm', async () => {
        const key = await store.keys.rotate();
        // As a newer version, or a hand-made row, could leave it.
        await db.knex(store.tables.keys).where({ kid: key.kid }).update({ alg: 'EdDSA' });
        let caught: unknown;
        try {
          await store.keys.list();
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(UnsupportedKeyError).and.instanceOf(M2MError);
        const unsupported = caught as UnsupportedKeyError;
        expect([unsupported.code, unsupported.kid, unsupported.message]).to.deep.equal(
          ['ERR_M2M_KEY_UNSUPPORTED', key.kid, `stored key ${key.kid} has an unsupported algorithm`]);
      });

      describe('ensure()', () => {
        it('creates one active key, then does nothing', async () => {
          await store.keys.ensure('ES256');
          const [key, ...rest] = await store.keys.list();
          expect(rest).to.deep.equal([]);
          expect(key?.alg).to.equal('ES256');
          expect(key?.createdAt).to.deep.equal(new Date(T0));
          expect(key?.activatesAt).to.deep.equal(new Date(T0));
          expect(key?.revokedAt).to.equal(null);
          now = T0 + DAY;
          await store.keys.ensure('ES256');
          await store.keys.ensure('RS256');
          expect(await store.keys.list()).to.deep.equal([key]);
          expect(await count(store.tables.keys)).to.equal(1);
        });

        it('creates a new active key when the only key was revoked', async () => {
          await store.keys.ensure('ES256');
          const [old] = await store.keys.list();
          now = T0 + HOUR;
          await store.keys.revoke(old?.kid ?? '');
          await store.keys.ensure('ES256');
          const keys = await store.keys.list();
          expect(keys).to.have.length(1);
          expect(keys[0]?.kid).to.not.equal(old?.kid);
          expect(keys[0]?.activatesAt).to.deep.equal(new Date(T0 + HOUR));
        });

        it('creates an active key when the only stored key is still pending', async () => {
          const pending = await store.keys.rotate({ activateAfter: 600 });
          await store.keys.ensure('ES256');
          const active = (await store.keys.list()).filter((k) => k.activatesAt.getTime() <= now);
          expect(active, 'a key that can sign now').to.have.length(1);
          expect(active[0]?.kid).to.not.equal(pending.kid);
        });

        it('rejects an unsupported algorithm with a TypeError', async () => {
          for (const alg of ['HS256', 'none', 'es256', '']) {
            let caught: unknown;
            try {
              await store.keys.ensure(alg as SigningAlgorithm);
            } catch (err) {
              caught = err;
            }
            expect(caught, alg).to.be.instanceOf(TypeError);
          }
          expect(await count(store.tables.keys)).to.equal(0);
        });
      });

      describe('rotate()', () => {
        it('creates an ES256 key that is published now and signs after 600 seconds by default', async () => {
          await store.keys.ensure('ES256');
          now = T0 + HOUR;
          const record = await store.keys.rotate();
          expect(record.alg).to.equal('ES256');
          expect(record.createdAt).to.deep.equal(new Date(T0 + HOUR));
          expect(record.activatesAt).to.deep.equal(new Date(T0 + HOUR + 600 * SECOND));
          expect(record.revokedAt).to.equal(null);
          const listed = await store.keys.list();
          expect(listed).to.have.length(2);
          expect(listed.find((k) => k.kid === record.kid)).to.deep.equal(record);
        });

        it('follows activateAfter', async () => {
          expect((await store.keys.rotate({ activateAfter: 0 })).activatesAt).to.deep.equal(new Date(T0));
          expect((await store.keys.rotate({ activateAfter: 3600 })).activatesAt).to.deep.equal(new Date(T0 + HOUR));
        });

        for (const activateAfter of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
          it(`rejects activateAfter ${activateAfter} with a TypeError`, async () => {
            let caught: unknown;
            try {
              await store.keys.rotate({ activateAfter });
            } catch (err) {
              caught = err;
            }
            expect(caught).to.be.instanceOf(TypeError);
            expect(await count(store.tables.keys)).to.equal(0);
          });
        }

        it('rejects an unsupported algorithm with a TypeError', async () => {
          let caught: unknown;
          try {
            await store.keys.rotate({ alg: 'HS256' as SigningAlgorithm });
          } catch (err) {
            caught = err;
          }
          expect(caught).to.be.instanceOf(TypeError);
          expect(await count(store.tables.keys)).to.equal(0);
        });
      });

      describe('revoke()', () => {
        it('hides the key from list() at once', async () => {
          const a = await store.keys.rotate({ activateAfter: 0 });
          now = T0 + MINUTE;
          const b = await store.keys.rotate({ activateAfter: 0 });
          now = T0 + 2 * MINUTE;
          expect(await store.keys.revoke(a.kid)).to.equal(true);
          expect(await store.keys.list()).to.deep.equal([b]);
          const row = await rowOf(a.kid);
          expect(num(row.revoked_at)).to.equal(T0 + 2 * MINUTE);
        });

        it('returns false the second time', async () => {
          const a = await store.keys.rotate();
          expect(await store.keys.revoke(a.kid)).to.equal(true);
          now = T0 + MINUTE;
          expect(await store.keys.revoke(a.kid)).to.equal(false);
          expect(num((await rowOf(a.kid)).revoked_at)).to.equal(T0);
        });

        it('returns false for an unknown kid or one holding SQL, and revokes nothing', async () => {
          const a = await store.keys.rotate();
          for (const kid of ['no-such-kid', "x' OR '1'='1", '%', '', TEN_KB]) {
            expect(await store.keys.revoke(kid), kid.slice(0, 20)).to.equal(false);
          }
          expect(await store.keys.list()).to.deep.equal([a]);
        });
      });

      for (const alg of ['ES256', 'RS256', 'PS256'] as const) {
        describe(`with alg ${alg}`, () => {
          it('is stored with its private key as a PKCS#8 PEM that matches the public JWK', async () => {
            const record = await store.keys.rotate({ alg });
            const row = await rowOf(record.kid);
            expect(row.alg).to.equal(alg);
            expect(row.private_key).to.equal(record.privateKeyPem);
            expect(row.private_key).to.match(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/);
            const privateKey = createPrivateKey({ key: String(row.private_key), format: 'pem' });
            expect(privateKey.asymmetricKeyType).to.equal(alg === 'ES256' ? 'ec' : 'rsa');
            expect(toPublicJwk(privateKey, alg)).to.deep.equal(record.publicJwk);
          });

          it('publishes a JWK with no private member, whose kid is its RFC 7638 thumbprint', async () => {
            const record = await store.keys.rotate({ alg });
            const [listed] = await store.keys.list();
            const stored = JSON.parse(String((await rowOf(record.kid)).public_jwk)) as Record<string, unknown>;
            for (const jwk of [record.publicJwk, listed?.publicJwk, stored] as Record<string, unknown>[]) {
              for (const member of PRIVATE_MEMBERS) expect(jwk, member).to.not.have.property(member);
              expect(Object.keys(jwk).sort()).to.deep.equal(
                alg === 'ES256' ? ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] : ['alg', 'e', 'kid', 'kty', 'n', 'use']);
              expect(jwk.kid).to.equal(record.kid);
              expect(jwk.alg).to.equal(alg);
              expect(jwk.use).to.equal('sig');
            }
            expect(record.kid).to.equal(independentThumbprint(stored));
            // The public JWK imports as a public key.
            expect(createPublicKey({ key: stored as JsonWebKey, format: 'jwk' }).type).to.equal('public');
          });

          it('round-trips through list() exactly', async () => {
            const record = await store.keys.rotate({ alg, activateAfter: 30 });
            expect(await store.keys.list()).to.deep.equal([record]);
          });

          it('with keyEncryptionKey, stores the private key encrypted and reads it back', async () => {
            const sealed = makeStore({ keyEncryptionKey: KEK });
            const record = await sealed.keys.rotate({ alg });
            const stored = String((await rowOf(record.kid)).private_key);
            expect(stored).to.match(/^m2m-enc:v1:[A-Za-z0-9_-]+$/);
            expect(stored).to.not.include('PRIVATE KEY');
            const [listed] = await sealed.keys.list();
            expect(listed?.privateKeyPem).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
            expect(toPublicJwk(createPrivateKey(listed?.privateKeyPem ?? ''), alg)).to.deep.equal(record.publicJwk);
          });
        });
      }

      describe('retention', () => {
        const retentionOf = async (kid: string): Promise<number | null> => num((await rowOf(kid)).retention);

        it(`records ${DEFAULT_KEY_RETENTION} s for a key that ensure() or rotate() creates without one`, async () => {
          await store.keys.ensure('ES256');
          const rotated = await store.keys.rotate();
          const listed = await store.keys.list();
          expect(listed.map((k) => k.retention)).to.deep.equal([DEFAULT_KEY_RETENTION, DEFAULT_KEY_RETENTION]);
          expect(rotated.retention).to.equal(DEFAULT_KEY_RETENTION);
          for (const key of listed) expect(await retentionOf(key.kid)).to.equal(DEFAULT_KEY_RETENTION);
        });

        it('records the retention given to ensure() with the key it creates', async () => {
          await store.keys.ensure('ES256', { retention: 86_460 });
          const [key] = await store.keys.list();
          expect(key?.retention).to.equal(86_460);
          expect(await retentionOf(key?.kid ?? '')).to.equal(86_460);
        });

        it('records the retention given to rotate(), rounded up to a whole second', async () => {
          const key = await store.keys.rotate({ retention: 360 });
          expect(key.retention).to.equal(360);
          expect(await retentionOf(key.kid)).to.equal(360);
          expect((await store.keys.rotate({ retention: 0.2 })).retention).to.equal(1);
          expect((await store.keys.list()).find((k) => k.kid === key.kid)).to.deep.equal(key);
        });

        it('gives a rotated key the retention of the newest key when none is given', async () => {
          await store.keys.ensure('ES256', { retention: 7260 });
          now = T0 + MINUTE;
          const pending = await store.keys.rotate({ activateAfter: 600, retention: 1860 });
          now = T0 + 2 * MINUTE;
          expect((await store.keys.rotate({ activateAfter: 1200 })).retention).to.equal(1860);
          const newest = await store.keys.rotate({ activateAfter: 1200 });
          expect(newest.retention).to.equal(1860);
          expect(await store.keys.revoke(newest.kid)).to.equal(true);
          expect(await store.keys.revoke(pending.kid)).to.equal(true);
          // The newest key left is the one above (activating at +22 min), not a revoked one.
          expect((await store.keys.rotate({ activateAfter: 0 })).retention).to.equal(1860);
        });

        it('with a retention, ensure() raises a shorter one on the active and pending keys, and on no other', async () => {
          const retired = await store.keys.rotate({ activateAfter: 0, retention: 60 });
          now = T0 + MINUTE;
          const active = await store.keys.rotate({ activateAfter: 0, retention: 60 });
          const longer = await store.keys.rotate({ activateAfter: 600, retention: 90_000 });
          const pending = await store.keys.rotate({ activateAfter: 1200, retention: 120 });
          const revoked = await store.keys.rotate({ activateAfter: 1200, retention: 60 });
          await store.keys.revoke(revoked.kid);
          now = T0 + 2 * MINUTE;
          await store.keys.ensure('ES256', { retention: 3660 });
          expect(await count(store.tables.keys)).to.equal(5);
          const stored = Object.fromEntries(await Promise.all(
            [retired, active, longer, pending, revoked].map(async (k) => [k.kid, await retentionOf(k.kid)] as const)));
          expect(stored).to.deep.equal({
            [retired.kid]: 60, [active.kid]: 3660, [longer.kid]: 90_000, [pending.kid]: 3660, [revoked.kid]: 60,
          });
        });

        it('with a retention, ensure() raises the pending keys when it creates the active one', async () => {
          const pending = await store.keys.rotate({ activateAfter: 600, retention: 60 });
          await store.keys.ensure('ES256', { retention: 3660 });
          const keys = await store.keys.list();
          expect(keys).to.have.length(2);
          expect(keys.map((k) => [k.kid === pending.kid, k.retention]).sort()).to.deep.equal([[false, 3660], [true, 3660]]);
        });

        it('without a retention, ensure() changes no stored retention', async () => {
          const key = await store.keys.rotate({ activateAfter: 0, retention: 60 });
          await store.keys.ensure('ES256');
          expect(await retentionOf(key.kid)).to.equal(60);
        });

        it(`reads a key stored before retention was recorded as ${DEFAULT_KEY_RETENTION} s, and ensure() gives it one`, async () => {
          const old = await store.keys.rotate({ activateAfter: 0 });
          await db.knex(store.tables.keys).where({ kid: old.kid }).update({ retention: null });
          const [listed] = await store.keys.list();
          expect(listed).to.deep.equal({ ...old, retention: DEFAULT_KEY_RETENTION });
          expect((await store.keys.rotate()).retention).to.equal(DEFAULT_KEY_RETENTION);
          await store.keys.ensure('ES256', { retention: 86_460 });
          expect(await retentionOf(old.kid)).to.equal(86_460);
        });

        for (const retention of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '60']) {
          it(`rejects the retention ${String(retention)} with a TypeError in ensure() and rotate(), and stores nothing`, async () => {
            for (const attempt of [
              () => store.keys.ensure('ES256', { retention: retention as number }),
              () => store.keys.rotate({ retention: retention as number }),
            ]) {
              let caught: unknown;
              try {
                await attempt();
              } catch (err) {
                caught = err;
              }
              expect(caught).to.be.instanceOf(TypeError).with.property('message', 'retention must be a number of seconds from 0 to 2147483647');
            }
            expect(await count(store.tables.keys)).to.equal(0);
          });
        }
      });

      describe('key records', () => {
        /** Every way a record, or the list of them, gets printed, logged, serialised or copied. */
        function renderings(records: SigningKeyRecord[]): Record<string, string> {
          const out = new PassThrough();
          let logged = '';
          out.on('data', (chunk: Buffer) => { logged += chunk.toString(); });
          const logger = new Console({ stdout: out, stderr: out });
          logger.log(records[0]);
          logger.log(records);
          logger.log('%o %O %j %s', records, records[0], records, records[0]);
          logger.dir(records, { depth: null, showHidden: true });
          return {
            'JSON.stringify(list)': JSON.stringify(records),
            'JSON.stringify(record)': JSON.stringify(records[0]),
            'util.inspect(list)': inspect(records),
            'util.inspect(list, showHidden)': inspect(records, { showHidden: true, depth: null }),
            'util.format(%o)': format('%o', records),
            'console.log': logged,
            'String(record)': String(records[0]),
            'template string': `${String(records)}`,
            'spread': JSON.stringify(records.map((r) => ({ ...r }))) + inspect(records.map((r) => ({ ...r })), { showHidden: true }),
            'Object.assign': JSON.stringify(Object.assign({}, records[0])),
            'structuredClone': inspect(structuredClone(records), { showHidden: true, depth: null }),
            'Object.entries': JSON.stringify(records.map((r) => Object.entries(r))),
          };
        }

        /** Checks that no rendering holds any part of the private keys, stored sealed or not. */
        async function expectNoPrivateKey(records: SigningKeyRecord[]): Promise<void> {
          const stored = await db.knex(store.tables.keys).pluck('private_key') as string[];
          expect(stored).to.have.length(records.length);
          // The PEM's base64 lines and the sealed value, whole or in part.
          const fragments = stored.flatMap((value) => value.split(/[\n:]/)).filter((part) => part.length >= 16);
          expect(fragments.length).to.be.greaterThan(0);
          for (const [how, text] of Object.entries(renderings(records))) {
            expect(text, how).to.not.include('PRIVATE KEY');
            for (const fragment of fragments) expect(text.includes(fragment), `${how} holds part of a private key`).to.equal(false);
          }
          for (const record of records) {
            expect(Object.keys(record)).to.deep.equal(['kid', 'alg', 'publicJwk', 'createdAt', 'activatesAt', 'revokedAt', 'retention', 'encrypted']);
            expect({ ...record }).to.not.have.property('privateKeyPem');
            expect(structuredClone(record)).to.deep.equal(record).and.not.have.property('privateKeyPem');
          }
        }

        it('never show the private key when serialised, inspected, logged, spread or cloned, yet give it when read', async () => {
          const rotated = await store.keys.rotate({ activateAfter: 0, alg: 'RS256' });
          await store.keys.rotate({ activateAfter: 60 });
          const listed = await store.keys.list();
          await expectNoPrivateKey(listed);
          await expectNoPrivateKey([rotated, ...listed.filter((k) => k.kid !== rotated.kid)]);
          const stored = await db.knex(store.tables.keys).pluck('private_key') as string[];
          expect(listed.map((k) => k.privateKeyPem).sort()).to.deep.equal(stored.sort());
          expect(rotated.privateKeyPem).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
        });

        it('with keyEncryptionKey, show neither the private key nor its sealed form, yet give the key when read', async () => {
          const sealed = makeStore({ keyEncryptionKey: KEK });
          const rotated = await sealed.keys.rotate({ activateAfter: 0, alg: 'PS256' });
          await sealed.keys.rotate({ activateAfter: 60 });
          const listed = await sealed.keys.list();
          await expectNoPrivateKey(listed);
          await expectNoPrivateKey([rotated, ...listed.filter((k) => k.kid !== rotated.kid)]);
          const rendered = Object.values(renderings(listed)).join('\n');
          for (const key of listed) {
            expect(rendered).to.not.include(key.privateKeyPem.split('\n')[1]);
            expect(toPublicJwk(createPrivateKey(key.privateKeyPem), key.alg)).to.deep.equal(key.publicJwk);
          }
        });

        it('with keyEncryptionKey, can be serialised by a store without it (the CLI), which cannot read the key', async () => {
          const record = await makeStore({ keyEncryptionKey: KEK }).keys.rotate();
          const listed = await store.keys.list();
          await expectNoPrivateKey(listed);
          expect(JSON.parse(JSON.stringify(listed))).to.deep.equal([{
            kid: record.kid, alg: 'ES256', publicJwk: record.publicJwk, createdAt: new Date(T0).toISOString(),
            activatesAt: new Date(T0 + 600 * SECOND).toISOString(), revokedAt: null, retention: DEFAULT_KEY_RETENTION, encrypted: true,
          }]);
          expect(() => listed[0]?.privateKeyPem).to.throw(Error, `signing key ${record.kid} is stored encrypted: set keyEncryptionKey to use it`);
        });
      });

      describe('with keyEncryptionKey', () => {
        it('refuses a secret shorter than 32 characters, or not a string', () => {
          for (const value of ['x'.repeat(31), 42, Buffer.alloc(32)]) {
            expect(() => makeStore({ keyEncryptionKey: value as unknown as string }))
              .to.throw(InvalidOptionError, 'keyEncryptionKey must be a string of at least 32 characters (for example: openssl rand -base64 32)');
          }
        });

        it('lists encrypted keys without the secret, and names what is missing when the private key is read', async () => {
          const record = await makeStore({ keyEncryptionKey: KEK }).keys.rotate();
          const [listed] = await store.keys.list();
          expect([listed?.kid, listed?.publicJwk]).to.deep.equal([record.kid, record.publicJwk]);
          expect(() => listed?.privateKeyPem).to.throw(KeyDecryptionError, `signing key ${record.kid} is stored encrypted: set keyEncryptionKey to use it`)
            .that.deep.includes({ code: 'ERR_M2M_KEY_DECRYPTION', kid: record.kid });
        });

        it('refuses another secret, and a sealed value moved to another key row, without leaking either', async () => {
          const sealed = makeStore({ keyEncryptionKey: KEK });
          const a = await sealed.keys.rotate();
          const b = await sealed.keys.rotate();
          const [listedWrong] = await makeStore({ keyEncryptionKey: 'y'.repeat(40) }).keys.list();
          const wrong = `signing key ${listedWrong?.kid} could not be decrypted: keyEncryptionKey is not the one it was stored with`;
          expect(() => listedWrong?.privateKeyPem).to.throw(KeyDecryptionError, wrong)
            .that.deep.includes({ code: 'ERR_M2M_KEY_DECRYPTION', kid: listedWrong?.kid });
          // b's row now holds a's sealed key: the kid is bound into the ciphertext.
          await db.knex(`${db.prefix}signing_keys`).where({ kid: b.kid }).update({ private_key: String((await rowOf(a.kid)).private_key) });
          const moved = (await sealed.keys.list()).find((k) => k.kid === b.kid);
          expect(() => moved?.privateKeyPem).to.throw(KeyDecryptionError, `signing key ${b.kid} could not be decrypted`)
            .that.has.property('code', 'ERR_M2M_KEY_DECRYPTION');
        });

        it('still reads keys stored in plain text before the secret was set, and encrypts new ones', async () => {
          const plain = await store.keys.rotate();
          const sealed = makeStore({ keyEncryptionKey: KEK });
          const fresh = await sealed.keys.rotate();
          const byKid = new Map((await sealed.keys.list()).map((k) => [k.kid, k]));
          expect(byKid.get(plain.kid)?.privateKeyPem).to.equal(plain.privateKeyPem);
          expect(byKid.get(fresh.kid)?.privateKeyPem).to.equal(fresh.privateKeyPem);
          expect(String((await rowOf(plain.kid)).private_key)).to.match(/^-----BEGIN PRIVATE KEY-----/);
          expect(String((await rowOf(fresh.kid)).private_key)).to.match(/^m2m-enc:v1:/);
        });
      });
    });
  });
}
