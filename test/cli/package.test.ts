import { execFile } from 'node:child_process';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { MIGRATIONS, ROOT, type Run } from './harness.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const jsonError = (code: string, message: string): string => `${JSON.stringify({ error: { code, message } }, null, 2)}\n`;

/** Runs `file args` with only `env` (and PATH) in its environment. */
function run(file: string, args: readonly string[], options: { cwd: string; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      });
  });
}

/**
 * The CLI as users get it: the package built by `npm run build`'s compiler, run by plain Node.js
 * (which cannot import TypeScript) through `npx express-m2m` in a project that installed it, and
 * `npm run m2m` in this repository.
 */
describe('express-m2m CLI: as installed', function () {
  this.timeout(180_000);

  let root: string;
  let pkg: string;
  let project: string;
  let npmEnv: Record<string, string>;

  before(async function () {
    root = mkdtempSync(join(tmpdir(), 'm2m-package-'));
    pkg = join(root, 'pkg');
    mkdirSync(pkg);
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const build = await run(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], { cwd: ROOT });
    expect(build, 'tsc').to.deep.equal({ code: 0, stdout: '', stderr: '' });
    copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    // What `npm install express-m2m` makes of the package's "bin".
    const main = join(pkg, 'dist', 'lib', 'cli', 'main.js');
    chmodSync(main, 0o755);
    project = join(root, 'project');
    mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(project, 'package.json'), '{ "name": "a-service", "private": true }\n');
    symlinkSync(pkg, join(project, 'node_modules', 'express-m2m'));
    symlinkSync(join(ROOT, 'node_modules', 'tsx'), join(project, 'node_modules', 'tsx'));
    symlinkSync(join('..', 'express-m2m', 'dist', 'lib', 'cli', 'main.js'), join(project, 'node_modules', '.bin', 'express-m2m'));
    // npx must find the local bin, never ask the registry.
    npmEnv = { HOME: root, npm_config_cache: join(root, 'npm-cache'), npm_config_offline: 'true', npm_config_update_notifier: 'false' };
  });

  after(function () {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const npx = (args: readonly string[], env: Record<string, string> = {}): Promise<Run> =>
    run('npx', ['express-m2m', ...args], { cwd: project, env: { ...npmEnv, ...env } });

  it('runs as `npx express-m2m` in a project that installed the package', async function () {
    expect(await npx(['--version'])).to.deep.equal({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    const migrated = await npx(['migrate', '--json'], { DATABASE_URL: `sqlite:${join(project, 'npx.sqlite')}` });
    expect(migrated).to.deep.equal({ code: 0, stdout: `${JSON.stringify({ applied: MIGRATIONS }, null, 2)}\n`, stderr: '' });
  });

  describe('with a knexfile.ts', function () {
    let dir: string;

    beforeEach(function () {
      dir = mkdtempSync(join(project, 'ts-'));
      writeFileSync(join(dir, 'knexfile.ts'), `import type { Knex } from 'knex';
        const config: Record<string, Knex.Config> = {
          development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(join(dir, 'ts.sqlite'))} }, useNullAsDefault: true },
        };
        export default config;\n`);
    });

    it('says how to load it when Node.js cannot import TypeScript, and touches no database', async function () {
      const bin = join(project, 'node_modules', '.bin', 'express-m2m');
      const message = `cannot load ${join(dir, 'knexfile.ts')}: Node.js ${process.version} cannot import TypeScript by itself. `
        + 'Run the CLI under tsx (NODE_OPTIONS="--import tsx" npx express-m2m ...) or on Node.js 22.18 or later, '
        + 'give a knexfile.js, knexfile.mjs or knexfile.cjs instead, or set DATABASE_URL';
      expect(await run(bin, ['migrate'], { cwd: dir })).to.deep.equal({ code: 1, stdout: '', stderr: `express-m2m: ${message}\n` });
      expect(await run(bin, ['migrate', '--json'], { cwd: dir })).to.deep.equal({ code: 1, stdout: '', stderr: jsonError('ERR_M2M_KNEXFILE', message) });
      expect(existsSync(join(dir, 'ts.sqlite'))).to.equal(false);
    });

    it('reads it under tsx, as the message says', async function () {
      const migrated = await run('npx', ['express-m2m', 'migrate', '--json'], { cwd: dir, env: { ...npmEnv, NODE_OPTIONS: '--import tsx' } });
      expect(migrated).to.deep.equal({ code: 0, stdout: `${JSON.stringify({ applied: MIGRATIONS }, null, 2)}\n`, stderr: '' });
      expect(existsSync(join(dir, 'ts.sqlite'))).to.equal(true);
    });
  });

  describe('without its database driver', function () {
    let bare: string;

    before(function () {
      // The package installed without the optional peer dependencies sqlite3 and pg: symbolic links
      // to everything else, kept as they are (--preserve-symlinks) so that pg and sqlite3 are not
      // found beside the real knex either.
      bare = join(root, 'bare');
      mkdirSync(join(bare, 'node_modules'), { recursive: true });
      for (const name of readdirSync(join(ROOT, 'node_modules'))) {
        if (name !== 'pg' && name !== 'sqlite3') symlinkSync(join(ROOT, 'node_modules', name), join(bare, 'node_modules', name));
      }
      symlinkSync(join(pkg, 'dist'), join(bare, 'dist'));
      symlinkSync(join(pkg, 'package.json'), join(bare, 'package.json'));
    });

    const bareCli = (args: readonly string[]): Promise<Run> =>
      run(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', join(bare, 'dist', 'lib', 'cli', 'main.js'), ...args], { cwd: bare });

    it('names the npm install command of the driver the database URL needs', async function () {
      const file = join(bare, 'm2m.sqlite');
      const sqlite = `cannot use the database sqlite:${file}: its driver is not installed: run \`npm install sqlite3\``;
      const pg = 'cannot use the database postgres://***@127.0.0.1:5432/m2m: its driver is not installed: run `npm install pg`';
      const runs = await Promise.all([
        bareCli(['migrate', '--database', `sqlite:${file}`]),
        bareCli(['clients', 'list', '--database', 'postgres://admin:S3cret-Pa55word@127.0.0.1:5432/m2m']),
        bareCli(['clients', 'list', '--json', '--database', 'postgres://admin:S3cret-Pa55word@127.0.0.1:5432/m2m']),
      ]);
      expect(runs).to.deep.equal([
        { code: 1, stdout: '', stderr: `express-m2m: ${sqlite}\n` },
        { code: 1, stdout: '', stderr: `express-m2m: ${pg}\n` },
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_DRIVER_MISSING', pg) },
      ]);
      expect(existsSync(file)).to.equal(false);
    });
  });

  it('runs in this repository as `npm run m2m -- ...`, without a build', async function () {
    const file = join(root, 'repo.sqlite');
    const env = { ...npmEnv, DATABASE_URL: `sqlite:${file}` };
    const [loud, quiet] = await Promise.all([
      run('npm', ['run', 'm2m', '--', '--version'], { cwd: ROOT, env }),
      run('npm', ['run', '-s', 'm2m', '--', 'migrate', '--json'], { cwd: ROOT, env }),
    ]);
    expect(loud).to.deep.equal({ code: 0, stdout: `\n> express-m2m@${VERSION} m2m\n> tsx lib/cli/main.ts --version\n\n${VERSION}\n`, stderr: '' });
    expect(quiet).to.deep.equal({ code: 0, stdout: `${JSON.stringify({ applied: MIGRATIONS }, null, 2)}\n`, stderr: '' });
  });
});
