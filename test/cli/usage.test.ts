import { expect } from 'chai';
import { cli, useSqliteDatabase, type Run } from './harness.js';

describe('express-m2m CLI: bad usage', function () {
  this.timeout(60_000);
  const db = useSqliteDatabase({ migrated: true });

  describe('errors', function () {
    it('names an unknown client and exits 1 in every command that takes a client id', async function () {
      const commands = [['show', 'nope'], ['rotate-secret', 'nope'], ['disable', 'nope'], ['enable', 'nope'], ['delete', 'nope', '--yes']];
      const runs = await Promise.all(commands.map((args) => cli(['clients', ...args], { env: db.env })));
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
        [['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'a', '--token-lifetime', '10m'],
          '--token-lifetime must be a whole number of seconds, got "10m"'],
        [['keys', 'rotate', '--activate-after', '-1'], 'option --activate-after needs a value (write --activate-after=VALUE for one starting with "-")'],
      ];
      const runs = await Promise.all(cases.map(([args]) => cli(args, { env: db.env })));
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
      const badClaims = await cli(['clients', 'create', '--name', 'n', '--scope', 's', '--audience', 'a', '--claims', '[1]'], { env: db.env });
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
  });
});
