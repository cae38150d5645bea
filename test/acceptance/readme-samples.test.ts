import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import knexFactory from 'knex';
import { generateClientSecret } from '../../lib/store.js';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { PG_URL, REDIS_URL } from '../support/db.js';
import { requiresServers } from '../support/servers.js';
import { basic, postForm, request } from '../support/http.js';
import { packedApp, withoutNpmEnv, type PackedApp } from '../support/packed-app.js';
import { freePort, runFile, startFile, type RunningFile } from '../support/app-files.js';
import { CODE_LANGS, fileSample, readmeSamples, sampleWith } from '../support/readme-samples.js';

// Every code sample of README.md runs here as a user runs it: in an app with the packed package
// installed (the README's install line, plus pg and ioredis for the samples that use them). A
// sample marked `<!-- sample: file NAME -->` is written to NAME whole, as printed, and run with
// tsx; what it needs (an issuer, a database) it reads from environment variables, which the test
// sets. A sample marked `<!-- sample: excerpt -->` is lines for a file of one's own: the test puts
// it in one, between lines of its own. The issuer quick start is tested in readme.test.ts.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** Which test runs each sample: file samples by name, the others by a marker they hold. `text` blocks are shapes, not code. */
const FILES = ['issuer.ts', 'api.ts', 'caller.ts', 'caches.ts', 'apis.ts', 'issuer-instance.ts'];
const COVERED: [string, string][] = [
  ['npm install && npm run example', 'the two first commands'],
  ['npm install express-m2m express knex sqlite3', 'package.test.ts'],
  ['curl -s -u "nightly-report:$CLIENT_SECRET"', 'readme.test.ts'],
  ['app.get(oauth.metadataPath, oauth.metadata);', 'the metadata handler'],
  ["jwks: { keys: [{ ...publicKey.export({ format: 'jwk' })", 'the secretless clients'],
  ['revocations: { fetch: lists.fetch }', 'the guard with revocations'],
  ["createKnexStore(knex, { tablePrefix: 'm2m_' })", 'the store'],
  ["from 'express-m2m/store';", 'the store subpath'],
  ["oauth.events.on('token.issued'", 'the events'],
  ['npx express-m2m migrate', 'the CLI'],
  ['--jwks-file archiver.jwks.json', 'test/cli/keyed-clients.test.ts'],
  ['await rs.verify(token)', 'verify()'],
  ['npm run chaos -- --duration 20', 'chaos.test.ts'],
  ['bash .ci/services', 'development'],
  ["new PrometheusExporter({ preventServerStart: true })", 'the metrics'],
  ["store.withActor('deploy-pipeline')", 'the audit trail'],
  ["adminApi({ store, resourceServer: adminGuard })", 'the admin API'],
];

const SQLITE_PRELUDE = (file: string) => `
import express from 'express';
import knexFactory from 'knex';
const knex = knexFactory({ client: 'sqlite3', connection: { filename: ${JSON.stringify(file)} }, useNullAsDefault: true });
`;

const LISTEN = `
const { once } = await import('node:events');
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const base = \`http://127.0.0.1:\${(server.address() as import('node:net').AddressInfo).port}\`;
`;

/**
 * A PostgreSQL schema of its own on the test database, and a DATABASE_URL whose search_path is that
 * schema: a sample's tables keep their default m2m_ names without meeting those of other runs
 * (another checkout's newer migrations, say).
 */
async function pgSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `readme_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
  await admin.raw('create schema ??', [schema]);
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.href,
    async drop() {
      await admin.raw('drop schema ?? cascade', [schema]);
      await admin.destroy();
    },
  };
}

describe('README code samples', function () {
  this.timeout(120_000);
  let app: PackedApp;
  let dir: string;
  let n = 0;
  const excerptFile = () => `excerpt-${++n}.ts`;
  before(async function () {
    this.timeout(20 * 60_000); // packs and installs the package (installing sqlite3 compiles it)
    app = await packedApp(['pg', 'ioredis', '@opentelemetry/sdk-metrics', '@opentelemetry/exporter-prometheus']);
    dir = mkdtempSync(join(app.dir, 'data-'));
  });

  it('marks every TypeScript and JavaScript sample as a file or an excerpt, and runs each sample', () => {
    const samples = readmeSamples();
    expect(samples.filter((s) => CODE_LANGS.includes(s.lang) && s.kind === undefined).map((s) => `README.md:${s.line}`), 'unmarked').to.deep.equal([]);
    const files = samples.flatMap((s) => (typeof s.kind === 'object' ? [s.kind.file] : []));
    expect(files, 'file samples').to.deep.equal(FILES);
    const uncovered = samples.filter((s) => s.lang !== 'text' && typeof s.kind !== 'object' && !COVERED.some(([marker]) => s.code.includes(marker)));
    expect(uncovered.map((s) => `README.md:${s.line}`), 'untested').to.deep.equal([]);
  });

  it('compiles every file sample with tsc (strict, NodeNext) against the installed package', async function () {
    this.timeout(300_000); // tsc over express's, knex's, ioredis's and node's declarations, on a machine that may be busy
    const files = join(app.dir, 'readme-files');
    mkdirSync(files, { recursive: true });
    for (const name of FILES) writeFileSync(join(files, name), fileSample(name));
    writeFileSync(join(files, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false },
      files: FILES,
    }));
    try {
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', files], { cwd: files });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      expect.fail(`tsc refused a README sample:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  });

  it('runs the metadata handler excerpt: the metadata answers at the RFC 8414 §3.1 location', async () => {
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'meta.sqlite'))}
import { authorizationServer, createKnexStore } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
const app = express();
${sampleWith('app.get(oauth.metadataPath, oauth.metadata);')}
${LISTEN}
const res = await fetch(\`\${base}/.well-known/oauth-authorization-server/oauth\`);
const body = await res.json() as Record<string, unknown>;
console.log(JSON.stringify({ path: oauth.metadataPath, status: res.status, issuer: body.issuer, token_endpoint: body.token_endpoint, jwks_uri: body.jwks_uri }));
server.close();
await knex.destroy();
`);
    expect(JSON.parse(out)).to.deep.equal({
      path: '/.well-known/oauth-authorization-server/oauth', status: 200,
      issuer: 'https://auth.internal/oauth', token_endpoint: 'https://auth.internal/oauth/token', jwks_uri: 'https://auth.internal/oauth/jwks.json',
    });
  });

  it('runs the secretless clients sample: a client registered with its public key gets a token with an assertion', async () => {
    const code = sampleWith("jwks: { keys: [{ ...publicKey.export({ format: 'jwk' })").replace("'http://127.0.0.1:3000/oauth/token'", "`${base}/oauth/token`");
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'secretless.sqlite'))}
import { authorizationServer, createKnexStore } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
const app = express();
let oauth: express.Router = express.Router();
app.use('/oauth', (req, res, next) => oauth(req, res, next));
${LISTEN}
oauth = authorizationServer({ issuer: \`\${base}/oauth\`, store });
${code}
const stored = await store.clients.get(clientId);
console.log(JSON.stringify({ method: stored?.tokenEndpointAuthMethod, kids: stored?.jwks?.keys.map((k) => k.kid), secrets: (await store.clients.listSecrets(clientId)).length }));
server.close();
await knex.destroy();
`);
    const [scope, summary] = out.trimEnd().split('\n');
    expect(scope).to.equal('reports:read');
    expect(JSON.parse(summary as string)).to.deep.equal({ method: 'private_key_jwt', kids: ['archiver-1'], secrets: 0 });
  });

  it('runs the guard revocations excerpt: a token whose client\'s tokens were revoked is refused once the list is read', async () => {
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'revocations.sqlite'))}
import { authorizationServer, createKnexStore, createResourceServer, REVOCATIONS_SCOPE, tokenClient } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
const app = express();
let oauth: express.Router = express.Router();
app.use('/oauth', (req, res, next) => oauth(req, res, next));
${LISTEN}
const issuer = \`\${base}/oauth\`;
const audience = 'https://reports.internal';
oauth = authorizationServer({ issuer, store });
const lister = await store.clients.create({ clientId: 'reports-api', name: 'reports-api', scopes: [REVOCATIONS_SCOPE], audiences: [issuer] });
process.env.LIST_SECRET = lister.clientSecret;
const worker = await store.clients.create({ clientId: 'worker', name: 'worker', scopes: ['reports:read'], audiences: [audience] });
${sampleWith('revocations: { fetch: lists.fetch }')}
app.get('/reports', rs.requireScope('reports:read'), (_req, res) => { res.json({ ok: true }); });
const job = tokenClient({ issuer, clientId: 'worker', clientSecret: worker.clientSecret, scope: 'reports:read' });
const before = (await job.fetch(\`\${base}/reports\`)).status;
const held = (await job.getToken()).accessToken;
await store.clients.revokeTokens('worker');
await rs.refreshRevocations();
const after = (await fetch(\`\${base}/reports\`, { headers: { authorization: \`Bearer \${held}\` } })).status;
console.log(JSON.stringify({ before, after }));
server.close();
await knex.destroy();
`);
    expect(JSON.parse(out.trim())).to.deep.equal({ before: 200, after: 401 });
  });

  it('runs the store excerpt: migrate creates the prefixed tables', async () => {
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'store.sqlite'))}
import { createKnexStore } from 'express-m2m';
${sampleWith("createKnexStore(knex, { tablePrefix: 'm2m_' })")}
const tables = [];
for (const t of ['m2m_clients', 'm2m_client_secrets', 'm2m_signing_keys', 'm2m_migrations']) tables.push([t, await knex.schema.hasTable(t)]);
console.log(JSON.stringify(tables));
await knex.destroy();
`);
    expect(JSON.parse(out)).to.deep.equal([['m2m_clients', true], ['m2m_client_secrets', true], ['m2m_signing_keys', true], ['m2m_migrations', true]]);
  });

  it('runs the store subpath excerpt: the helpers for a store of one\'s own are there', async () => {
    const out = await runFile(app.dir, excerptFile(), `${sampleWith("from 'express-m2m/store';")}
const secret = generateClientSecret();
const hash = hashSecret(secret);
const view = selectKeys([], Date.now(), 3660);
const store: IssuerStore | undefined = undefined;
console.log(JSON.stringify({ prefix: secret.slice(0, 7), hashed: typeof hash === 'string' && !hash.includes(secret), signing: view.signing ?? null, store: store ?? null }));
`);
    expect(JSON.parse(out)).to.deep.equal({ prefix: 'm2m_cs_', hashed: true, signing: null, store: null });
  });

  it('runs the events excerpt: a token issued and a failed authentication reach the listeners', async () => {
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'events.sqlite'))}
import { authorizationServer, createKnexStore } from 'express-m2m';
import { generateClientSecret } from 'express-m2m/store';
const store = createKnexStore(knex);
await store.migrate();
const issuer = 'https://auth.internal/oauth';
const seen: unknown[] = [];
const metrics = { increment: (...args: unknown[]) => { seen.push(['increment', ...args]); } };
const log = {
  warn: (...args: unknown[]) => { seen.push(['warn', ...args]); },
  error: (...args: unknown[]) => { seen.push(['error', ...args]); },
};
${sampleWith("oauth.events.on('token.issued'")}
const app = express();
app.use('/oauth', oauth);
const { clientId, clientSecret } = await store.clients.create({ clientId: 'nightly', name: 'n', scopes: ['a'], audiences: ['https://api'] });
${LISTEN}
const post = (auth: string) => fetch(\`\${base}/oauth/token\`, {
  method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
await post('Basic ' + Buffer.from(clientId + ':' + clientSecret).toString('base64'));
await post('Basic ' + Buffer.from(clientId + ':' + generateClientSecret()).toString('base64'));
console.log(JSON.stringify(seen));
server.close();
await store.clients.flushUsage();
await knex.destroy();
`);
    const [warning, ...rest] = JSON.parse(out) as unknown[][];
    // The store has no keyEncryptionKey: its first key is reported once, when the issuer loads it.
    expect([warning?.[0], warning?.[1], (warning?.[2] as unknown[]).length]).to.deep.equal(['warn', 'signing keys stored in plain text', 1]);
    expect(rest).to.deep.equal([
      ['increment', 'tokens', { client: 'nightly' }],
      ['warn', 'auth failed', 'invalid_secret', 'nightly', '127.0.0.1'],
    ]);
  });

  it('runs the metrics excerpt: /metrics answers with the guard\'s counters after a guarded request', async () => {
    const out = await runFile(app.dir, excerptFile(), `
import express from 'express';
import { createResourceServer } from 'express-m2m';
const app = express();
${sampleWith('new PrometheusExporter({ preventServerStart: true })')}
const rs = createResourceServer({ issuer: 'https://auth.internal/oauth', audience: 'https://reports.internal', jwksUri: 'https://127.0.0.1:1/jwks.json' });
app.get('/reports', rs.requireScope('reports:read'), (_req, res) => { res.json({}); });
${LISTEN}
const refused = await fetch(\`\${base}/reports\`);
const scraped = await fetch(\`\${base}/metrics\`);
const text = await scraped.text();
console.log(JSON.stringify({ refused: refused.status, metrics: scraped.status, line: text.split('\\n').find((l) => l.startsWith('m2m_guard_decisions_total')) }));
server.close();
`);
    expect(JSON.parse(out)).to.deep.equal({
      refused: 401, metrics: 200, line: 'm2m_guard_decisions_total{m2m_outcome="no_token",otel_scope_name="express-m2m"} 1',
    });
  });

  it('runs the audit trail excerpt: the change is recorded with its actor', async () => {
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'audit.sqlite'))}
import { createKnexStore } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
await store.clients.create({ clientId: 'nightly-report', name: 'n', scopes: ['reports:read'], audiences: ['https://reports.internal'] });
${sampleWith("store.withActor('deploy-pipeline')")}
console.log(JSON.stringify(entries.map((e) => [e.actor, e.action, e.clientId])));
await knex.destroy();
`);
    expect(JSON.parse(out)).to.deep.equal([
      ['app', 'client.created', 'nightly-report'], ['app', 'secret.created', 'nightly-report'], ['deploy-pipeline', 'client.disabled', 'nightly-report'],
    ]);
  });

  it('runs the admin API excerpt: mounted, it refuses a caller without a token and serves its OpenAPI document', async () => {
    const out = await runFile(app.dir, excerptFile(), `${SQLITE_PRELUDE(join(dir, 'admin.sqlite'))}
import { adminApi, createKnexStore, createResourceServer } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
const issuer = 'https://auth.internal/oauth';
const app = express();
${sampleWith('adminApi({ store, resourceServer: adminGuard })')}
${LISTEN}
const clients = await fetch(\`\${base}/admin/clients\`);
const openapi = await fetch(\`\${base}/admin/openapi.json\`);
console.log(JSON.stringify({ clients: [clients.status, clients.headers.get('www-authenticate')], openapi: ((await openapi.json()) as { openapi: string }).openapi }));
server.close();
await knex.destroy();
`);
    expect(JSON.parse(out)).to.deep.equal({ clients: [401, 'Bearer realm="https://auth.internal/admin"'], openapi: '3.1.0' });
  });

  it('runs the CLI sample line by line with the installed bin, against a SQLite file', async function () {
    this.timeout(300_000); // an npx and a node process per line
    const env = { ...withoutNpmEnv(), DATABASE_URL: `sqlite:${join(dir, 'cli.sqlite')}` };
    const lines = sampleWith('npx express-m2m migrate').split('\n').filter((l) => l.trim() !== '');
    let kid = '';
    for (const line of lines) {
      let command = line.replace(/\s+#.*$/, '');
      if (command.includes('<kid>')) command = command.replace('<kid>', kid);
      const { stdout } = await run('sh', ['-c', command], { cwd: app.dir, env });
      expect(stdout, line).to.not.equal('');
      if (line.includes('keys rotate')) {
        const listed = await run('sh', ['-c', 'npx express-m2m keys list --json'], { cwd: app.dir, env });
        kid = (JSON.parse(listed.stdout) as { keys: { kid: string }[] }).keys[0]?.kid ?? '';
      }
      if (line.includes('clients disable')) expect(stdout).to.match(/disabled/i);
    }
    expect(kid).to.match(/^[\w-]{8,}$/);
  });

  it('runs the several-instances file on PostgreSQL and Redis: it serves, and stops by itself on SIGTERM', async function () {
    requiresServers(this, 'postgres', 'redis');
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}/oauth`;
    const database = await pgSchema();
    let code: number | null;
    try {
      const instance = await startFile(app.dir, 'issuer-instance.ts', fileSample('issuer-instance.ts'), 'issuer instance on port', {
        env: { PORT: String(port), ISSUER_URL: issuer, DATABASE_URL: database.url, REDIS_URL },
      });
      try {
        const jwks = await request(`${issuer}/jwks.json`);
        const refused = await postForm(`${issuer}/token`, { grant_type: 'client_credentials' }, { authorization: basic('nobody', generateClientSecret()) });
        expect({ jwks: jwks.status, keys: (jwks.json as { keys: unknown[] }).keys.length > 0, refused: [refused.status, refused.json] }).to.deep.equal({
          jwks: 200, keys: true, refused: [401, { error: 'invalid_client', error_description: 'client authentication failed' }],
        });
      } finally {
        code = await instance.stop('SIGTERM');
      }
    } finally {
      await database.drop();
    }
    expect(code, 'the instance did not end by itself after SIGTERM').to.equal(0);
  });

  describe('with an issuer and the guard sample (api.ts) running', () => {
    let issuer: TestIssuer;
    let api: RunningFile;
    let apiUrl: string;
    let secret: string;
    let token: string;
    let issued = 0;
    before(async () => {
      issuer = await startIssuer();
      issuer.as.events.on('token.issued', () => { issued++; });
      ({ clientSecret: secret } = await issuer.store.clients.create({
        clientId: 'nightly-report', name: 'nightly-report', scopes: ['reports:read'], audiences: ['https://reports.internal'],
      }));
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('nightly-report', secret) });
      token = (res.json as { access_token: string }).access_token;
      const port = await freePort();
      apiUrl = `http://127.0.0.1:${port}`;
      api = await startFile(app.dir, 'api.ts', fileSample('api.ts'), 'reports API on', { env: { ISSUER_URL: issuer.issuer, PORT: String(port) } });
    });
    after(async () => {
      await api?.stop();
      await issuer?.close();
    });

    it('runs the guard file: each route answers the token as its scopes allow', async () => {
      const bearer = { authorization: `Bearer ${token}` };
      const [read, write, one, whoami, none] = await Promise.all([
        request(`${apiUrl}/reports`, { headers: bearer }),
        request(`${apiUrl}/reports`, { method: 'POST', headers: bearer }),
        request(`${apiUrl}/reports/7`, { headers: bearer }),
        request(`${apiUrl}/whoami`, { headers: bearer }),
        request(`${apiUrl}/reports`),
      ]);
      expect({
        read: [read.status, read.json], write: [write.status, write.headers['www-authenticate']], one: [one.status, one.json],
        whoami: [whoami.status, whoami.json], none: [none.status, none.headers['www-authenticate']],
      }).to.deep.equal({
        read: [200, { client: 'nightly-report', scopes: ['reports:read'] }],
        write: [403, 'Bearer realm="https://reports.internal", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:write"'],
        one: [200, { id: '7', client: 'nightly-report' }],
        whoami: [200, { sub: 'nightly-report', scopes: ['reports:read'] }],
        none: [401, 'Bearer realm="https://reports.internal"'],
      });
    });

    it('runs the verify() excerpt: the same checks outside Express', async () => {
      const out = await runFile(app.dir, excerptFile(), `
import { createResourceServer } from 'express-m2m';
const rs = createResourceServer({ issuer: process.env.ISSUER_URL as string, audience: 'https://reports.internal' });
const token = process.env.TOKEN as string;
${sampleWith('await rs.verify(token)')}
const refused = await rs.verify(token.slice(0, -4) + 'AAAA').catch((err: { code: string; status: number }) => [err.code, err.status]);
console.log(JSON.stringify({ clientId: auth.clientId, scopes: auth.scopes, token: auth.token === token, refused }));
`, { env: { ISSUER_URL: issuer.issuer, TOKEN: token } });
      expect(JSON.parse(out)).to.deep.equal({ clientId: 'nightly-report', scopes: ['reports:read'], token: true, refused: ['invalid_token', 401] });
    });

    it('runs the caller file: the API answers it, and the token stays out of its output', async () => {
      const out = await runFile(app.dir, 'caller.ts', fileSample('caller.ts'), { env: { TOKEN_URL: issuer.tokenUrl, CLIENT_SECRET: secret, API_URL: apiUrl } });
      const lines = out.trimEnd().split('\n');
      expect(lines.slice(0, -1).join(' ').replace(/\s+/g, ' ')).to.equal("200 { client: 'nightly-report', scopes: [ 'reports:read' ] }");
      expect(lines.at(-1)).to.match(/^reports:read \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(out).to.not.include(secret);
      expect(out).to.not.match(/eyJ[\w-]{10,}/);
    });

    it('runs the registrations file: the reports registration calls the API, billing is found by name', async () => {
      const out = await runFile(app.dir, 'apis.ts', fileSample('apis.ts'), {
        env: { ISSUER_URL: issuer.issuer, API_URL: apiUrl, REPORTS_SECRET: secret, BILLING_SECRET: generateClientSecret() },
      });
      expect(out.replace(/\s+/g, ' ').trim()).to.equal("200 { client: 'nightly-report', scopes: [ 'reports:read' ] } [ 'reports', 'billing' ] nightly-billing");
    });

    it('runs the caches file twice on Redis and PostgreSQL: the second run gets the first run\'s token', async function () {
      requiresServers(this, 'postgres', 'redis');
      const database = await pgSchema();
      const env = { TOKEN_URL: issuer.tokenUrl, CLIENT_SECRET: secret, DATABASE_URL: database.url, REDIS_URL };
      const before = issued;
      let first: string;
      let second: string;
      try {
        first = await runFile(app.dir, 'caches.ts', fileSample('caches.ts'), { env });
        second = await runFile(app.dir, 'caches.ts', fileSample('caches.ts'), { env });
      } finally {
        await database.drop();
      }
      expect(first).to.match(/^reports:read \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$/);
      expect({ second, issued: issued - before }).to.deep.equal({ second: first, issued: 1 });
    });
  });

  it('names only commands that exist in the first lines and the development section', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const commands = [sampleWith('npm install && npm run example'), sampleWith('bash .ci/services')].join('\n');
    for (const [, name] of commands.matchAll(/npm run ([\w:-]+)/g)) expect(scripts, `npm run ${name}`).to.have.property(name as string);
    for (const [, file] of commands.matchAll(/bash (\S+)/g)) expect(existsSync(join(ROOT, file as string)), file).to.equal(true);
    expect(scripts.example).to.equal('tsx example/main.ts');
    expect(scripts.test).to.be.a('string');
  });
});
