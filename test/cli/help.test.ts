import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badUsage, cli, cliAll, ROOT } from './harness.js';

const GLOBAL_OPTIONS_AND_ENVIRONMENT = `Global options:
  --database URL         postgres://..., postgresql://..., sqlite:PATH, file:PATH, or a path ending in .sqlite,
                         .sqlite3 or .db (default: $DATABASE_URL, else ./knexfile.js, .mjs, .cjs or .ts)
  --table-prefix PREFIX  prefix of the express-m2m tables (default m2m_)
  --json                 print one JSON document on stdout; errors as one JSON document on stderr
  --debug                print stack traces on errors
  -h, --help             show help
  --version              print the version of express-m2m

Environment:
  DATABASE_URL            the database, when --database is not given
  M2M_KEY_ENCRYPTION_KEY  the issuer's keyEncryptionKey (at least 32 characters): keys rotate stores new
                          private keys encrypted under it; keys seal needs it
  NODE_ENV                the environment of the knexfile (default development), when neither --database
                          nor DATABASE_URL is given
`;

describe('express-m2m CLI: help', function () {
  this.timeout(60_000);

  it('prints the overall help on stdout with --help and exits 0', async function () {
    const run = await cli(['--help']);
    expect(run.code).to.equal(0);
    expect(run.stderr).to.equal('');
    expect(run.stdout).to.match(/^Usage: express-m2m <command> \[options\]\n/);
    for (const command of ['migrate', 'clients create', 'clients list', 'clients show', 'clients update', 'clients rotate-secret',
      'clients revoke-secret', 'clients revoke-tokens', 'clients disable', 'clients enable', 'clients delete', 'keys list', 'keys rotate', 'keys revoke',
      'keys seal', 'audit', 'help \\[COMMAND\\]']) {
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
      '--token-lifetime SECONDS', '--claims JSON', '--jwks-file FILE', '--jwks-uri URL', '--auth-method METHOD', '--json', '--debug']) {
      expect(run.stdout).to.include(`  ${flag} `);
    }
    expect((await cli(['keys', '--help'])).stdout).to.match(/^Usage: express-m2m keys <command> \[options\]\n\nCommands:\n {2}keys list /);
  });

  it('names the environment variables the CLI reads, in the overall help and in each command\'s', async function () {
    const [overall, update, list] = await cliAll([['--help'], ['clients', 'update', '--help'], ['help', 'keys', 'list']]);
    expect(overall?.stdout).to.include(`\n\n${GLOBAL_OPTIONS_AND_ENVIRONMENT}\n`);
    expect(update?.stdout.endsWith(`\n\n${GLOBAL_OPTIONS_AND_ENVIRONMENT}`)).to.equal(true);
    expect(list?.stdout.endsWith(`\n\n${GLOBAL_OPTIONS_AND_ENVIRONMENT}`)).to.equal(true);
  });

  it("prints a command's help with help COMMAND, as COMMAND --help does", async function () {
    const [help, flag, update] = await cliAll([['help', 'clients', 'revoke-secret'], ['clients', 'revoke-secret', '--help'], ['help', 'clients', 'update']]);
    expect(help).to.deep.equal({
      code: 0,
      stderr: '',
      stdout: 'Usage: express-m2m clients revoke-secret ID SECRET_ID [global options]\n\n'
        + 'Withdraw one secret of a client at once, a leaked one (`clients show` lists the ids).\n\n'
        + GLOBAL_OPTIONS_AND_ENVIRONMENT,
    });
    expect(flag).to.deep.equal(help);
    for (const option of ['--name NAME', '--scope S', '--default-scope S', '--no-default-scope', '--audience A', '--default-audience A',
      '--no-default-audience', '--token-lifetime SECONDS', '--no-token-lifetime', '--jwks-file FILE', '--jwks-uri URL']) {
      expect(update?.stdout).to.match(new RegExp(`^ {2}${option} +\\S`, 'm'));
    }
  });

  it('prints the overall or a group help with help alone or help GROUP', async function () {
    const [alone, overall, group, groupFlag] = await cliAll([['help'], ['--help'], ['help', 'keys'], ['keys', '--help']]);
    expect(alone).to.deep.equal(overall);
    expect(group).to.deep.equal(groupFlag);
    expect(group?.stdout).to.equal('Usage: express-m2m keys <command> [options]\n\nCommands:\n'
      + '  keys list    List the signing keys in use and their states; --all adds the expired and revoked ones\n'
      + '  keys rotate  Add a signing key: published at once, signing after a delay so verifiers fetch it first\n'
      + '  keys revoke  Withdraw a signing key at once (a compromised key): no longer published, never used again\n'
      + '  keys seal    Encrypt the private keys still stored in plain text, with M2M_KEY_ENCRYPTION_KEY (required)\n\n'
      + "Run 'express-m2m help keys <command>' for a command's options.\n");
  });

  it('refuses help for an unknown command, with a "did you mean", and extra words', async function () {
    const [unknown, extra] = await cliAll([['help', 'clients', 'updat'], ['help', 'migrate', 'now']]);
    expect(unknown?.code).to.equal(2);
    expect(unknown?.stderr.split('\n')[0]).to.equal('express-m2m: unknown command "clients updat" (did you mean clients update?)');
    expect(extra).to.deep.equal(badUsage('unexpected argument "now"', 'Usage: express-m2m help [COMMAND]\n'));
  });

  it("prints the package's version with --version, as text or JSON, whatever else is on the line", async function () {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const env = { DATABASE_URL: 'postgres://127.0.0.1:1/never-opened' };
    expect(await cliAll([['--version'], ['--version', '--json'], ['clients', 'list', '--version']], { env })).to.deep.equal([
      { code: 0, stdout: `${version}\n`, stderr: '' },
      { code: 0, stdout: `{\n  "version": "${version}"\n}\n`, stderr: '' },
      { code: 0, stdout: `${version}\n`, stderr: '' },
    ]);
  });
});
