import { expect } from 'chai';
import { cli } from './harness.js';

describe('express-m2m CLI: help', function () {
  this.timeout(60_000);

  it('prints the overall help on stdout with --help and exits 0', async function () {
    const run = await cli(['--help']);
    expect(run.code).to.equal(0);
    expect(run.stderr).to.equal('');
    expect(run.stdout).to.match(/^Usage: express-m2m <command> \[options\]\n/);
    for (const command of ['migrate', 'clients create', 'clients list', 'clients show', 'clients rotate-secret',
      'clients disable', 'clients enable', 'clients delete', 'keys list', 'keys rotate', 'keys revoke']) {
      expect(run.stdout).to.match(new RegExp(`^ {2}${command} +\\S`, 'm'));
    }
    expect(run.stdout).to.include('--database URL');
    expect(run.stdout).to.include('Exit codes: 0 success, 1 failure, 2 bad usage.');
  });

  it("prints a command's options with -h, whatever else is on the line, without touching a database", async function () {
    const run = await cli(['clients', 'create', '-h', '--bogus']);
    expect(run.code).to.equal(0);
    expect(run.stderr).to.equal('');
    expect(run.stdout).to.match(/^Usage: express-m2m clients create --name NAME --scope S\.\.\. --audience A\.\.\. \[options\] \[global options\]\n/);
    for (const flag of ['--name NAME', '--scope S', '--audience A', '--default-scope S', '--default-audience A', '--client-id ID',
      '--token-lifetime SECONDS', '--claims JSON', '--json', '--debug']) {
      expect(run.stdout).to.include(`  ${flag} `);
    }
    expect((await cli(['keys', '--help'])).stdout).to.match(/^Usage: express-m2m keys <command> \[options\]\n\nCommands:\n {2}keys list /);
  });
});
