import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { TokenCacheError, tokenClient, type TokenCache, type TokenClient, type TokenClientOptions } from '../../lib/index.js';
import { redisTokenCache, type RedisLike } from '../../lib/client/redis-cache.js';
import { REDIS_URL } from '../support/db.js';
import { requiresServers } from '../support/servers.js';
import { collect, startTokenServer, type TestTokenServer } from './fixtures.js';
import { runCallers } from './spawn-child.js';
import { rejectionOf } from '../support/rejection.js';
import { InvalidOptionError } from '../../lib/core/options.js';

const SECRET = 'secret-a';
const T0 = Date.UTC(2026, 10, 22, 12);
const KIB = 1024;

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms); });
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => { server.close(resolve); });
  return port;
}

/** An ioredis client to a closed port whose commands fail at once. */
async function unreachableRedis(): Promise<Redis> {
  const redis = new Redis({
    host: '127.0.0.1', port: await closedPort(), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null,
  });
  redis.on('error', () => {});
  return redis;
}

describe('redisTokenCache()', function () {
  requiresServers(this, 'redis');
  let redis: Redis;
  let prefix: string;

  before(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await redis.ping();
  });
  after(() => { redis.disconnect(); });

  beforeEach(() => { prefix = `m2m-test:${randomBytes(6).toString('hex')}:`; });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  });

  describe('options', () => {
    it('accepts an ioredis client as RedisLike', () => {
      const typed: RedisLike = redis;
      expect(typed).to.equal(redis);
    });

    const cases: [string, unknown, unknown, RegExp][] = [
      ['no client', undefined, {}, /needs an ioredis client/],
      ['a client without EVAL', { getrange() {}, set() {}, del() {} }, {}, /no eval command/],
      ['a non-string prefix', 'redis', { prefix: 1 }, /prefix must be a string/],
      ['a clock that is not a function', 'redis', { clock: 5 }, /clock must be a function/],
    ];
    for (const [what, client, options, message] of cases) {
      it(`throws an InvalidOptionError for ${what}`, () => {
        const target = client === 'redis' ? redis : client;
        expect(() => redisTokenCache(target as RedisLike, options as never)).to.throw(InvalidOptionError, message);
      });
    }
  });

  describe('contract', () => {
    let cache: TokenCache;
    let now: number;
    beforeEach(() => {
      now = T0;
      cache = redisTokenCache(redis, { prefix, clock: () => now });
    });

    it('returns undefined for a key never set', async () => {
      expect(await cache.get('k')).to.equal(undefined);
    });

    it('returns what was stored, under the prefix, and replaces it on the next set', async () => {
      await cache.set('k', 'v1', T0 + 60_000);
      expect(await cache.get('k')).to.equal('v1');
      expect(await redis.get(`${prefix}k`)).to.equal('v1');
      await cache.set('k', 'v2', T0 + 30_000);
      expect(await cache.get('k')).to.equal('v2');
    });

    it('gives the entry a TTL that ends at expiresAt', async () => {
      await cache.set('k', 'v', T0 + 60_000);
      const pttl = await redis.pttl(`${prefix}k`);
      expect(pttl).to.be.within(59_000, 60_000);
    });

    it('stores nothing for an entry that has already expired', async () => {
      await cache.set('k', 'v', T0);
      await cache.set('j', 'v', T0 - 1);
      expect(await redis.exists(`${prefix}k`, `${prefix}j`)).to.equal(0);
    });

    it('forgets an entry once its expiry has passed', async () => {
      const live = redisTokenCache(redis, { prefix });
      await live.set('k', 'v', Date.now() + 5);
      await sleep(30);
      expect(await live.get('k')).to.equal(undefined);
    });

    it('deletes an entry whatever it holds when no value is given', async () => {
      await cache.set('k', 'v', T0 + 60_000);
      await cache.delete('k');
      expect(await cache.get('k')).to.equal(undefined);
    });

    it('deletes an entry only while it still holds the given value', async () => {
      await cache.set('k', 'old', T0 + 60_000);
      await cache.set('k', 'new', T0 + 60_000);
      await cache.delete('k', 'old');
      expect(await cache.get('k')).to.equal('new');
      await cache.delete('k', 'new');
      expect(await cache.get('k')).to.equal(undefined);
      await cache.delete('missing', 'x');
    });

    it('adds no prefix by default, as the client keys already start with m2m:token:', async () => {
      const plain = redisTokenCache(redis, { clock: () => now });
      const key = `${prefix}default`;
      try {
        await plain.set(key, 'v', T0 + 60_000);
        expect(await redis.get(key)).to.equal('v');
      } finally {
        await redis.del(key);
      }
    });

    it('reads an entry of 64 KiB and ignores a longer one planted in Redis', async () => {
      const full = 'a'.repeat(64 * KIB);
      await redis.set(`${prefix}full`, full);
      expect(await cache.get('full')).to.equal(full);
      await redis.set(`${prefix}big`, 'b'.repeat(4 * KIB * KIB));
      expect(await cache.get('big')).to.equal(undefined);
      await redis.set(`${prefix}over`, `${full}é`);
      expect(await cache.get('over')).to.equal(undefined);
    });

    it('refuses to store an entry over 64 KiB', async () => {
      const err = await rejectionOf(cache.set('k', 'a'.repeat(64 * KIB + 1), T0 + 60_000), Error);
      expect(err).to.be.instanceOf(RangeError);
      expect(await redis.exists(`${prefix}k`)).to.equal(0);
    });

    describe('lock()', () => {
      it('gives a lock to one taker at a time, with the TTL asked, and frees it on release', async () => {
        const lock = cache.lock as NonNullable<TokenCache['lock']>;
        const takers = await Promise.all(Array.from({ length: 10 }, () => lock('l', 5000)));
        const held = takers.filter((release) => release !== undefined);
        expect(held).to.have.length(1);
        expect(await redis.pttl(`${prefix}l`)).to.be.within(4000, 5000);
        expect(await lock('l', 5000)).to.equal(undefined);
        await held[0]?.();
        expect(await redis.exists(`${prefix}l`)).to.equal(0);
        const again = await lock('l', 5000);
        expect(again).to.be.a('function');
        await again?.();
      });

      it('keeps locks apart from entries and from each other', async () => {
        const lock = cache.lock as NonNullable<TokenCache['lock']>;
        const a = await lock('a', 5000);
        const b = await lock('b', 5000);
        expect(a).to.be.a('function');
        expect(b).to.be.a('function');
        await a?.();
        expect(await redis.exists(`${prefix}b`)).to.equal(1);
        await b?.();
      });

      it('lets a lock whose TTL has run out be taken over, and the old release leaves the new holder alone', async () => {
        const lock = cache.lock as NonNullable<TokenCache['lock']>;
        const first = await lock('l', 1);
        expect(first).to.be.a('function');
        await sleep(20);
        const second = await lock('l', 5000);
        expect(second).to.be.a('function');
        await first?.();
        expect(await lock('l', 5000)).to.equal(undefined);
        await second?.();
        expect(await redis.exists(`${prefix}l`)).to.equal(0);
      });

      it('refuses a TTL under one millisecond', async () => {
        const lock = cache.lock as NonNullable<TokenCache['lock']>;
        expect(await rejectionOf(lock('l', 0), Error)).to.be.instanceOf(RangeError);
      });
    });

    it('rejects with TokenCacheError (ERR_M2M_TOKEN_CACHE), its own message and the Redis error as cause when Redis is unreachable', async () => {
      const dead = await unreachableRedis();
      try {
        const broken = redisTokenCache(dead, { prefix });
        const operations: [string, Promise<unknown>][] = [
          ['read an entry', broken.get('k')],
          ['store an entry', broken.set('k', 'sealed-value', Date.now() + 60_000)],
          ['delete an entry', broken.delete('k', 'sealed-value')],
          ['take a lock', (broken.lock as NonNullable<TokenCache['lock']>)('l', 1000)],
        ];
        for (const [what, promise] of operations) {
          const err = await rejectionOf(promise, TokenCacheError);
          expect([err.code, err.message]).to.deep.equal(['ERR_M2M_TOKEN_CACHE', `the Redis token cache could not ${what}`]);
          expect(err.cause).to.be.instanceOf(Error);
          expect(err.message).not.to.include('sealed-value');
        }
      } finally {
        dead.disconnect();
      }
    });
  });

  describe('with tokenClient()', () => {
    let ts: TestTokenServer;
    const connections: Redis[] = [];

    beforeEach(async () => { ts = await startTokenServer({ 'svc-a': SECRET }); });
    afterEach(async () => {
      await ts.close();
      for (const c of connections.splice(0)) c.disconnect();
    });

    /** A cache on a connection of its own, as another instance of the service would have. */
    async function sharedCache(): Promise<TokenCache> {
      const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      connections.push(connection);
      await connection.ping();
      return redisTokenCache(connection, { prefix });
    }

    function create(cache: TokenCache, options: Partial<TokenClientOptions> = {}): TokenClient {
      return tokenClient({ tokenUrl: ts.tokenUrl, clientId: 'svc-a', clientSecret: SECRET, cache, ...options });
    }



    /** Every key under this test's prefix with its raw value. */
    async function rawEntries(): Promise<Map<string, string>> {
      const entries = new Map<string, string>();
      for (const key of await redis.keys(`${prefix}*`)) entries.set(key, await redis.get(key) ?? '');
      return entries;
    }

    async function tokenKeys(): Promise<string[]> {
      return (await redis.keys(`${prefix}*`)).filter((key) => !key.endsWith(':lock')).sort();
    }

    it('lets two clients with the same options make one token request between them, 50 cold calls each', async () => {
      ts.delay = 50;
      const a = create(await sharedCache());
      const b = create(await sharedCache());
      const aFetched = collect(a, 'token.fetched');
      const bFetched = collect(b, 'token.fetched');
      const tokens = await Promise.all([
        ...Array.from({ length: 50 }, () => a.getToken()),
        ...Array.from({ length: 50 }, () => b.getToken()),
      ]);
      expect(ts.requests).to.have.length(1);
      expect(new Set(tokens.map((t) => t.accessToken)).size).to.equal(1);
      expect([...aFetched, ...bFetched].map((e) => e.source).sort()).to.deep.equal(['cache', 'endpoint']);
      expect(await tokenKeys()).to.have.length(1);
      expect(await redis.keys(`${prefix}*:lock`)).to.deep.equal([]);
    });

    it('keeps no token, secret or client id in clear in Redis', async () => {
      const client = create(await sharedCache());
      const token = (await client.getToken()).accessToken;
      const entries = await rawEntries();
      expect(entries.size).to.equal(1);
      for (const [key, value] of entries) {
        for (const secret of [token, SECRET, 'svc-a']) {
          expect(key).not.to.include(secret);
          expect(value).not.to.include(secret);
        }
        expect(value).to.match(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
      }
    });

    it('ignores a tampered entry and fetches a new token', async () => {
      const first = await create(await sharedCache()).getToken();
      const [key] = await tokenKeys();
      const sealed = await redis.get(key as string) as string;
      const parts = sealed.split('.');
      const body = parts[2] as string;
      parts[2] = (body.startsWith('A') ? 'B' : 'A') + body.slice(1);
      await redis.set(key as string, parts.join('.'), 'PX', 60_000);

      const second = await create(await sharedCache()).getToken();
      expect(ts.requests).to.have.length(2);
      expect(second.accessToken).not.to.equal(first.accessToken);
      expect(await redis.get(key as string)).not.to.equal(parts.join('.'));
    });

    it('never hands a client with another secret for the same client id the entry of the first', async () => {
      const first = await create(await sharedCache()).getToken();
      const [keyA] = await tokenKeys();
      ts.clients.set('svc-a', 'secret-b');
      const second = await create(await sharedCache(), { clientSecret: 'secret-b' }).getToken();
      expect(ts.requests).to.have.length(2);
      expect(second.accessToken).not.to.equal(first.accessToken);
      const keyB = (await tokenKeys()).find((key) => key !== keyA) as string;
      expect(keyB).to.be.a('string');

      // Even copied under the other credential's key, the first entry does not open.
      await redis.set(keyB, await redis.get(keyA as string) as string, 'PX', 60_000);
      const third = await create(await sharedCache(), { clientSecret: 'secret-b' }).getToken();
      expect(ts.requests).to.have.length(3);
      expect([first.accessToken, second.accessToken]).not.to.include(third.accessToken);
    });

    it('fetches anew after invalidate(), for itself and for the clients sharing the cache', async () => {
      const client = create(await sharedCache());
      const first = await client.getToken();
      await client.invalidate();
      expect(await tokenKeys()).to.deep.equal([]);
      const second = await client.getToken();
      expect(ts.requests).to.have.length(2);
      expect(second.accessToken).not.to.equal(first.accessToken);
      const other = await create(await sharedCache()).getToken();
      expect(other.accessToken).to.equal(second.accessToken);
      expect(ts.requests).to.have.length(2);
    });

    it('gets the token from the endpoint and reports cache.error when Redis is unreachable', async () => {
      const dead = await unreachableRedis();
      connections.push(dead);
      const client = create(redisTokenCache(dead, { prefix }));
      const errors = collect(client, 'cache.error');
      const token = await client.getToken();
      expect(ts.issued.has(token.accessToken)).to.equal(true);
      expect(ts.requests).to.have.length(1);
      const operations = new Set(errors.map((e) => e.operation));
      expect([...operations]).to.include.members(['get', 'lock', 'set']);
      for (const event of errors) {
        expect(event.clientId).to.equal('svc-a');
        expect(event.error).to.be.instanceOf(TokenCacheError).with.property('code', 'ERR_M2M_TOKEN_CACHE');
        expect((event.error as Error).message).to.match(/^the Redis token cache could not /);
        expect(String((event.error as Error).message)).not.to.include(token.accessToken);
      }
    });

    it('lets two processes make one token request between them, 20 concurrent calls each', async function () {
      this.timeout(60_000);
      ts.delay = 100;
      const results = await runCallers(2, ['redis', ts.tokenUrl, prefix]);
      const expected = [...ts.issued.keys()].map((token) => sha256(token));
      // One process fetched (one attempt), the other took its token from the cache.
      expect({
        requests: ts.requests.length,
        fetched: results.flatMap((result) => result.fetched).sort(),
        fingerprints: results.map((result) => result.fingerprints),
        cacheErrors: results.flatMap((result) => result.cacheErrors),
      }).to.deep.equal({ requests: 1, fetched: ['cache:0', 'endpoint:1'], fingerprints: [expected, expected], cacheErrors: [] });
    });
  });
});
