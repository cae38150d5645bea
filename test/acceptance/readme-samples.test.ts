import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startIssuer, type TestIssuer } from '../support/issuer.js';
import { PG_URL, REDIS_URL } from '../support/db.js';
import { requiresServers } from '../support/servers.js';
import { postForm, basic } from '../support/http.js';

// Every code sample in README.md is run here (the issuer quick start in readme.test.ts), as
// written, with the least substitutions: the package name resolves to this checkout's source,
// hosts and ports point at servers the test started, and a fragment's free names (an `app`, a
// `store`, a `handler`) are defined by a prelude. The first test fails when a sample is added
// without a test.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface Sample { lang: string; code: string; line: number }

function samples(): Sample[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const found: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)$/.exec(lines[i] as string);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] as string);
    found.push({ lang: open[1] as string, code: `${body.join('\n')}\n`, line: start + 1 });
  }
  return found;
}

/** Which test runs the sample holding `marker`; `text` blocks are shapes, not code. */
const COVERED: [string, string][] = [
  ['npm install && npm run example', 'the two first commands'],
  ["import { authorizationServer, createKnexStore } from 'express-m2m';", 'readme.test.ts'],
  ['curl -s -u "$CLIENT_ID:$CLIENT_SECRET"', 'readme.test.ts'],
  ['app.get(oauth.metadataPath, oauth.metadata);', 'the metadata handler'],
  ["createKnexStore(knex, { tablePrefix: 'm2m_' })", 'the store'],
  ["from 'express-m2m/store';", 'the store subpath'],
  ["oauth.events.on('token.issued'", 'the events'],
  ['npx express-m2m migrate', 'the CLI'],
  ["app.get('/reports', requireScope(", 'the guard'],
  ["// or issuer: '...' to discover it", 'the caller'],
  ['const apis = tokenClients({', 'the registrations'],
  ['const shared = redisTokenCache(', 'the caches'],
  ["rateLimit: { redis: new Redis", 'several instances'],
  ['npm run chaos -- --duration 20', 'chaos.test.ts'],
  ['bash .ci/services', 'development'],
];

/** A temporary directory inside the checkout, so that samples resolve express, knex... as users' code would. */
function workdir(): string {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  return mkdtempSync(join(ROOT, '.tmp', 'readme-'));
}

/** Runs `prelude + sample + postlude` with tsx; returns what it printed. */
async function runSample(dir: string, code: string, env: Record<string, string> = {}): Promise<string> {
  const file = join(dir, `sample-${Math.random().toString(36).slice(2)}.ts`);
  const lib = JSON.stringify(join(ROOT, 'lib/index.ts'));
  const store = JSON.stringify(join(ROOT, 'lib/store.ts'));
  writeFileSync(file, code.replaceAll("from 'express-m2m'", `from ${lib}`).replaceAll("import('express-m2m')", `import(${lib})`)
    .replaceAll("import('express-m2m/store')", `import(${store})`).replaceAll("from 'express-m2m/store'", `from ${store}`));
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: dir, env: { ...process.env, ...env }, timeout: 30_000 });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`the sample failed:\n${code}\n--- stdout\n${stdout ?? ''}\n--- stderr\n${stderr ?? ''}`, { cause: err });
  }
}

function sample(marker: string): string {
  const found = samples().filter((s) => s.code.includes(marker));
  expect(found, marker).to.have.length(1);
  return (found[0] as Sample).code;
}

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

describe('README code samples', () => {
  let dir: string;
  before(() => { dir = workdir(); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has a test for every sample', () => {
    const uncovered = samples().filter((s) => s.lang !== 'text' && !COVERED.some(([marker]) => s.code.includes(marker)));
    expect(uncovered.map((s) => `README.md:${s.line}`)).to.deep.equal([]);
  });

  it('runs the metadata handler sample: the metadata answers at the RFC 8414 §3.1 location', async () => {
    const out = await runSample(dir, `${SQLITE_PRELUDE(join(dir, 'meta.sqlite'))}
import { authorizationServer, createKnexStore } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
const app = express();
${sample('app.get(oauth.metadataPath, oauth.metadata);')}
${LISTEN}
const res = await fetch(\`\${base}/.well-known/oauth-authorization-server/oauth\`);
console.log(JSON.stringify({ status: res.status, body: await res.json() }));
server.close();
await knex.destroy();
`);
    const { status, body } = JSON.parse(out) as { status: number; body: Record<string, unknown> };
    expect(status).to.equal(200);
    expect(body).to.include({ issuer: 'https://auth.internal/oauth', token_endpoint: 'https://auth.internal/oauth/token', jwks_uri: 'https://auth.internal/oauth/jwks.json' });
  });

  it('runs the store sample: migrate creates the prefixed tables', async () => {
    const out = await runSample(dir, `${SQLITE_PRELUDE(join(dir, 'store.sqlite'))}
import { createKnexStore } from 'express-m2m';
${sample("createKnexStore(knex, { tablePrefix: 'm2m_' })")}
const tables = [];
for (const t of ['m2m_clients', 'm2m_client_secrets', 'm2m_signing_keys', 'm2m_migrations']) tables.push([t, await knex.schema.hasTable(t)]);
console.log(JSON.stringify(tables));
await knex.destroy();
`);
    expect(JSON.parse(out)).to.deep.equal([['m2m_clients', true], ['m2m_client_secrets', true], ['m2m_signing_keys', true], ['m2m_migrations', true]]);
  });

  it('runs the store subpath sample: the helpers for a store of one\'s own are there', async () => {
    const out = await runSample(dir, `${sample("from 'express-m2m/store';")}
const secret = generateClientSecret();
const hash = hashSecret(secret);
const view = selectKeys([], Date.now(), 3660);
const store: IssuerStore | undefined = undefined;
console.log(JSON.stringify({ prefix: secret.slice(0, 7), hashed: typeof hash === 'string' && !hash.includes(secret), signing: view.signing ?? null, store: store ?? null }));
`);
    expect(JSON.parse(out)).to.deep.equal({ prefix: 'm2m_cs_', hashed: true, signing: null, store: null });
  });

  it('runs the events sample: a token issued and a failed authentication reach the listeners', async () => {
    const out = await runSample(dir, `${SQLITE_PRELUDE(join(dir, 'events.sqlite'))}
import { authorizationServer, createKnexStore } from 'express-m2m';
const store = createKnexStore(knex);
await store.migrate();
const issuer = 'https://auth.internal/oauth';
const seen: unknown[] = [];
const metrics = { increment: (...args: unknown[]) => { seen.push(['increment', ...args]); } };
const log = {
  warn: (...args: unknown[]) => { seen.push(['warn', ...args]); },
  error: (...args: unknown[]) => { seen.push(['error', ...args]); },
};
${sample("oauth.events.on('token.issued'")}
const app = express();
app.use('/oauth', oauth);
const { clientId, clientSecret } = await store.clients.create({ clientId: 'nightly', name: 'n', scopes: ['a'], audiences: ['https://api'] });
${LISTEN}
const post = (auth: string) => fetch(\`\${base}/oauth/token\`, {
  method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
await post('Basic ' + Buffer.from(clientId + ':' + clientSecret).toString('base64'));
const { generateClientSecret } = await import('express-m2m/store');
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

  it('runs the CLI sample line by line against a SQLite file', async function () {
    // A child process per line, each loading TypeScript through tsx: slow on a busy machine.
    this.timeout(90_000);
    const env = { DATABASE_URL: `sqlite:${join(dir, 'cli.sqlite')}` };
    const cli = `${process.execPath} --import tsx ${join(ROOT, 'lib/cli/main.ts')}`;
    const lines = sample('npx express-m2m migrate').split('\n').filter((l) => l.trim() !== '');
    let kid = '';
    for (const line of lines) {
      let command = line.replace('npx express-m2m', cli).replace(/\s+#.*$/, '');
      if (command.includes('<kid>')) command = command.replace('<kid>', kid);
      const { stdout } = await run('sh', ['-c', command], { cwd: ROOT, env: { ...process.env, ...env } });
      expect(stdout, line).to.not.equal('');
      if (line.includes('keys rotate')) {
        const listed = await run('sh', ['-c', `${cli} keys list --json`], { cwd: ROOT, env: { ...process.env, ...env } });
        kid = (JSON.parse(listed.stdout) as { keys: { kid: string }[] }).keys[0]?.kid ?? '';
      }
      if (line.includes('clients disable')) expect(stdout).to.match(/disabled/i);
    }
    expect(kid).to.match(/^[\w-]{8,}$/);
  });

  describe('with an issuer running', () => {
    let issuer: TestIssuer;
    let token: string;
    before(async () => {
      issuer = await startIssuer();
      const { clientId, clientSecret } = await issuer.store.clients.create({
        clientId: 'reporter', name: 'r', scopes: ['reports:read'], audiences: ['https://reports.internal'],
      });
      const res = await postForm(issuer.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
      token = (res.json as { access_token: string }).access_token;
    });
    after(() => issuer.close());

    it('runs the guard sample: the route answers the token holder, verify() outside Express too', async () => {
      const code = sample("app.get('/reports', requireScope(").replaceAll('https://auth.internal/oauth', issuer.issuer);
      const out = await runSample(dir, `
const token = process.env.TOKEN as string;
const handler = (_req: unknown, res: { json(body: unknown): void }) => { res.json({ handled: true }); };
${code}
${LISTEN}
const read = await fetch(\`\${base}/reports\`, { headers: { authorization: \`Bearer \${token}\` } });
const write = await fetch(\`\${base}/reports\`, { method: 'POST', headers: { authorization: \`Bearer \${token}\` } });
const whoami = await fetch(\`\${base}/whoami\`, { headers: { authorization: \`Bearer \${token}\` } });
console.log(JSON.stringify({ read: [read.status, await read.json()], write: [write.status, write.headers.get('www-authenticate')],
  whoami: [whoami.status, await whoami.json()], verified: auth.clientId }));
server.close();
`, { TOKEN: token });
      expect(JSON.parse(out)).to.deep.equal({
        read: [200, { client: 'reporter', scopes: ['reports:read'] }],
        write: [403, 'Bearer realm="https://reports.internal", error="insufficient_scope", error_description="the token lacks a required scope", scope="reports:write"'],
        whoami: [200, { handled: true }],
        verified: 'reporter',
      });
    });

    it('runs the several-instances sample on PostgreSQL and Redis', async function () {
      requiresServers(this, 'postgres', 'redis');
      const out = await runSample(dir, `
import express from 'express';
import knexFactory from 'knex';
import { Redis } from 'ioredis';
import { authorizationServer, createKnexStore } from 'express-m2m';
const app = express();
${sample("rateLimit: { redis: new Redis")}
await store.migrate();
${LISTEN}
const jwks = await fetch(\`\${base}/oauth/jwks.json\`);
console.log(JSON.stringify({ status: jwks.status, keys: ((await jwks.json()) as { keys: unknown[] }).keys.length > 0 }));
server.close();
await knex.destroy();
process.exit(0);
`, { DATABASE_URL: PG_URL, REDIS_URL });
      expect(JSON.parse(out)).to.deep.equal({ status: 200, keys: true });
    });
  });

  describe('with the example running', () => {
    let example: ChildProcess;
    let env: Record<string, string>;
    let secretFile: string;
    before(async () => {
      const base = 42000 + Math.floor(Math.random() * 8000);
      secretFile = join(dir, 'example.sqlite.archival-service.secret');
      env = { ISSUER_PORT: String(base), REPORTS_PORT: String(base + 1), M2M_SQLITE_FILE: join(dir, 'example.sqlite'), DEMO_TOKEN_LIFETIME: '3', JOB_INTERVAL: '0.5' };
      example = spawn(process.execPath, ['--import', 'tsx', 'example/main.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      await new Promise<void>((resolve, reject) => {
        example.stdout?.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('are still up')) resolve(); });
        example.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
        example.once('exit', () => reject(new Error(`the example exited:\n${out}`)));
      });
    });
    after(() => { example.kill('SIGINT'); });

    const ports = (code: string) => code.replaceAll('127.0.0.1:4000', `127.0.0.1:${env.ISSUER_PORT}`).replaceAll('127.0.0.1:4001', `127.0.0.1:${env.REPORTS_PORT}`);

    it('runs the caller sample: the reports come back and the token is cached', async () => {
      const code = ports(sample("// or issuer: '...' to discover it")).replace('example/.data/issuer.sqlite.archival-service.secret', secretFile);
      const out = await runSample(dir, code);
      const lines = out.trimEnd().split('\n');
      const printed = lines.slice(0, -1).join(' ').replace(/\s+/g, ' ');
      expect(printed).to.equal("200 { reports: [ { id: 1, title: 'October close', rows: 1204 }, { id: 2, title: 'November close', rows: 1311 } ] }");
      expect(lines.at(-1)).to.match(/^reports:read \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(out).to.not.include(readFileSync(secretFile, 'utf8').trim());
    });

    it('runs the caches sample on Redis and PostgreSQL: the client gets its token through the shared cache', async function () {
      requiresServers(this, 'postgres', 'redis');
      const secret = readFileSync(secretFile, 'utf8').trim();
      const out = await runSample(dir, `${ports(sample('const shared = redisTokenCache('))}
const token = await reports.getToken();
const again = tokenClient({ tokenUrl: 'http://127.0.0.1:${env.ISSUER_PORT}/oauth/token', clientId: 'archival-service', clientSecret: process.env.CLIENT_SECRET,
  scope: 'reports:read', audience: 'https://reports.internal', cache: table });
const fromTable = await again.getToken();
console.log(JSON.stringify({ scope: token.scope, table: fromTable.scope, tables: await knex.schema.hasTable('m2m_token_cache') }));
await knex.destroy();
process.exit(0);
`, { CLIENT_SECRET: secret, DATABASE_URL: PG_URL, REDIS_URL });
      expect(JSON.parse(out)).to.deep.equal({ scope: 'reports:read', table: 'reports:read', tables: true });
    });

    it('runs the registrations sample: each name has its client', async () => {
      const secret = readFileSync(secretFile, 'utf8').trim();
      const out = await runSample(dir, `${ports(sample('const apis = tokenClients({'))}
console.log(JSON.stringify({ names: apis.names(), reports: (await apis.reports.getToken()).scope, billing: apis.get('billing').clientId }));
`, { REPORTS_SECRET: secret, BILLING_SECRET: secret });
      expect(JSON.parse(out)).to.deep.equal({ names: ['reports', 'billing'], reports: 'reports:read', billing: 'archival-service' });
    });
  });

  it('names only commands that exist in the first lines and the development section', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const commands = [sample('npm install && npm run example'), sample('bash .ci/services')].join('\n');
    for (const [, name] of commands.matchAll(/npm run ([\w:-]+)/g)) expect(scripts, `npm run ${name}`).to.have.property(name as string);
    for (const [, file] of commands.matchAll(/bash (\S+)/g)) expect(existsSync(join(ROOT, file as string)), file).to.equal(true);
    expect(scripts.example).to.equal('tsx example/main.ts');
    expect(scripts.test).to.be.a('string');
  });
});
