import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { packedApp, readmeInstallLine, withoutNpmEnv, type PackedApp } from '../support/packed-app.js';
import { runFile } from '../support/app-files.js';

// The package as npm publishes it (`npm pack` of a clean copy), installed into an empty app with
// the README's install line and nothing else, then used the four ways a user does: import,
// require, TypeScript and the bin.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string; main: string; types: string; bin: Record<string, string>; exports: Record<string, string | Record<string, string>>;
};

/** Every file under `dir`, relative to the checkout. */
function walk(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/** The names `lib/<entry>.ts` exports: its values (from the module itself) and its types (from `export type { ... }`). */
async function exportsOf(entry: 'index' | 'store'): Promise<{ values: string[]; types: string[] }> {
  const values = Object.keys(await import(`../../lib/${entry}.js`) as object).sort();
  const source = readFileSync(join(ROOT, `lib/${entry}.ts`), 'utf8');
  const types = [...source.matchAll(/export type \{([^}]*)\}/g)]
    .flatMap(([, names]) => (names as string).split(',').map((name) => name.trim()).filter((name) => name !== ''))
    .sort();
  return { values, types };
}

/** `a as store_a, b as store_b`: the store's names, some of which the index exports too. */
function aliased(names: string[]): string {
  return names.map((name) => `${name} as store_${name}`).join(', ');
}

describe('the published package', function () {
  let app: PackedApp;
  before(async function () {
    this.timeout(20 * 60_000); // npm pack builds; installing sqlite3 compiles it
    app = await packedApp();
  });

  it('ships the built modules and declarations, the CLI, README, LICENSE and package.json, and nothing else', () => {
    const built = walk('lib').filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
      .flatMap((file) => [`dist/${file.replace(/\.ts$/, '.js')}`, `dist/${file.replace(/\.ts$/, '.d.ts')}`]);
    expect(app.files).to.deep.equal([...built, 'LICENSE', 'README.md', 'package.json'].sort());
  });

  it('ships the files its main, types, exports and bin fields name', () => {
    const named = [PACKAGE.main, PACKAGE.types, ...Object.values(PACKAGE.bin),
      ...Object.values(PACKAGE.exports).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target)))];
    expect(named.map((path) => path.replace(/^\.\//, '')).filter((path) => !app.files.includes(path))).to.deep.equal([]);
  });

  it('was installed with the README\'s install line alone, and npm finds nothing missing or invalid', async () => {
    expect(app.installed).to.deep.equal(readmeInstallLine());
    expect(app.installed).to.include.members(['express', 'knex']);
    const { stdout } = await run('npm', ['ls', '--all', '--json'], { cwd: app.dir, env: withoutNpmEnv(), maxBuffer: 64 << 20 });
    const tree = JSON.parse(stdout) as { dependencies: Record<string, { version: string }>; problems?: string[] };
    expect(tree.problems ?? []).to.deep.equal([]);
    expect(tree.dependencies['express-m2m']?.version).to.equal(PACKAGE.version);
  });

  it('imports every export of both entry points as an ES module', async () => {
    const index = await exportsOf('index');
    const store = await exportsOf('store');
    // Named imports fail at link time if one is missing; the namespaces must hold nothing else.
    const out = await runFile(app.dir, 'esm.mjs', `
import { ${index.values.join(', ')} } from 'express-m2m';
import { ${aliased(store.values)} } from 'express-m2m/store';
import * as index from 'express-m2m';
import * as store from 'express-m2m/store';
const undefinedNames = Object.entries({ ...index, ...store }).filter(([, value]) => value === undefined).map(([name]) => name);
console.log(JSON.stringify({ index: Object.keys(index).sort(), store: Object.keys(store).sort(), undefinedNames,
  used: [${[...index.values, ...store.values.map((name) => `store_${name}`)].join(', ')}].length }));
`);
    expect(JSON.parse(out)).to.deep.equal({
      index: index.values, store: store.values, undefinedNames: [], used: index.values.length + store.values.length,
    });
  });

  it('loads with require() on Node 20.19+, the same module as import gives', async () => {
    const out = await runFile(app.dir, 'cjs.cjs', `
const index = require('express-m2m');
const store = require('express-m2m/store');
import('express-m2m').then((esm) => {
  console.log(JSON.stringify({ index: Object.keys(index).sort(), store: Object.keys(store).sort(), same: esm.OAuthError === index.OAuthError }));
});
`);
    expect(JSON.parse(out)).to.deep.equal({ index: (await exportsOf('index')).values, store: (await exportsOf('store')).values, same: true });
  });

  it('compiles a strict NodeNext TypeScript consumer against the shipped types, which are not any', async function () {
    this.timeout(300_000); // tsc over express's, knex's and node's declarations, on a machine that may be busy
    const index = await exportsOf('index');
    const store = await exportsOf('store');
    const dir = join(app.dir, 'ts-consumer');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false },
      files: ['consumer.ts'],
    }));
    writeFileSync(join(dir, 'consumer.ts'), `
import express from 'express';
import { ${index.values.join(', ')} } from 'express-m2m';
import type { ${index.types.join(', ')} } from 'express-m2m';
import { ${aliased(store.values)} } from 'express-m2m/store';
import type { ${aliased(store.types)} } from 'express-m2m/store';

const app = express();
app.get('/reports', requireScope('reports:read', { issuer: 'https://auth.example/oauth', audience: 'https://reports.example' }), (req, res) => {
  const clientId: string | undefined = req.auth?.clientId;     // req.auth comes with the package's types
  const scopes: readonly string[] | undefined = req.auth?.scopes;
  res.json({ clientId, scopes });
});
app.get('/whoami', (req, res) => {
  // @ts-expect-error passport's req.user (and req.login, req.logout) do not come with this package's types
  res.json(req.user);
});
const caller: TokenClient = tokenClient({ tokenUrl: 'https://auth.example/oauth/token', clientId: 'reporter', clientSecret: store_generateClientSecret() });
const token: Promise<AccessToken> = caller.getToken();
const registration: store_ClientRegistration = { name: 'reporter', scopes: ['reports:read'], audiences: ['https://reports.example'] };
const isOAuth: boolean = isOAuthError(new InvalidTokenError('expired'));
// @ts-expect-error the types know the options: a misspelt one does not compile
requireScope('reports:read', { issuer: 'https://auth.example/oauth', audience: 'https://reports.example', jwksUrl: 'https://auth.example/jwks' });
// @ts-expect-error nor does a store that is not an IssuerStore
authorizationServer({ issuer: 'https://auth.example/oauth', store: {} });
export { app, token, registration, isOAuth };
`);
    try {
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      expect.fail(`tsc refused the consumer:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  });

  it('installs the express-m2m bin, which prints the package\'s version', async () => {
    const { stdout } = await run(join(app.dir, 'node_modules/.bin/express-m2m'), ['--version'], { cwd: app.dir, env: withoutNpmEnv() });
    expect(stdout).to.equal(`${PACKAGE.version}\n`);
  });
});
