import { createHash } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { TokenCacheError, tokenClient, type TokenClient, type TokenClientOptions } from '../../lib/index.js';
import { knexTokenCache, type KnexTokenCache } from '../../lib/client/knex-cache.js';
import { databases, PG_URL, type TestDatabase } from '../support/db.js';
import { collect, startTokenServer, type TestTokenServer } from './fixtures.js';
import { runCallers } from './spawn-child.js';
import { rejectionOf } from '../support/rejection.js';
import { InvalidOptionError } from '../../lib/core/options.js';

const SECRET = 'secret-a';
const T0 = Date.UTC(2026, 10, 22, 12);
const MINUTE = 60_000;
const KIB = 1024;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

interface Row {
  cache_key: string;
  value: string;
  expires_at: number;
}

for (const make of databases) {
  const name = make.name.replace(/Database$/, '');

  describe(`knexTokenCache() on ${name}`, () => {
    let db: TestDatabase;
    let cacheTable: string;
    let lockTable: string;

    beforeEach(() => {
      db = make();
      cacheTable = `${db.prefix}token_cache`;
      lockTable = `${db.prefix}token_locks`;
    });
    afterEach(async () => { await db.destroy(); });

    async function rows(): Promise<Row[]> {
      const found = await db.knex<Row>(cacheTable).select('*').orderBy('cache_key');
      return found.map((row) => ({ ...row, expires_at: Number(row.expires_at) }));
    }

    describe('options', () => {
      const cases: [string, unknown, unknown, RegExp][] = [
        ['no Knex instance', {}, {}, /needs a Knex instance/],
        ['a tablePrefix with a quote', 'knex', { tablePrefix: 'm2m"_' }, /tablePrefix must be/],
        ['a tablePrefix starting with a digit', 'knex', { tablePrefix: '1m2m_' }, /tablePrefix must be/],
        ['a clock that is not a function', 'knex', { clock: 5 }, /clock must be a function/],
      ];
      for (const [what, knex, options, message] of cases) {
        it(`throws an InvalidOptionError for ${what}`, () => {
          const target = knex === 'knex' ? db.knex : knex;
          expect(() => knexTokenCache(target as Knex, options as never)).to.throw(InvalidOptionError, message);
        });
      }
    });

    describe('migrate()', () => {
      it('creates the two tables, and leaves them alone when called again', async () => {
        const cache = knexTokenCache(db.knex, { tablePrefix: db.prefix });
        await cache.migrate();
        expect(Object.keys(await db.knex(cacheTable).columnInfo()).sort()).to.deep.equal(['cache_key', 'expires_at', 'value']);
        expect(Object.keys(await db.knex(lockTable).columnInfo()).sort()).to.deep.equal(['expires_at', 'lock_key', 'owner']);
        await cache.set('k', 'v', Date.now() + MINUTE);
        await cache.migrate();
        expect(await cache.get('k')).to.equal('v');
      });

      it('tolerates several processes creating the tables at once', async function () {
        this.timeout(60_000);
        // Separate Knex instances: separate pools, as separate processes would have.
        const connection = db.name === 'postgres'
          ? PG_URL
          : (db.knex.client as { config: { connection: { filename: string } } }).config.connection;
        const others = Array.from({ length: 4 }, () => knexFactory({
          client: db.name === 'postgres' ? 'pg' : 'sqlite3', connection, useNullAsDefault: true, pool: { min: 0, max: 2 },
        }));
        try {
          await Promise.all(others.map((knex) => knexTokenCache(knex, { tablePrefix: db.prefix }).migrate()));
        } finally {
          await Promise.all(others.map((knex) => knex.destroy()));
        }
        expect(await db.knex.schema.hasTable(cacheTable)).to.equal(true);
        expect(await db.knex.schema.hasTable(lockTable)).to.equal(true);
      });
    });

    describe('contract', () => {
      let cache: KnexTokenCache;
      let now: number;
      beforeEach(async () => {
        now = T0;
        cache = knexTokenCache(db.knex, { tablePrefix: db.prefix, clock: () => now });
        await cache.migrate();
      });

      it('returns undefined for a key never set', async () => {
        expect(await cache.get('k')).to.equal(undefined);
      });

      it('returns what was stored and replaces it on the next set', async () => {
        await cache.set('k', 'v1', T0 + MINUTE);
        expect(await cache.get('k')).to.equal('v1');
        await cache.set('k', 'v2', T0 + 2 * MINUTE);
        expect(await cache.get('k')).to.equal('v2');
        expect(await rows()).to.deep.equal([{ cache_key: 'k', value: 'v2', expires_at: T0 + 2 * MINUTE }]);
      });

      it('ignores an entry from its expiry on', async () => {
        await cache.set('k', 'v', T0 + MINUTE);
        now = T0 + MINUTE - 1;
        expect(await cache.get('k')).to.equal('v');
        now = T0 + MINUTE;
        expect(await cache.get('k')).to.equal(undefined);
      });

      it('stores nothing for an entry that has already expired', async () => {
        await cache.set('k', 'v', T0);
        await cache.set('j', 'v', T0 - 1);
        expect(await rows()).to.deep.equal([]);
      });

      it('deletes an entry whatever it holds when no value is given', async () => {
        await cache.set('k', 'v', T0 + MINUTE);
        await cache.delete('k');
        expect(await rows()).to.deep.equal([]);
      });

      it('deletes an entry only while it still holds the given value', async () => {
        await cache.set('k', 'old', T0 + MINUTE);
        await cache.set('k', 'new', T0 + MINUTE);
        await cache.delete('k', 'old');
        expect(await cache.get('k')).to.equal('new');
        await cache.delete('k', 'new');
        expect(await cache.get('k')).to.equal(undefined);
        await cache.delete('missing', 'x');
      });

      it('reads an entry of 64 KiB and ignores a longer one planted in the table', async () => {
        const full = 'a'.repeat(64 * KIB);
        await cache.set('full', full, T0 + MINUTE);
        expect(await cache.get('full')).to.equal(full);
        await db.knex(cacheTable).insert({ cache_key: 'big', value: 'b'.repeat(4 * KIB * KIB), expires_at: T0 + MINUTE });
        expect(await cache.get('big')).to.equal(undefined);
      });

      it('refuses an entry over 64 KiB and a key over 128 characters', async () => {
        expect(await rejectionOf(cache.set('k', 'a'.repeat(64 * KIB + 1), T0 + MINUTE), Error)).to.be.instanceOf(RangeError);
        expect(await rejectionOf(cache.get('k'.repeat(129)), Error)).to.be.instanceOf(RangeError);
        expect(await rows()).to.deep.equal([]);
      });

      it('removes at most 100 expired rows per minute as it stores entries', async () => {
        await cache.set('first', 'v', T0 + 10 * MINUTE);
        const expired = Array.from({ length: 150 }, (_, i) => ({ cache_key: `old-${String(i).padStart(3, '0')}`, value: 'x', expires_at: T0 + i }));
        await db.knex.batchInsert(cacheTable, expired, 50);
        now = T0 + 5 * MINUTE;
        await cache.set('second', 'v', T0 + 10 * MINUTE);
        expect(await rows()).to.have.length(150 - 100 + 2);
        now += MINUTE - 1;
        await cache.set('third', 'v', T0 + 10 * MINUTE);
        expect(await rows()).to.have.length(50 + 3);
        now += 1;
        await cache.set('fourth', 'v', T0 + 10 * MINUTE);
        expect((await rows()).map((row) => row.cache_key)).to.deep.equal(['first', 'fourth', 'second', 'third']);
      });

      describe('lock()', () => {
        it('gives a lock to one taker at a time and frees it on release', async () => {
          const takers = await Promise.all(Array.from({ length: 10 }, () => cache.lock('l', 5000)));
          const held = takers.filter((release) => release !== undefined);
          expect(held).to.have.length(1);
          expect(await cache.lock('l', 5000)).to.equal(undefined);
          await held[0]?.();
          expect(await db.knex(lockTable).select('*')).to.deep.equal([]);
          const again = await cache.lock('l', 5000);
          expect(again).to.be.a('function');
          await again?.();
        });

        it('is exclusive between separate caches on the same tables', async () => {
          const other = knexTokenCache(db.knex, { tablePrefix: db.prefix, clock: () => now });
          const first = await cache.lock('l', 5000);
          expect(first).to.be.a('function');
          expect(await other.lock('l', 5000)).to.equal(undefined);
          expect(await other.lock('m', 5000)).to.be.a('function');
        });

        it('lets a lock whose TTL has run out be taken over, and the old release leaves the new holder alone', async () => {
          const first = await cache.lock('l', 5000);
          now = T0 + 4999;
          expect(await cache.lock('l', 5000)).to.equal(undefined);
          now = T0 + 5000;
          const second = await cache.lock('l', 5000);
          expect(second).to.be.a('function');
          await first?.();
          expect(await cache.lock('l', 5000)).to.equal(undefined);
          const [row] = await db.knex(lockTable).select('lock_key', 'expires_at');
          expect({ ...row, expires_at: Number(row.expires_at) }).to.deep.equal({ lock_key: 'l', expires_at: T0 + 10_000 });
          await second?.();
          expect(await db.knex(lockTable).select('*')).to.deep.equal([]);
        });

        it('refuses a TTL under one millisecond', async () => {
          expect(await rejectionOf(cache.lock('l', 0), Error)).to.be.instanceOf(RangeError);
        });
      });

      it('rejects with TokenCacheError (ERR_M2M_TOKEN_CACHE), a message free of SQL, the driver error as cause, when its tables are missing', async () => {
        const bare = knexTokenCache(db.knex, { tablePrefix: `${db.prefix}none_` });
        const operations: [string, Promise<unknown>][] = [
          ['read an entry', bare.get('k')],
          ['store an entry', bare.set('k', 'sealed-value', Date.now() + MINUTE)],
          ['delete an entry', bare.delete('k', 'sealed-value')],
          ['take a lock', bare.lock('l', 1000)],
        ];
        for (const [what, promise] of operations) {
          const err = await rejectionOf(promise, TokenCacheError);
          expect([err.code, err.name, err.message]).to.deep.equal(['ERR_M2M_TOKEN_CACHE', 'TokenCacheError', `the token cache could not ${what}`]);
          expect(err.cause).to.be.instanceOf(Error);
          expect((err.cause as Error).message).to.include('none_token_');
        }
      });
    });

    describe('with tokenClient()', () => {
      let ts: TestTokenServer;
      let cache: KnexTokenCache;

      beforeEach(async () => {
        ts = await startTokenServer({ 'svc-a': SECRET });
        cache = knexTokenCache(db.knex, { tablePrefix: db.prefix });
        await cache.migrate();
      });
      afterEach(async () => { await ts.close(); });

      function create(options: Partial<TokenClientOptions> = {}): TokenClient {
        // A cache object of its own for each client, on the same tables, as another instance would have.
        return tokenClient({
          tokenUrl: ts.tokenUrl, clientId: 'svc-a', clientSecret: SECRET, cache: knexTokenCache(db.knex, { tablePrefix: db.prefix }), ...options,
        });
      }



      it('lets two clients with the same options make one token request between them, 50 cold calls each', async () => {
        ts.delay = 50;
        const a = create();
        const b = create();
        const aFetched = collect(a, 'token.fetched');
        const bFetched = collect(b, 'token.fetched');
        const errors = [...collect(a, 'cache.error'), ...collect(b, 'cache.error')];
        const tokens = await Promise.all([
          ...Array.from({ length: 50 }, () => a.getToken()),
          ...Array.from({ length: 50 }, () => b.getToken()),
        ]);
        expect(errors).to.deep.equal([]);
        expect(ts.requests).to.have.length(1);
        expect(new Set(tokens.map((t) => t.accessToken)).size).to.equal(1);
        expect([...aFetched, ...bFetched].map((e) => e.source).sort()).to.deep.equal(['cache', 'endpoint']);
        expect(await rows()).to.have.length(1);
        expect(await db.knex(lockTable).select('*')).to.deep.equal([]);
      });

      it('keeps no token, secret or client id in clear in the table', async () => {
        const token = (await create().getToken()).accessToken;
        const stored = await rows();
        expect(stored).to.have.length(1);
        for (const row of stored) {
          for (const secret of [token, SECRET, 'svc-a']) {
            expect(row.cache_key).not.to.include(secret);
            expect(row.value).not.to.include(secret);
          }
          expect(row.value).to.match(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
        }
      });

      it('ignores a tampered entry and fetches a new token', async () => {
        const first = await create().getToken();
        const [row] = await rows();
        const parts = (row as Row).value.split('.');
        const body = parts[2] as string;
        parts[2] = (body.startsWith('A') ? 'B' : 'A') + body.slice(1);
        await db.knex(cacheTable).where('cache_key', (row as Row).cache_key).update({ value: parts.join('.') });

        const second = await create().getToken();
        expect(ts.requests).to.have.length(2);
        expect(second.accessToken).not.to.equal(first.accessToken);
        expect((await rows())[0]?.value).not.to.equal(parts.join('.'));
      });

      it('never hands a client with another secret for the same client id the entry of the first', async () => {
        const first = await create().getToken();
        const [rowA] = await rows();
        ts.clients.set('svc-a', 'secret-b');
        const second = await create({ clientSecret: 'secret-b' }).getToken();
        expect(ts.requests).to.have.length(2);
        expect(second.accessToken).not.to.equal(first.accessToken);
        const rowB = (await rows()).find((row) => row.cache_key !== rowA?.cache_key) as Row;
        expect(rowB).to.be.an('object');

        // Even copied under the other credential's key, the first entry does not open.
        await db.knex(cacheTable).where('cache_key', rowB.cache_key).update({ value: rowA?.value });
        const third = await create({ clientSecret: 'secret-b' }).getToken();
        expect(ts.requests).to.have.length(3);
        expect([first.accessToken, second.accessToken]).not.to.include(third.accessToken);
      });

      it('fetches anew after invalidate(), for itself and for the clients sharing the cache', async () => {
        const client = create();
        const first = await client.getToken();
        await client.invalidate();
        expect(await rows()).to.deep.equal([]);
        const second = await client.getToken();
        expect(ts.requests).to.have.length(2);
        expect(second.accessToken).not.to.equal(first.accessToken);
        expect((await create().getToken()).accessToken).to.equal(second.accessToken);
        expect(ts.requests).to.have.length(2);
      });

      it('gets the token from the endpoint and reports cache.error, without SQL, when the tables are missing', async () => {
        const client = create({ cache: knexTokenCache(db.knex, { tablePrefix: `${db.prefix}none_` }) });
        const errors = collect(client, 'cache.error');
        const token = await client.getToken();
        expect(ts.issued.has(token.accessToken)).to.equal(true);
        expect(ts.requests).to.have.length(1);
        expect([...new Set(errors.map((e) => e.operation))]).to.include.members(['get', 'lock', 'set']);
        for (const event of errors) {
          expect(event.error).to.be.instanceOf(TokenCacheError).with.property('code', 'ERR_M2M_TOKEN_CACHE');
          expect((event.error as Error).message).to.match(/^the token cache could not /);
          expect((event.error as Error).message).not.to.match(/select|insert|none_token_/i);
        }
      });

      if (name === 'postgres') {
        it('lets two processes make one token request between them, 20 concurrent calls each', async function () {
          this.timeout(60_000);
          ts.delay = 100;
          const results = await runCallers(2, ['postgres', ts.tokenUrl, db.prefix]);
          const expected = [...ts.issued.keys()].map((token) => sha256(token));
          // One process fetched (one attempt), the other took its token from the cache.
          expect({
            requests: ts.requests.length,
            fetched: results.flatMap((result) => result.fetched).sort(),
            fingerprints: results.map((result) => result.fingerprints),
            cacheErrors: results.flatMap((result) => result.cacheErrors),
          }).to.deep.equal({ requests: 1, fetched: ['cache:0', 'endpoint:1'], fingerprints: [expected, expected], cacheErrors: [] });
        });
      }
    });
  });
}
