import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  authorizationServer, createKnexStore, createResourceServer, knexTokenCache, memoryTokenCache, redisTokenCache, requireScope,
  runMigrations, tokenClient, tokenClients, type ResourceServer,
} from '../../lib/index.js';
import { checkOptions, closest, InvalidOptionError } from '../../lib/core/options.js';
import { REDIS_URL, sqliteDatabase, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/rejection.js';

const ISSUER = 'https://auth.internal/oauth';
const AUDIENCE = 'https://reports.internal';
const JWKS_URI = 'https://auth.internal/oauth/jwks.json';
const CALLER = { tokenUrl: 'https://auth.internal/oauth/token', clientId: 'svc-a', clientSecret: 'secret-a' };

/** The InvalidOptionError `create` throws; fails the test when it throws nothing or something else. */
function optionError(create: () => unknown): InvalidOptionError {
  try {
    create();
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect(err).to.be.instanceOf(TypeError);
    return err as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

/** The option's own name, without the path of the options holding it: `points` of `rateLimit.perClient.points`. */
const lastName = (option: string): string => option.slice(option.lastIndexOf('.') + 1);

function expectUnknown(err: InvalidOptionError, option: string, hint: string): void {
  expect([err.code, err.option]).to.deep.equal(['ERR_M2M_UNKNOWN_OPTION', option]);
  expect(err.message).to.include(`"${lastName(option)}"`).and.to.include(`(did you mean ${hint}?)`);
}

function expectInvalid(err: InvalidOptionError, option: string): void {
  expect([err.code, err.option]).to.deep.equal(['ERR_M2M_INVALID_OPTION', option]);
  expect(err.message).to.include(lastName(option));
}

describe('closest()', () => {
  it('finds the known name a typo was meant to be', () => {
    expect(closest('jwksUrl', ['issuer', 'audience', 'jwksUri', 'jwksTimeout'])).to.equal('jwksUri');
    expect(closest('retrys', ['retries', 'minDelay', 'maxDelay'])).to.equal('retries');
  });

  it('ignores case', () => {
    expect(closest('tokenURL', ['issuer', 'tokenUrl'])).to.equal('tokenUrl');
  });

  it('suggests nothing when no name is close', () => {
    expect(closest('secret', ['tokenUrl', 'clientSecret', 'scope'])).to.equal(undefined);
    expect(closest('x', [])).to.equal(undefined);
  });
});

describe('checkOptions()', () => {
  it('returns an object holding only known names', () => {
    const options = { a: 1, b: undefined };
    expect(checkOptions<{ a?: number; b?: number }>(options, 'f()', ['a', 'b'])).to.equal(options);
  });

  it('refuses anything but a plain options object, naming the options', () => {
    for (const value of [null, undefined, 'a', 5, [], () => undefined]) {
      const err = optionError(() => checkOptions(value, 'f()', []));
      expect([err.code, err.option, err.message]).to.deep.equal(['ERR_M2M_INVALID_OPTION', 'f()', 'f() needs an options object']);
    }
  });

  it('refuses an unknown name with a did-you-mean', () => {
    const err = optionError(() => checkOptions<{ jwksUri?: string }>({ jwksUrl: 'x' }, 'f()', ['jwksUri']));
    expect([err.code, err.option, err.message])
      .to.deep.equal(['ERR_M2M_UNKNOWN_OPTION', 'jwksUrl', 'f() has no option "jwksUrl" (did you mean jwksUri?)']);
  });

  it('names an unknown nested option by its path', () => {
    const err = optionError(() => checkOptions<{ retries?: number }>({ retrys: 1 }, 'retry', ['retries'], 'retry'));
    expect([err.option, err.message]).to.deep.equal(['retry.retrys', 'retry has no option "retrys" (did you mean retries?)']);
    expect(optionError(() => checkOptions(null, 'retry', [], 'retry')).option).to.equal('retry');
  });

  it('leaves out the hint when no name is close', () => {
    expect(optionError(() => checkOptions<{ jwksUri?: string }>({ zzzzzz: 1 }, 'f()', ['jwksUri'])).message).to.equal('f() has no option "zzzzzz"');
  });
});

describe('factory options', () => {
  let db: TestDatabase;
  let redis: Redis;

  before(() => {
    db = sqliteDatabase();
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis.disconnect();
    await db.destroy();
  });

  describe('authorizationServer()', () => {
    const create = (options: Record<string, unknown>) => () =>
      authorizationServer({ issuer: ISSUER, store: createKnexStore(db.knex), ...options } as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ tokenLifeTime: 60 })), 'tokenLifeTime', 'tokenLifetime');
      expectUnknown(optionError(create({ jwksMaxage: 60 })), 'jwksMaxage', 'jwksMaxAge');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['tokenLifetime', 'maxTokenLifetime', 'scopePolicy', 'claims', 'signingAlgorithm', 'keyCacheTtl', 'jwksMaxAge', 'rateLimit', 'clock']) {
        expectInvalid(optionError(create({ [option]: null })), option);
      }
    });

    it("refuses '5' for a number of seconds", () => {
      for (const option of ['tokenLifetime', 'maxTokenLifetime', 'keyCacheTtl', 'jwksMaxAge']) {
        expectInvalid(optionError(create({ [option]: '5' })), option);
      }
    });

    describe('rateLimit', () => {
      it('refuses a misspelled option, naming it by its path', () => {
        expectUnknown(optionError(create({ rateLimit: { perClinet: false } })), 'rateLimit.perClinet', 'perClient');
        expectUnknown(optionError(create({ rateLimit: { keyprefix: 'x' } })), 'rateLimit.keyprefix', 'keyPrefix');
      });

      it('refuses a misspelled option of perClient and perAddress', () => {
        expectUnknown(optionError(create({ rateLimit: { perClient: { points: 5, duraton: 60 } } })), 'rateLimit.perClient.duraton', 'duration');
        expectUnknown(optionError(create({ rateLimit: { perAddress: { point: 5, duration: 60 } } })), 'rateLimit.perAddress.point', 'points');
      });

      it('refuses null for any of its options', () => {
        for (const option of ['perClient', 'perAddress', 'redis', 'keyPrefix']) {
          expectInvalid(optionError(create({ rateLimit: { [option]: null } })), `rateLimit.${option}`);
        }
        expectInvalid(optionError(create({ rateLimit: { perClient: { points: null, duration: 60 } } })), 'rateLimit.perClient.points');
      });

      it("refuses '5' for points or duration", () => {
        expectInvalid(optionError(create({ rateLimit: { perClient: { points: '5', duration: 60 } } })), 'rateLimit.perClient.points');
        expectInvalid(optionError(create({ rateLimit: { perAddress: { points: 5, duration: '60' } } })), 'rateLimit.perAddress.duration');
      });

      it('refuses a limit without points or duration', () => {
        expectInvalid(optionError(create({ rateLimit: { perClient: { points: 5 } } })), 'rateLimit.perClient.duration');
      });

      it('accepts false for a limit, or for the whole option', () => {
        expect(create({ rateLimit: { perClient: false, perAddress: { points: 5, duration: 60 } } })).not.to.throw();
        expect(create({ rateLimit: false })).not.to.throw();
      });
    });
  });

  describe('createResourceServer()', () => {
    const create = (options: Record<string, unknown>) => () =>
      createResourceServer({ issuer: ISSUER, audience: AUDIENCE, jwksUri: JWKS_URI, ...options } as never);

    it('refuses jwksUrl for jwksUri instead of falling back to discovery', () => {
      const err = optionError(() => createResourceServer({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: JWKS_URI } as never));
      expectUnknown(err, 'jwksUrl', 'jwksUri');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['jwksUri', 'algorithms', 'clockTolerance', 'scopeClaim', 'match', 'optional', 'strict', 'claims', 'isRevoked',
        'jwksTimeout', 'jwksCacheMaxAge', 'jwksCooldown', 'jwksServeStale', 'tokenCacheSize', 'realm', 'errors', 'allowHttp', 'fetch', 'clock']) {
        expectInvalid(optionError(create({ [option]: null })), option);
      }
    });

    it("refuses '5' for a numeric option", () => {
      for (const option of ['clockTolerance', 'jwksTimeout', 'jwksCacheMaxAge', 'jwksCooldown', 'jwksServeStale', 'tokenCacheSize']) {
        expectInvalid(optionError(create({ [option]: '5' })), option);
      }
    });
  });

  describe('requireScope()', () => {
    const create = (options: Record<string, unknown>) => () =>
      requireScope('reports:read', { issuer: ISSUER, audience: AUDIENCE, jwksUri: JWKS_URI, ...options } as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ jwksUri: undefined, jwksUrl: JWKS_URI })), 'jwksUrl', 'jwksUri');
    });

    it('refuses null for an optional option', () => {
      expectInvalid(optionError(create({ clockTolerance: null })), 'clockTolerance');
    });

    it("refuses '5' for a numeric option", () => {
      expectInvalid(optionError(create({ tokenCacheSize: '5' })), 'tokenCacheSize');
    });
  });

  describe('route options of a resource server', () => {
    let rs: ResourceServer;
    before(() => { rs = createResourceServer({ issuer: ISSUER, audience: AUDIENCE, jwksUri: JWKS_URI }); });

    it('refuses a misspelled option of requireScope(), naming the one meant', () => {
      expectUnknown(optionError(() => rs.requireScope('reports:read', { mach: 'any' } as never)), 'mach', 'match');
    });

    it('refuses a misspelled option of authenticate(), naming the one meant', () => {
      expectUnknown(optionError(() => rs.authenticate({ optinal: true } as never)), 'optinal', 'optional');
    });

    it('refuses null, or a string for a boolean', () => {
      expectInvalid(optionError(() => rs.requireScope('reports:read', { match: null } as never)), 'match');
      expectInvalid(optionError(() => rs.requireScope('reports:read', { optional: 'true' } as never)), 'optional');
      expectInvalid(optionError(() => rs.authenticate({ optional: null } as never)), 'optional');
    });
  });

  describe('tokenClient()', () => {
    const create = (options: Record<string, unknown>) => () => tokenClient({ ...CALLER, ...options } as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ tokenUrl: undefined, tokenURL: CALLER.tokenUrl })), 'tokenURL', 'tokenUrl');
      expectUnknown(optionError(create({ scopes: 'reports:read' })), 'scopes', 'scope');
    });

    it('refuses a misspelled retry option, naming it by its path', () => {
      expectUnknown(optionError(create({ retry: { retrys: 2 } })), 'retry.retrys', 'retries');
      expectUnknown(optionError(create({ retry: { maxDelays: 2 } })), 'retry.maxDelays', 'maxDelay');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['tokenUrl', 'clientSecret', 'authMethod', 'scope', 'audience', 'resource', 'params', 'cache', 'timeout',
        'defaultLifetime', 'expiryMargin', 'refreshMargin', 'retry', 'replay', 'lockTimeout', 'allowHttp', 'fetch', 'clock']) {
        expectInvalid(optionError(create({ [option]: null })), option);
      }
      for (const option of ['retries', 'minDelay', 'maxDelay']) {
        expectInvalid(optionError(create({ retry: { [option]: null } })), `retry.${option}`);
      }
    });

    it('refuses null for an option of private_key_jwt', () => {
      expectInvalid(optionError(create({ clientSecret: undefined, privateKey: null })), 'privateKey');
    });

    it("refuses '5' for a number of seconds", () => {
      for (const option of ['timeout', 'defaultLifetime', 'expiryMargin', 'refreshMargin', 'lockTimeout']) {
        expectInvalid(optionError(create({ [option]: '5' })), option);
      }
      for (const option of ['retries', 'minDelay', 'maxDelay']) {
        expectInvalid(optionError(create({ retry: { [option]: '5' } })), `retry.${option}`);
      }
    });

    it("refuses 'false' for a boolean", () => {
      expectInvalid(optionError(create({ allowHttp: 'false' })), 'allowHttp');
    });
  });

  describe('tokenClients()', () => {
    const registration = { clientId: 'svc-a', clientSecret: 'secret-a' };
    const shared = { tokenUrl: CALLER.tokenUrl };

    it('refuses a misspelled shared option, naming the one meant', () => {
      expectUnknown(optionError(() => tokenClients({ reports: registration }, { tokenURL: CALLER.tokenUrl } as never)), 'tokenURL', 'tokenUrl');
    });

    it('refuses credentials among the shared options', () => {
      const err = optionError(() => tokenClients({ reports: { clientId: 'svc-a' } } as never, { ...shared, clientSecret: 'secret-a' } as never));
      expect([err.code, err.option]).to.deep.equal(['ERR_M2M_UNKNOWN_OPTION', 'clientSecret']);
    });

    it('refuses a misspelled option of a registration, naming the registration and the option', () => {
      const err = optionError(() => tokenClients({ reports: { ...registration, scpoe: 'reports:read' } } as never, shared));
      expectUnknown(err, 'reports.scpoe', 'scope');
      expect(err.message).to.match(/^registration "reports": /);
    });

    it('refuses null for an optional option, in a registration or shared', () => {
      expectInvalid(optionError(() => tokenClients({ reports: { ...registration, timeout: null } } as never, shared)), 'reports.timeout');
      expectInvalid(optionError(() => tokenClients({ reports: registration }, { ...shared, cache: null } as never)), 'reports.cache');
      expectInvalid(optionError(() => tokenClients({ reports: registration }, null as never)), 'shared');
    });

    it("refuses '5' for a number of seconds", () => {
      expectInvalid(optionError(() => tokenClients({ reports: { ...registration, lockTimeout: '5' } } as never, shared)), 'reports.lockTimeout');
      expectInvalid(optionError(() => tokenClients({ reports: registration }, { ...shared, retry: { minDelay: '5' } } as never)),
        'reports.retry.minDelay');
    });
  });

  describe('createKnexStore()', () => {
    const create = (options: Record<string, unknown>) => () => createKnexStore(db.knex, options as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ clientCacheTTL: 5 })), 'clientCacheTTL', 'clientCacheTtl');
      expectUnknown(optionError(create({ keyEncryptionSecret: 'x'.repeat(32) })), 'keyEncryptionSecret', 'keyEncryptionKey');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['tablePrefix', 'clock', 'lastUsedResolution', 'clientCacheTtl', 'keyEncryptionKey']) {
        expectInvalid(optionError(create({ [option]: null })), option);
      }
    });

    it("refuses '5' for a number of seconds", () => {
      for (const option of ['lastUsedResolution', 'clientCacheTtl']) {
        expectInvalid(optionError(create({ [option]: '5' })), option);
      }
    });
  });

  describe('runMigrations()', () => {
    it('refuses a misspelled option, naming the one meant', async () => {
      expectUnknown(await rejectionOf(runMigrations(db.knex, { tablePrefx: 'm2m_' } as never), InvalidOptionError), 'tablePrefx', 'tablePrefix');
    });

    it('refuses null for tablePrefix', async () => {
      expectInvalid(await rejectionOf(runMigrations(db.knex, { tablePrefix: null } as never), InvalidOptionError), 'tablePrefix');
    });
  });

  describe('memoryTokenCache()', () => {
    const create = (options: Record<string, unknown>) => () => memoryTokenCache(options as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ maxEntrys: 5 })), 'maxEntrys', 'maxEntries');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['maxEntries', 'clock']) expectInvalid(optionError(create({ [option]: null })), option);
      expectInvalid(optionError(() => memoryTokenCache(null as never)), 'memoryTokenCache()');
    });

    it("refuses '5' for maxEntries", () => {
      expectInvalid(optionError(create({ maxEntries: '5' })), 'maxEntries');
    });
  });

  describe('redisTokenCache()', () => {
    const create = (options: Record<string, unknown>) => () => redisTokenCache(redis, options as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ prefx: 'app:' })), 'prefx', 'prefix');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['prefix', 'clock']) expectInvalid(optionError(create({ [option]: null })), option);
    });

    it('refuses something that is not an ioredis client, naming it', () => {
      expectInvalid(optionError(() => redisTokenCache(null as never)), 'redis');
    });
  });

  describe('knexTokenCache()', () => {
    const create = (options: Record<string, unknown>) => () => knexTokenCache(db.knex, options as never);

    it('refuses a misspelled option, naming the one meant', () => {
      expectUnknown(optionError(create({ tablePrefx: 'm2m_' })), 'tablePrefx', 'tablePrefix');
    });

    it('refuses null for an optional option instead of taking the default', () => {
      for (const option of ['tablePrefix', 'clock']) expectInvalid(optionError(create({ [option]: null })), option);
    });

    it('refuses something that is not a Knex instance, naming it', () => {
      expectInvalid(optionError(() => knexTokenCache({} as never)), 'knex');
    });
  });
});
