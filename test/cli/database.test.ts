import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { cli, cliAll, failure, json, MIGRATIONS, STACK_FRAME, useSqliteDatabase } from './harness.js';

const jsonError = (code: string, message: string): string => `${JSON.stringify({ error: { code, message } }, null, 2)}\n`;

describe('express-m2m CLI: database', function () {
  this.timeout(60_000);
  const db = useSqliteDatabase({ migrated: false });

  describe('errors before the tables exist', function () {
    it('tells the user to run migrate when the tables are missing, for every command but migrate', async function () {
      await db.knex.raw('create table unrelated (id integer)');
      const commands = [['clients', 'list'], ['clients', 'show', 'x'], ['clients', 'create', '--name', 'n', '--scope', 's',
        '--audience', 'https://a.internal'], ['clients', 'rotate-secret', 'x'], ['clients', 'disable', 'x'], ['clients', 'enable', 'x'],
      ['clients', 'delete', 'x', '--yes'], ['clients', 'update', 'x', '--name', 'n'], ['clients', 'revoke-secret', 'x', 'y'],
      ['keys', 'list', '--all'], ['keys', 'rotate'], ['keys', 'revoke', 'k']];
      const runs = await cliAll(commands, { env: db.env });
      for (const run of runs) {
        expect(run).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: the express-m2m tables are missing (no table m2m_clients): run `express-m2m migrate` first\n',
        });
      }
      expect(await db.knex.schema.hasTable('m2m_clients')).to.equal(false);
    });

    it('tells the user to run migrate when the SQLite file does not exist, and does not create it', async function () {
      const run = await cli(['clients', 'list'], { env: db.env });
      expect(run).to.deep.equal({
        code: 1, stdout: '', stderr: `express-m2m: the SQLite database ${db.file} does not exist: run \`express-m2m migrate\` to create it\n`,
      });
      expect(existsSync(db.file)).to.equal(false);
    });

    it('asks for DATABASE_URL when no database is configured', async function () {
      const run = await cli(['clients', 'list'], { cwd: db.dir });
      expect(run).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'express-m2m: no database configured: set DATABASE_URL (for example postgres://HOST:5432/DB or '
          + 'sqlite:./express-m2m.sqlite), pass --database URL, or add a ./knexfile.js\n',
      });
    });

    it('refuses a database URL it cannot use, without its password', async function () {
      const fromEnv = await cli(['migrate'], { env: { DATABASE_URL: 'mysql://root:Hunter2-secret@db.internal/m2m' } });
      expect(fromEnv).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'express-m2m: unsupported database URL in DATABASE_URL: mysql://***@db.internal/m2m; use postgres://, '
          + 'postgresql://, sqlite:PATH, file:PATH, or a path ending in .sqlite, .sqlite3 or .db\n',
      });
      const fromFlag = await cli(['migrate', '--database', 'mysql://root:Hunter2-secret@db.internal/m2m']);
      expect(fromFlag.code).to.equal(2);
      expect(fromFlag.stderr).to.match(/^express-m2m: unsupported database URL in --database: mysql:\/\/\*\*\*@db.internal\/m2m; /);
      expect(fromFlag.stderr).to.not.include('Hunter2');
    });

    it('reports an unreachable PostgreSQL server in one line, without the password or a stack trace', async function () {
      const url = 'postgres://admin:S3cret-Pa55word@127.0.0.1:1/m2m';
      for (const args of [['migrate'], ['clients', 'list'], ['keys', 'rotate']]) {
        const run = await cli(args, { env: { DATABASE_URL: url } });
        expect(run, args.join(' ')).to.deep.equal({
          code: 1, stdout: '', stderr: 'express-m2m: cannot connect to the database postgres://***@127.0.0.1:1/m2m: connection refused\n',
        });
      }
      const flag = await cli(['clients', 'list', '--database', url]);
      expect(flag.stderr).to.equal('express-m2m: cannot connect to the database postgres://***@127.0.0.1:1/m2m: connection refused\n');
    });

    it('prints a stack trace only with --debug, still without the password', async function () {
      const run = await cli(['clients', 'list', '--debug'], { env: { DATABASE_URL: 'postgres://admin:S3cret-Pa55word@127.0.0.1:1/m2m' } });
      expect(run.code).to.equal(1);
      expect(run.stdout).to.equal('');
      expect(run.stderr).to.match(STACK_FRAME);
      expect(run.stderr).to.include('express-m2m: CliError: cannot connect to the database postgres://***@127.0.0.1:1/m2m: connection refused\n');
      expect(run.stderr).to.include('Caused by: Error: connect ECONNREFUSED 127.0.0.1:1');
      expect(run.stderr).to.not.include('S3cret-Pa55word');
      expect(run.stderr).to.not.include('admin');
    });

    it('reports a SQLite file it cannot open in one line', async function () {
      const run = await cli(['migrate', '--database', `sqlite:${join(db.dir, 'no', 'such', 'dir.sqlite')}`]);
      expect(run).to.deep.equal({
        code: 1, stdout: '', stderr: `express-m2m: cannot connect to the database sqlite:${join(db.dir, 'no', 'such', 'dir.sqlite')}: cannot open the file\n`,
      });
    });

    it('never prints a stack trace for any of these errors', async function () {
      const runs = await Promise.all([
        cli(['clients', 'list'], { env: db.env }),
        cli(['clients', 'list', '--bogus'], { env: db.env }),
        cli(['keys', 'list'], { env: { DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x' } }),
        cli(['migrate'], { env: { DATABASE_URL: 'redis://127.0.0.1:1' } }),
        cli(['clients', 'show'], { env: db.env }),
      ]);
      for (const run of runs) {
        expect(run.code).to.be.oneOf([1, 2]);
        expect(run.stderr).to.match(/^express-m2m: /);
        expect(run.stderr).to.not.match(STACK_FRAME);
      }
    });
  });

  describe('with a knexfile', function () {
    it('uses ./knexfile.mjs, with the environment chosen by NODE_ENV', async function () {
      const production = join(db.dir, 'production.sqlite');
      const development = join(db.dir, 'development.sqlite');
      writeFileSync(join(db.dir, 'knexfile.mjs'), `export default {
        development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(development)} }, useNullAsDefault: true },
        production: { client: 'sqlite3', connection: { filename: ${JSON.stringify(production)} }, useNullAsDefault: true },
      };\n`);
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir, env: { NODE_ENV: 'production' } }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(production)).to.equal(true);
      expect(existsSync(development)).to.equal(false);
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(development)).to.equal(true);
    });

    it('uses module.exports of ./knexfile.js, and DATABASE_URL wins over it', async function () {
      const fromKnexfile = join(db.dir, 'knexfile.sqlite');
      writeFileSync(join(db.dir, 'knexfile.js'), `module.exports = {
        development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(fromKnexfile)} }, useNullAsDefault: true },
      };\n`);
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir, env: db.env }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(db.file)).to.equal(true);
      expect(existsSync(fromKnexfile)).to.equal(false);
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(fromKnexfile)).to.equal(true);
    });

    it('names the knexfile and the environment when the environment is missing', async function () {
      writeFileSync(join(db.dir, 'knexfile.mjs'), "export default { development: { client: 'sqlite3', connection: { filename: ':memory:' } } };\n");
      const run = await cli(['migrate'], { cwd: db.dir, env: { NODE_ENV: 'staging' } });
      expect(run).to.deep.equal({
        code: 1, stdout: '', stderr: `express-m2m: ${join(db.dir, 'knexfile.mjs')} has no "staging" environment (chosen by NODE_ENV)\n`,
      });
    });

    it('uses ./knexfile.cjs, and ./knexfile.ts when the CLI runs under tsx, as `npm run m2m` does', async function () {
      const fromCjs = join(db.dir, 'cjs.sqlite');
      writeFileSync(join(db.dir, 'knexfile.cjs'), `module.exports = {
        development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(fromCjs)} }, useNullAsDefault: true },
      };\n`);
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(fromCjs)).to.equal(true);

      const other = mkdtempSync(join(db.dir, 'ts-'));
      const fromTs = join(other, 'ts.sqlite');
      writeFileSync(join(other, 'knexfile.ts'), `import type { Knex } from 'knex';
        const config: Record<string, Knex.Config> = {
          development: { client: 'sqlite3', connection: { filename: ${JSON.stringify(fromTs)} }, useNullAsDefault: true },
        };
        export default config;\n`);
      expect(json(await cli(['migrate', '--json'], { cwd: other }))).to.deep.equal({ applied: MIGRATIONS });
      expect(existsSync(fromTs)).to.equal(true);
    });

    it('prefers knexfile.js to .mjs, and .mjs to .cjs', async function () {
      // Not .ts beside .js: under tsx, importing knexfile.js loads a knexfile.ts beside it instead.
      for (const [name, text] of <[string, string][]>[['knexfile.mjs', 'export default'], ['knexfile.cjs', 'module.exports ='],
        ['knexfile.js', 'module.exports =']]) {
        writeFileSync(join(db.dir, name), `${text} { development: { client: 'sqlite3', useNullAsDefault: true,
          connection: { filename: ${JSON.stringify(join(db.dir, `${name}.sqlite`))} } } };\n`);
      }
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir }))).to.deep.equal({ applied: MIGRATIONS });
      rmSync(join(db.dir, 'knexfile.js'));
      expect(json(await cli(['migrate', '--json'], { cwd: db.dir }))).to.deep.equal({ applied: MIGRATIONS });
      expect(['knexfile.js', 'knexfile.mjs', 'knexfile.cjs'].map((name) => existsSync(join(db.dir, `${name}.sqlite`))))
        .to.deep.equal([true, true, false]);
    });

    it('says which knexfile cannot be loaded, in one line, and which environment it lacks', async function () {
      writeFileSync(join(db.dir, 'knexfile.mjs'), 'export default { development: { client: "sqlite3", connection: { filename: ":memory:" } } ;\n');
      const broken = await cli(['migrate'], { cwd: db.dir });
      expect(broken.code).to.equal(1);
      expect(broken.stderr).to.match(new RegExp(`^express-m2m: cannot load ${join(db.dir, 'knexfile.mjs')}: [^\\n]+\\n$`));
      writeFileSync(join(db.dir, 'knexfile.mjs'), 'export default { development: { client: "sqlite3", connection: { filename: ":memory:" } } };\n');
      expect(await cliAll([['migrate'], ['migrate', '--json']], { cwd: db.dir, env: { NODE_ENV: '__proto__' } })).to.deep.equal([
        failure(`${join(db.dir, 'knexfile.mjs')} has no "__proto__" environment (chosen by NODE_ENV)`),
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_KNEXFILE', `${join(db.dir, 'knexfile.mjs')} has no "__proto__" environment (chosen by NODE_ENV)`) },
      ]);
    });
  });

  describe('errors of the database', function () {
    it('reports what the database refuses with its message and code, never the SQL or the values', async function () {
      await db.store.migrate();
      // Tables that pass the CLI's check but lack the store's columns.
      await db.knex.schema.dropTable('m2m_client_secrets');
      await db.knex.schema.dropTable('m2m_clients');
      await db.knex.schema.createTable('m2m_clients', (t) => { t.string('client_id'); });
      await db.knex.schema.createTable('m2m_client_secrets', (t) => { t.string('id'); });
      const args = ['clients', 'create', '--client-id', 'sql-free', '--name', 'secret-name-42', '--scope', 'reports:read', '--audience', 'https://reports.internal'];
      const [text, asJson, debug] = await cliAll([args, [...args, '--json'], [...args, '--debug']], { env: db.env });
      const message = 'the database refused the command: SQLITE_ERROR: table m2m_clients has no column named audiences';
      expect(text).to.deep.equal(failure(message));
      expect(asJson).to.deep.equal({ code: 1, stdout: '', stderr: jsonError('ERR_M2M_DATABASE', message) });
      // --debug shows the stack and the driver's own error, still without the values.
      expect(debug?.stderr).to.match(new RegExp(`^express-m2m: CliError: ${message}\\n {4}at `));
      expect(debug?.stderr).to.include('Caused by: Error: insert into `m2m_clients`');
      for (const run of [text, asJson, debug]) expect(run?.stderr).to.not.include('secret-name-42');
      expect(await db.knex('m2m_clients').count({ n: '*' })).to.deep.equal([{ n: 0 }]);
    });

    it('gives each database failure its code with --json', async function () {
      const none = 'no database configured: set DATABASE_URL (for example postgres://HOST:5432/DB or sqlite:./express-m2m.sqlite), '
        + 'pass --database URL, or add a ./knexfile.js';
      const [noDatabase, unreachable, badFlag] = await cliAll([
        ['clients', 'list', '--json'],
        ['clients', 'list', '--json', '--database', 'postgres://u:Pa55word@127.0.0.1:1/x'],
        ['clients', 'list', '--json', '--database', 'mysql://u:Pa55word@db.internal/x'],
      ], { cwd: db.dir });
      const [badEnv, noTables] = await Promise.all([
        cli(['clients', 'list', '--json'], { env: { DATABASE_URL: 'mysql://u:Pa55word@db.internal/x' } }),
        cli(['keys', 'list', '--json'], { env: db.env }),
      ]);
      const unsupported = (source: string): string => `unsupported database URL in ${source}: mysql://***@db.internal/x; use postgres://, `
        + 'postgresql://, sqlite:PATH, file:PATH, or a path ending in .sqlite, .sqlite3 or .db';
      expect([noDatabase, unreachable, badFlag, badEnv, noTables]).to.deep.equal([
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_NO_DATABASE', none) },
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_DATABASE_UNREACHABLE', 'cannot connect to the database postgres://***@127.0.0.1:1/x: connection refused') },
        { code: 2, stdout: '', stderr: jsonError('ERR_M2M_INVALID_OPTION', unsupported('--database')) },
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_INVALID_ENV', unsupported('DATABASE_URL')) },
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_TABLES_MISSING', `the SQLite database ${db.file} does not exist: run \`express-m2m migrate\` to create it`) },
      ]);
    });
  });
});
