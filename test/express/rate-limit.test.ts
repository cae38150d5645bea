import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { authorizationServer, createKnexStore } from '../../lib/index.js';
import { InvalidOptionError } from '../../lib/core/options.js';
import { REDIS_URL, sqliteDatabase } from '../support/db.js';
import { requiresServers } from '../support/servers.js';
import { basic, postForm, type ReadResponse } from '../support/http.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';

const TOO_MANY = { error: 'temporarily_unavailable', error_description: 'too many failed client authentications; retry later' };

function expect429(res: ReadResponse, maxWait: number): void {
  expect([res.status, res.headers['cache-control'], res.headers.pragma, res.json]).to.deep.equal([429, 'no-store', 'no-cache', TOO_MANY]);
  const wait = Number(res.headers['retry-after']);
  expect(Number.isInteger(wait) && wait >= 1 && wait <= maxWait, `Retry-After ${res.headers['retry-after']}`).to.equal(true);
}

/**
 * A Redis client and a key prefix of its own for the enclosing describe(); its keys are removed
 * after it. Returns a getter, valid from the first before() hook on.
 */
function useRedis(): () => { redis: Redis; keyPrefix: string } {
  let redis: Redis | undefined;
  const keyPrefix = `m2m_test_${randomBytes(4).toString('hex')}`;
  before(() => { redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }); });
  after(async () => {
    if (!redis) return;
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  return () => ({ redis: redis as Redis, keyPrefix });
}

describe('authorizationServer() rate limiting', () => {
  describe('in memory (default)', () => {
    let issuer: TestIssuer;
    let victim: { clientId: string; clientSecret: string };
    const limited: unknown[] = [];

    before(async () => {
      issuer = await startIssuer({ rateLimit: { perClient: { points: 3, duration: 60 }, perAddress: false } });
      victim = await issuer.store.clients.create({ clientId: 'victim', name: 'v', scopes: ['a'], audiences: ['aud'] });
      issuer.as.events.on('rate_limited', (e) => limited.push(e));
    });
    after(() => issuer.close());

    it('answers 429 with Retry-After to failures once a client id has failed `points` times, and still a token to the right secret', async () => {
      for (let i = 0; i < 3; i++) {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('victim', 'wrong') });
        expect(res.status).to.equal(401);
      }
      expect429(await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('victim', 'wrong') }), 60);
      const right = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('victim', victim.clientSecret) });
      expect([right.status, (right.json as { token_type: string }).token_type]).to.deep.equal([200, 'Bearer']);
      expect(limited).to.have.length(1);
      expect((limited[0] as { clientId: string; address: string }).clientId).to.equal('victim');
    });

    it('keeps other client ids working', async () => {
      const other = await issuer.store.clients.create({ clientId: 'bystander', name: 'b', scopes: ['a'], audiences: ['aud'] });
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('bystander', other.clientSecret) });
      expect(res.status).to.equal(200);
    });

    it('never counts successful authentications', async () => {
      const busy = await issuer.store.clients.create({ clientId: 'busy', name: 'b', scopes: ['a'], audiences: ['aud'] });
      for (let i = 0; i < 10; i++) {
        const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('busy', busy.clientSecret) });
        expect(res.status).to.equal(200);
      }
    });
  });

  describe('failures that are no guess', () => {
    it('never counts a disabled client\'s right secret or an expired one: other clients on the address keep working', async () => {
      const issuer = await startIssuer({ rateLimit: { perClient: { points: 3, duration: 60 }, perAddress: { points: 5, duration: 60 } } });
      try {
        const disabled = await issuer.store.clients.create({ clientId: 'retired', name: 'r', scopes: ['a'], audiences: ['aud'] });
        await issuer.store.clients.update('retired', { enabled: false });
        const expired = await issuer.store.clients.create({ clientId: 'stale', name: 's', scopes: ['a'], audiences: ['aud'], secretExpiresAt: new Date(Date.now() + 50) });
        await new Promise((resolve) => { setTimeout(resolve, 80); });
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) {
          statuses.push((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('retired', disabled.clientSecret) })).status);
          statuses.push((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('stale', expired.clientSecret) })).status);
        }
        expect(new Set(statuses)).to.deep.equal(new Set([401]));
        const other = await issuer.store.clients.create({ clientId: 'bystander', name: 'b', scopes: ['a'], audiences: ['aud'] });
        expect((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('bystander', other.clientSecret) })).status).to.equal(200);
      } finally {
        await issuer.close();
      }
    });
  });

  describe('per address', () => {
    it('answers 429 to an address that fails across many client ids', async () => {
      const issuer = await startIssuer({ rateLimit: { perAddress: { points: 5, duration: 30 } } });
      try {
        for (let i = 0; i < 5; i++) {
          const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: `guess-${i}`, client_secret: 'x' });
          expect(res.status).to.equal(401);
        }
        expect429(await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: 'guess-99', client_secret: 'x' }), 30);
      } finally {
        await issuer.close();
      }
    });

    it('does not key counters on a malformed client id', async () => {
      const issuer = await startIssuer({ rateLimit: { perClient: { points: 1, duration: 60 }, perAddress: false } });
      try {
        for (let i = 0; i < 3; i++) {
          const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials', client_id: 'x'.repeat(2000), client_secret: 'x' });
          expect(res.status).to.equal(401);
        }
      } finally {
        await issuer.close();
      }
    });
  });

  describe('with "rateLimit: false"', () => {
    it('never answers 429', async () => {
      const issuer = await startIssuer({ rateLimit: false });
      try {
        for (let i = 0; i < 40; i++) {
          const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('victim', 'wrong') });
          expect(res.status).to.equal(401);
        }
      } finally {
        await issuer.close();
      }
    });
  });

  describe('in Redis, shared between instances', function () {
    requiresServers(this, 'redis');
    const shared = useRedis();
    let redis: Redis;
    let keyPrefix: string;
    before(() => ({ redis, keyPrefix } = shared()));

    it('answers failures for a client id with 429 on instance B after failures on instance A', async () => {
      const rateLimit = { redis, keyPrefix, perClient: { points: 2, duration: 60 }, perAddress: false as const };
      const a = await startIssuer({ rateLimit });
      // Instance B shares A's database and Redis, as two nodes behind a load balancer would.
      const b = await startIssuer({ rateLimit }, { ...a.db, destroy: async () => undefined });
      try {
        const { clientSecret } = await a.store.clients.create({ clientId: 'shared', name: 's', scopes: ['a'], audiences: ['aud'] });
        for (let i = 0; i < 2; i++) {
          expect((await postForm(a.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('shared', 'wrong') })).status).to.equal(401);
        }
        expect429(await postForm(b.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('shared', 'wrong') }), 60);
        expect((await postForm(b.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('shared', clientSecret) })).status).to.equal(200);
        expect(await redis.keys(`${keyPrefix}*`)).to.have.length.greaterThan(0);
        expect((await redis.keys(`${keyPrefix}*`)).join(' ')).not.to.include('wrong');
      } finally {
        await b.close();
        await a.close();
      }
    });

    it('keeps answering when Redis is unreachable, counting in memory instead', async () => {
      const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
      dead.on('error', () => { /* expected: nothing listens on port 1 */ });
      const db = sqliteDatabase();
      const issuer = await startIssuer({ rateLimit: { redis: dead, perClient: { points: 2, duration: 60 }, perAddress: false } }, db);
      try {
        const { clientSecret } = await issuer.store.clients.create({ clientId: 'r', name: 'r', scopes: ['a'], audiences: ['aud'] });
        expect((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('r', clientSecret) })).status).to.equal(200);
        for (let i = 0; i < 2; i++) {
          expect((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('r', 'wrong') })).status).to.equal(401);
        }
        expect429(await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('r', 'wrong') }), 60);
        expect((await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('r', clientSecret) })).status).to.equal(200);
      } finally {
        dead.disconnect();
        await issuer.close();
      }
    });

    it('refuses a rateLimit.redis that is not an object', async () => {
      const db = sqliteDatabase();
      try {
        const store = createKnexStore(db.knex);
        expect(() => authorizationServer({ issuer: 'https://a.b/o', store, rateLimit: { redis: 'redis://x' } }))
          .to.throw(InvalidOptionError, 'rateLimit.redis must be an ioredis client').with.property('option', 'rateLimit.redis');
      } finally {
        await db.destroy();
      }
    });
  });

  describe('under concurrency', function () {
    requiresServers(this, 'redis');
    const shared = useRedis();
    let redis: Redis;
    let keyPrefix: string;
    before(() => ({ redis, keyPrefix } = shared()));

    const setups: [string, () => Partial<Parameters<typeof startIssuer>[0]>, number][] = [
      ['the memory limiter, per client', () => ({ rateLimit: { perClient: { points: 10, duration: 60 }, perAddress: false } }), 10],
      ['the memory limiter, per address', () => ({ rateLimit: { perClient: false, perAddress: { points: 15, duration: 60 } } }), 15],
      ['the Redis limiter, per client', () => ({ rateLimit: { redis, keyPrefix: `${keyPrefix}${randomBytes(3).toString('hex')}`, perClient: { points: 10, duration: 60 }, perAddress: false } }), 10],
      ['the Redis limiter, per address', () => ({ rateLimit: { redis, keyPrefix: `${keyPrefix}${randomBytes(3).toString('hex')}`, perClient: false, perAddress: { points: 12, duration: 60 } } }), 12],
    ];
    for (const [what, options, limit] of setups) {
      for (const clientCacheTtl of [undefined, 0]) {
        it(`gives at most ${limit} 401s to 200 parallel wrong secrets with ${what}${clientCacheTtl === 0 ? ' and clientCacheTtl: 0' : ''}, the rest 429, and the right secret a token`, async () => {
          const issuer = await startIssuer(options(), undefined, clientCacheTtl === undefined ? {} : { clientCacheTtl });
          try {
            const { clientSecret } = await issuer.store.clients.create({ clientId: 'target', name: 't', scopes: ['a'], audiences: ['aud'] });
            const answers = await Promise.all(Array.from({ length: 200 }, () =>
              postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('target', 'wrong') })));
            const statuses = answers.map((r) => r.status);
            expect(statuses.filter((s) => s === 401).length).to.equal(limit);
            expect(statuses.filter((s) => s === 429).length).to.equal(200 - limit);
            const right = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('target', clientSecret) });
            // Per client, the right secret is never refused; per address, this address spent its own budget.
            expect(right.status).to.equal(what.endsWith('per address') ? 429 : 200);
          } finally {
            await issuer.close();
          }
        });
      }
    }
  });
});
