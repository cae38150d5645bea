import { expect } from 'chai';
import { badUsage, cli, cliAll, usageOf, useSqliteDatabase, type Run } from './harness.js';

const jsonError = (code: string, message: string): string => `${JSON.stringify({ error: { code, message } }, null, 2)}\n`;

describe('express-m2m CLI: bad usage', function () {
  this.timeout(60_000);
  const db = useSqliteDatabase({ migrated: true });

  describe('errors', function () {
    it('names an unknown client and exits 1 in every command that takes a client id', async function () {
      const commands = [['show', 'nope'], ['rotate-secret', 'nope'], ['disable', 'nope'], ['enable', 'nope'], ['delete', 'nope', '--yes']];
      const runs = await cliAll(commands.map((args) => ['clients', ...args]), { env: db.env });
      for (const run of runs) expect(run).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: no client with id "nope"\n' });
    });

    it('answers an unknown option with the usage and exit code 2', async function () {
      const run = await cli(['clients', 'list', '--bogus'], { env: db.env });
      expect(run).to.deep.equal({
        code: 2,
        stdout: '',
        stderr: 'express-m2m: unknown option --bogus\n\nUsage: express-m2m clients list [global options]\n'
          + "Run 'express-m2m clients list --help' for details.\n",
      });
    });

    it("answers an option of another command with the usage and exit code 2", async function () {
      const run = await cli(['keys', 'list', '--grace', '10'], { env: db.env });
      expect(run.code).to.equal(2);
      expect(run.stderr).to.match(/^express-m2m: unknown option --grace\n\nUsage: express-m2m keys list /);
    });

    it('answers a missing required option with the usage and exit code 2', async function () {
      for (const [missing, args] of [
        ['--name', ['--scope', 's', '--audience', 'https://a.internal']],
        ['--scope', ['--name', 'n', '--audience', 'https://a.internal']],
        ['--audience', ['--name', 'n', '--scope', 's']],
      ] as const) {
        const run = await cli(['clients', 'create', ...args], { env: db.env });
        expect(run.code, missing).to.equal(2);
        expect(run.stdout).to.equal('');
        expect(run.stderr).to.equal(`express-m2m: missing required option ${missing}\n\n`
          + 'Usage: express-m2m clients create --name NAME --scope S... --audience A... [options] [global options]\n'
          + "Run 'express-m2m clients create --help' for details.\n");
      }
      expect(await db.store.clients.list()).to.deep.equal([]);
    });

    it('answers a missing or extra client id with the usage and exit code 2', async function () {
      const missing = await cli(['clients', 'show'], { env: db.env });
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.match(/^express-m2m: missing client ID\n\nUsage: express-m2m clients show ID /);
      const extra = await cli(['clients', 'disable', 'a', 'b'], { env: db.env });
      expect(extra.code).to.equal(2);
      expect(extra.stderr).to.match(/^express-m2m: unexpected argument "b"\n\nUsage: express-m2m clients disable ID /);
    });

    it('answers a bad number with the usage and exit code 2', async function () {
      const cases: [string[], string][] = [
        [['clients', 'rotate-secret', 'x', '--grace', 'soon'], '--grace must be a whole number of seconds, got "soon"'],
        [['clients', 'rotate-secret', 'x', '--grace=-5'], '--grace must be a whole number of seconds, got "-5"'],
        [['keys', 'rotate', '--activate-after', '1.5'], '--activate-after must be a whole number of seconds, got "1.5"'],
        [['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'https://a.internal', '--token-lifetime', '10m'],
          '--token-lifetime must be a whole number of seconds, got "10m"'],
        [['keys', 'rotate', '--activate-after', '-1'], 'option --activate-after needs a value (write --activate-after=VALUE for one starting with "-")'],
      ];
      const runs = await cliAll(cases.map(([args]) => args), { env: db.env });
      for (const [i, [args, message]] of cases.entries()) {
        const run = runs[i] as Run;
        expect(run.code, args.join(' ')).to.equal(2);
        expect(run.stdout).to.equal('');
        expect(run.stderr.startsWith(`express-m2m: ${message}\n\nUsage: express-m2m ${args[0]} `), run.stderr).to.equal(true);
      }
    });

    it('answers other malformed values with the usage and exit code 2', async function () {
      const badAlg = await cli(['keys', 'rotate', '--alg', 'HS256'], { env: db.env });
      expect(badAlg.code).to.equal(2);
      expect(badAlg.stderr).to.match(/^express-m2m: --alg must be one of ES256, RS256, PS256, got "HS256"\n\nUsage: /);
      const badClaims = await cli(['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'https://a.internal', '--claims', '[1]'], { env: db.env });
      expect(badClaims.code).to.equal(2);
      expect(badClaims.stderr).to.match(/^express-m2m: --claims must be a JSON object, for example '\{"tenant":"acme"\}'\n\nUsage: /);
      const valueOnFlag = await cli(['clients', 'list', '--json=yes'], { env: db.env });
      expect(valueOnFlag.code).to.equal(2);
      expect(valueOnFlag.stderr).to.match(/^express-m2m: option --json takes no value\n\nUsage: /);
      expect(await db.store.keys.list()).to.deep.equal([]);
    });

    it('answers an unknown or missing command with the usage and exit code 2', async function () {
      const unknown = await cli(['frobnicate'], { env: db.env });
      expect(unknown.code).to.equal(2);
      expect(unknown.stdout).to.equal('');
      expect(unknown.stderr).to.match(/^express-m2m: unknown command "frobnicate"\n\nUsage: express-m2m <command> \[options\]\n/);
      const unknownSub = await cli(['clients', 'frobnicate'], { env: db.env });
      expect(unknownSub.code).to.equal(2);
      expect(unknownSub.stderr).to.match(/^express-m2m: unknown command "clients frobnicate"\n\nUsage: express-m2m clients <command>/);
      expect(unknownSub.stderr).to.include('  clients rotate-secret  ');
      const none = await cli([], { env: db.env });
      expect(none.code).to.equal(2);
      expect(none.stderr).to.match(/^express-m2m: missing command\n\nUsage: express-m2m <command> \[options\]\n/);
      const noSub = await cli(['keys'], { env: db.env });
      expect(noSub.code).to.equal(2);
      expect(noSub.stderr).to.match(/^express-m2m: missing keys command\n\nUsage: express-m2m keys <command>/);
    });

    it('suggests the command meant when one is close, and otherwise lists them all', async function () {
      const runs = await cliAll([['clinets', 'list'], ['clients', 'craete'], ['keys', 'revok', 'x'], ['hlep'], ['frobnicate'], ['clients', 'frob']], { env: db.env });
      const messages = runs.map((run) => [run.code, run.stdout, run.stderr.split('\n')[0]]);
      expect(messages).to.deep.equal([
        [2, '', 'express-m2m: unknown command "clinets" (did you mean clients?)'],
        [2, '', 'express-m2m: unknown command "clients craete" (did you mean clients create?)'],
        [2, '', 'express-m2m: unknown command "keys revok" (did you mean keys revoke?)'],
        [2, '', 'express-m2m: unknown command "hlep" (did you mean help?)'],
        [2, '', 'express-m2m: unknown command "frobnicate"'],
        [2, '', 'express-m2m: unknown command "clients frob"'],
      ]);
      expect(runs[1]?.stderr).to.match(/\n\nUsage: express-m2m clients <command> \[options\]\n\nCommands:\n {2}clients create /);
    });

    it("suggests the option meant when one is close, among the command's and the global ones", async function () {
      const create = usageOf('clients create', '--name NAME --scope S... --audience A... [options]');
      const rotate = usageOf('keys rotate', '[--alg ES256|RS256|PS256] [--activate-after SECONDS] [--allow-plaintext]');
      expect(await cliAll([
        ['clients', 'create', '--nmae', 'n', '--scope', 's', '--audience', 'https://a.internal'],
        ['keys', 'rotate', '--activate-afer', '0'],
        ['keys', 'rotate', '--databse', 'x.db'],
        ['keys', 'rotate', '--jsno'],
      ], { env: db.env })).to.deep.equal([
        badUsage('unknown option --nmae (did you mean --name?)', create),
        badUsage('unknown option --activate-afer (did you mean --activate-after?)', rotate),
        badUsage('unknown option --databse (did you mean --database?)', rotate),
        badUsage('unknown option --jsno (did you mean --json?)', rotate),
      ]);
      expect(await db.store.clients.list()).to.deep.equal([]);
      expect(await db.store.keys.list()).to.deep.equal([]);
    });

    it('quotes and escapes an option name that holds more than letters, digits and dashes', async function () {
      expect(await cli(['clients', 'list', '--\u001b[2Jclear\u202eevil'], { env: db.env })).to.deep.equal(
        badUsage('unknown option "--\\u001b[2Jclear\\u202eevil"', usageOf('clients list', '')));
    });

    it('refuses a global option given twice, an empty value and a bad --table-prefix before opening the database', async function () {
      const usage = usageOf('clients list', '');
      const missing = { DATABASE_URL: 'sqlite:/no/such/dir/m2m.sqlite' };
      expect(await cliAll([
        ['clients', 'list', '--table-prefix', 'a_', '--table-prefix', 'b_'],
        ['clients', 'list', '--database', ''],
        ['clients', 'list', '--table-prefix', 'm2m; drop table m2m_clients'],
        ['clients', 'list', '--json', '--json'],
      ], { env: missing })).to.deep.equal([
        badUsage('option --table-prefix given more than once', usage),
        badUsage('option --database needs a value, not an empty one', usage),
        badUsage('--table-prefix must be 1 to 31 letters, digits or underscores, not starting with a digit', usage),
        { code: 2, stdout: '', stderr: jsonError('ERR_M2M_USAGE', 'option --json given more than once') },
      ]);
    });

    it('refuses options written after --, where they would be taken as arguments', async function () {
      expect(await cliAll([['clients', 'list', '--', '--json'], ['clients', 'show', '--', 'x', '--table-prefix=t_'], ['migrate', '--', '-h']], { env: db.env }))
        .to.deep.equal([
          badUsage('option --json after --: everything after -- is an argument, so put options before --', usageOf('clients list', '')),
          badUsage('option --table-prefix after --: everything after -- is an argument, so put options before --', usageOf('clients show', 'ID')),
          badUsage('option --help after --: everything after -- is an argument, so put options before --', usageOf('migrate', '')),
        ]);
    });

    it('prints every error as one JSON document on stderr with --json, with a stable code', async function () {
      const runs = await cliAll([
        ['frobnicate', '--json'],
        ['--json'],
        ['clients', 'list', '--bogus', '--json'],
        ['clients', 'show', 'nope', '--json'],
        ['clients', 'show', '--json', '--', '--json'],
      ], { env: db.env });
      expect(runs).to.deep.equal([
        { code: 2, stdout: '', stderr: jsonError('ERR_M2M_UNKNOWN_COMMAND', 'unknown command "frobnicate"') },
        { code: 2, stdout: '', stderr: jsonError('ERR_M2M_USAGE', 'missing command') },
        { code: 2, stdout: '', stderr: jsonError('ERR_M2M_UNKNOWN_OPTION', 'unknown option --bogus') },
        { code: 1, stdout: '', stderr: jsonError('ERR_M2M_CLIENT_NOT_FOUND', 'no client with id "nope"') },
        { code: 2, stdout: '', stderr: jsonError('ERR_M2M_USAGE', 'option --json after --: everything after -- is an argument, so put options before --') },
      ]);
    });

    it('prints the refusal of --json after -- as text: there it is no option', async function () {
      expect(await cli(['clients', 'show', '--', '--json'], { env: db.env })).to.deep.equal(
        badUsage('option --json after --: everything after -- is an argument, so put options before --', usageOf('clients show', 'ID')));
    });
  });
});
