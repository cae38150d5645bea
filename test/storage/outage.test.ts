import { expect } from 'chai';
import express from 'express';
import knexFactory, { type Knex } from 'knex';
import { startTcpProxy, type TcpProxy } from '../../example/chaos/tcp-proxy.js';
import { authorizationServer, createKnexStore, type KnexStore, type StoreEventMap } from '../../lib/index.js';
import { postgresDatabase, PG_URL, type TestDatabase } from '../support/db.js';
import { basic, listen, postForm, type Listening, type ReadResponse } from '../support/http.js';

const sleep = (ms: number) => new Promise((resolve) => { setTimeout(resolve, ms); });
const MINIMAL = { name: 'caller', scopes: ['a'], audiences: ['https://a.internal'] };

/** What a test sees of one issuer instance: its store, its events, its token URL. */
interface Instance {
  store: KnexStore;
  knex: Knex;
  server: Listening;
  tokenUrl: string;
  events: string[];
}

/** A Knex instance that reaches PostgreSQL through `proxy`. */
function throughProxy(proxy: TcpProxy): Knex {
  const url = new URL(PG_URL);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  // Knex logs every refused connection; the test asserts what the issuers answer instead.
  const quiet = () => undefined;
  return knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 4 }, log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet } });
}

async function startInstance(proxy: TcpProxy, prefix: string, storeOptions: Parameters<typeof createKnexStore>[1] = {}): Promise<Instance> {
  const knex = throughProxy(proxy);
  const store = createKnexStore(knex, { tablePrefix: prefix, changePollInterval: 0.2, ...storeOptions });
  const events: string[] = [];
  for (const name of ['degraded', 'recovered'] as const) store.events.on(name, () => events.push(name));
  const app = express();
  let mounted: express.Router = express.Router();
  app.use('/oauth', (req, res, next) => mounted(req, res, next));
  const server = await listen(app);
  const as = authorizationServer({ issuer: `${server.url}/oauth`, store, keyCacheTtl: 1 });
  mounted = as;
  await as.ready();
  return { store, knex, server, tokenUrl: `${server.url}/oauth/token`, events };
}

const token = (instance: Instance, id: string, secret: string): Promise<ReadResponse> =>
  postForm(instance.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(id, secret) });

const without = (headers: Record<string, string>, ...names: string[]) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !names.includes(name)));

describe('two issuers riding out a PostgreSQL outage (a TCP proxy cut for 10 s)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let proxy: TcpProxy;
  let instances: Instance[] = [];

  beforeEach(async () => {
    db = postgresDatabase();
    const url = new URL(PG_URL);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    await createKnexStore(db.knex, { tablePrefix: db.prefix }).migrate();
  });

  afterEach(async () => {
    proxy.restore();
    for (const i of instances.splice(0)) {
      await i.server.close();
      await i.store.clients.flushUsage();
      await i.knex.destroy();
    }
    await proxy.close();
    await db.destroy();
  });

  it('issues tokens to recently active callers throughout, 503 with Retry-After to the others, and recovers by itself', async () => {
    instances = [await startInstance(proxy, db.prefix), await startInstance(proxy, db.prefix)];
    const admin = createKnexStore(db.knex, { tablePrefix: db.prefix });
    const callers = [await admin.clients.create({ ...MINIMAL, clientId: 'active-1' }), await admin.clients.create({ ...MINIMAL, clientId: 'active-2' })];
    const idle = await admin.clients.create({ ...MINIMAL, clientId: 'idle' });
    for (const instance of instances) for (const c of callers) expect((await token(instance, c.clientId, c.clientSecret)).status).to.equal(200);

    proxy.cut();
    const statuses: number[] = [];
    const started = performance.now();
    let refused: ReadResponse | undefined;
    for (let round = 0; performance.now() - started < 10_000; round++) {
      const answers = await Promise.all(instances.flatMap((i) => callers.map((c) => token(i, c.clientId, c.clientSecret))));
      statuses.push(...answers.map((a) => a.status));
      if (round === 4) refused = await token(instances[round % 2] as Instance, idle.clientId, idle.clientSecret);
      await sleep(200);
    }
    expect(statuses.length).to.be.at.least(100);
    expect(statuses.filter((s) => s !== 200)).to.deep.equal([]);
    expect([refused?.status, without(refused?.headers ?? {}, 'date', 'connection', 'keep-alive', 'content-length'), refused?.json]).to.deep.equal([503, {
      'cache-control': 'no-store', pragma: 'no-cache', 'content-type': 'application/json; charset=utf-8', 'x-powered-by': 'Express', 'retry-after': '5',
    }, { error: 'temporarily_unavailable', error_description: 'client authentication is temporarily unavailable' }]);
    expect(instances.map((i) => i.events)).to.deep.equal([['degraded'], ['degraded']]);
    expect(proxy.stats().refused).to.be.at.least(2);

    proxy.restore();
    for (const instance of instances) {
      for (let i = 0; i < 100 && instance.events.length < 2; i++) await sleep(50);
      expect((await token(instance, idle.clientId, idle.clientSecret)).status).to.equal(200);
    }
    expect(instances.map((i) => i.events)).to.deep.equal([['degraded', 'recovered'], ['degraded', 'recovered']]);
  });

  it('stops answering cached clients once outageWindow has passed, and reports when and for how long', async () => {
    instances = [await startInstance(proxy, db.prefix, { outageWindow: 1 })];
    const [instance] = instances as [Instance];
    const seen: Partial<StoreEventMap> = {};
    instance.store.events.on('degraded', (e) => { seen.degraded = e; });
    instance.store.events.on('recovered', (e) => { seen.recovered = e; });
    const caller = await createKnexStore(db.knex, { tablePrefix: db.prefix }).clients.create({ ...MINIMAL, clientId: 'c' });
    expect((await token(instance, 'c', caller.clientSecret)).status).to.equal(200);
    const before = Date.now();
    proxy.cut();
    for (let i = 0; i < 100 && seen.degraded === undefined; i++) await sleep(20);
    expect((await token(instance, 'c', caller.clientSecret)).status).to.equal(200);
    await sleep(1300);
    expect((await token(instance, 'c', caller.clientSecret)).status).to.equal(503);
    proxy.restore();
    for (let i = 0; i < 100 && seen.recovered === undefined; i++) await sleep(50);
    expect((await token(instance, 'c', caller.clientSecret)).status).to.equal(200);
    expect(seen.degraded?.since.getTime()).to.be.within(before, Date.now());
    expect(seen.degraded?.error).to.be.instanceOf(Error);
    expect(seen.recovered?.degradedFor).to.be.within(1300, 10_000);
  });
});
