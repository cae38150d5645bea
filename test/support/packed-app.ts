import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** The package as a user has it: an app with the packed tarball installed, as the README says. */
export interface PackedApp {
  /** The app's directory, outside this checkout: nothing in it resolves from the checkout's node_modules. */
  dir: string;
  /** The tarball `npm pack` made from a clean copy of the checkout. */
  tarball: string;
  /** The paths in the tarball, relative to the package's root, sorted. */
  files: string[];
  /** What `npm install` was given besides the tarball: the README's install line, then the extras. */
  installed: string[];
}

/**
 * The package names of the README's install line (`npm install express-m2m express knex sqlite3`,
 * the first `npm install express-m2m` line of its "Install" section), without express-m2m.
 */
export function readmeInstallLine(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Install\n'));
  const line = /^npm install express-m2m( [^#\n]*)/m.exec(section)?.[1];
  if (line === undefined) throw new Error('README.md has no "npm install express-m2m ..." line under "## Install"');
  return line.trim().split(/\s+/);
}

/**
 * This process's environment without the npm_* variables of an `npm test` around it, which would
 * point npm and scripts run in an app at this checkout (`npm_config_local_prefix`).
 */
export function withoutNpmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'));
}

let workspace: string | undefined;
const apps = new Map<string, Promise<PackedApp>>();

/** One temporary directory per process for the tarball and the apps, removed when the process exits. */
function workspaceDir(): string {
  if (workspace === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-packed-'));
    workspace = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return workspace;
}

/**
 * Packs a clean copy of this checkout (its tracked and not-ignored files, as a fresh clone has
 * them, with the checkout's node_modules for the build: no dist/ to start from) with `npm pack`,
 * which builds through `prepack`, and installs the tarball into an empty app with the README's
 * install line. Done once per process (installing sqlite3 compiles it, which takes minutes); later
 * calls share the app, so a test must not change it. With `extras` (`['pg', 'ioredis']`), a copy of
 * that app with them installed too, also made once.
 */
export function packedApp(extras: readonly string[] = []): Promise<PackedApp> {
  const key = extras.join(' ');
  let app = apps.get(key);
  if (app === undefined) {
    app = extras.length === 0 ? installApp() : withExtras(extras);
    apps.set(key, app);
  }
  return app;
}

async function pack(dir: string): Promise<{ tarball: string; files: string[] }> {
  const src = join(dir, 'clean-copy');
  const { stdout: listed } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 << 20 });
  for (const file of listed.split('\0')) {
    if (file === '' || file === 'node_modules' || file.startsWith('node_modules/') || !existsSync(join(ROOT, file))) continue;
    cpSync(join(ROOT, file), join(src, file), { verbatimSymlinks: true });
  }
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(src, 'node_modules'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: src, env: withoutNpmEnv(), maxBuffer: 64 << 20 });
  const [result] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as { filename: string; files: { path: string }[] }[];
  if (result === undefined) throw new Error(`npm pack printed no result:\n${stdout}`);
  return { tarball: join(dir, result.filename), files: result.files.map((f) => f.path).sort() };
}

async function installApp(): Promise<PackedApp> {
  const dir = workspaceDir();
  const { tarball, files } = await pack(dir);
  const appDir = join(dir, 'app');
  mkdirSync(appDir);
  writeFileSync(join(appDir, 'package.json'), `${JSON.stringify({ name: 'm2m-app', private: true, type: 'module' }, null, 2)}\n`);
  const installed = readmeInstallLine();
  await npmInstall(appDir, [tarball, ...installed]);
  return { dir: appDir, tarball, files, installed };
}

async function withExtras(extras: readonly string[]): Promise<PackedApp> {
  const base = await packedApp();
  // A sibling of the base app, so that its package.json's relative file: spec of the tarball still holds.
  const dir = join(workspaceDir(), `app-${extras.join('-').replace(/[^\w-]/g, '_')}`);
  cpSync(base.dir, dir, { recursive: true, verbatimSymlinks: true });
  await npmInstall(dir, [...extras]);
  return { ...base, dir, installed: [...base.installed, ...extras] };
}

async function npmInstall(dir: string, specs: string[]): Promise<void> {
  try {
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...specs], { cwd: dir, env: withoutNpmEnv(), maxBuffer: 64 << 20 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm install ${specs.join(' ')} failed in ${dir}:\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: err });
  }
}
