import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { makeKey } from '../express/resource-server-fixtures.js';
import { badUsage, cliAll, failure, usageOf, type Run } from './harness.js';

// What `clients create` and `clients update` refuse in --jwks-file and --jwks-uri, and how. All of
// it is refused before the database is opened: the database named here does not exist.

const CREATE_USAGE = usageOf('clients create', '--name NAME --scope S... --audience A... [options]');
const UPDATE_USAGE = usageOf('clients update', 'ID [--name NAME] [--scope S...] [--default-scope S...] [--audience A...] '
  + '[--default-audience A] [--token-lifetime SECONDS] [options]');
const CREATE = ['clients', 'create', '--name', 'archiver', '--scope', 'reports:read', '--audience', 'https://reports.internal'];
const NEVER_OPENED = { DATABASE_URL: 'postgres://127.0.0.1:1/never-opened' };
const SET_SHAPE = 'it must hold a JWK Set, {"keys": [...]}';

describe('express-m2m CLI: bad --jwks-file and --jwks-uri', function () {
  this.timeout(180_000);
  let dir: string;
  const ec = makeKey('ES256', { kid: 'k1' });

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'm2m-jwks-'));
    mkdirSync(join(dir, 'a-directory'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, content: string): string => {
    writeFileSync(join(dir, name), content);
    return name;
  };
  const runAll = (lines: readonly (readonly string[])[], input?: string): Promise<Run[]> =>
    cliAll(lines, { env: NEVER_OPENED, cwd: dir, ...(input === undefined ? {} : { input }) });

  it('refuses a file that is missing, a directory, empty, not JSON or larger than 64 KiB, with a code for each', async function () {
    write('empty.json', ' \n');
    // Malformed JSON holding a private key: neither the message nor --debug may quote it.
    write('broken.json', '{"keys": [{"kty": "EC", "d": "TOP-SECRET-MATERIAL"');
    write('huge.json', `{"keys": []}${' '.repeat(64 * 1024)}`);
    const files = ['missing.json', 'a-directory', 'empty.json', 'broken.json', 'huge.json'];
    const runs = await runAll([...files.map((file) => [...CREATE, '--jwks-file', file]), [...CREATE, '--jwks-file', 'broken.json', '--debug']]);
    expect(runs.slice(0, 5)).to.deep.equal([
      failure('cannot read --jwks-file "missing.json": no such file'),
      failure('cannot read --jwks-file "a-directory": it is a directory'),
      failure(`--jwks-file "empty.json" is empty: ${SET_SHAPE}`),
      failure(`--jwks-file "broken.json" is not JSON: ${SET_SHAPE}`),
      failure('--jwks-file "huge.json" is larger than 64 KiB: a JWK Set of public keys is far smaller'),
    ]);
    expect(runs[5]?.code).to.equal(1);
    expect(runs[5]?.stderr).to.match(/^express-m2m: CliError: --jwks-file "broken.json" is not JSON/);
    expect(runs[5]?.stderr).to.not.include('TOP-SECRET');

    const codes = await runAll(files.map((file) => [...CREATE, '--jwks-file', file, '--json']));
    expect(codes.map((run) => (JSON.parse(run.stderr) as { error: { code: string } }).error.code)).to.deep.equal([
      'ERR_M2M_JWKS_FILE_UNREADABLE', 'ERR_M2M_JWKS_FILE_UNREADABLE', 'ERR_M2M_JWKS_FILE_NOT_JSON', 'ERR_M2M_JWKS_FILE_NOT_JSON',
      'ERR_M2M_JWKS_FILE_TOO_LARGE',
    ]);
  });

  it('refuses more than 64 KiB on standard input without reading it all', async function () {
    const [run] = await runAll([[...CREATE, '--jwks-file', '-']], `{"keys": []}${' '.repeat(1024 * 1024)}`);
    expect(run).to.deep.equal(failure('--jwks-file - (standard input) is larger than 64 KiB: a JWK Set of public keys is far smaller'));
  });

  it("refuses what is not a JWK Set of usable public keys with the store's reason, naming the key", async function () {
    const oct = { kty: 'oct', kid: 'shared', k: 'c2hhcmVkLXNlY3JldC1zaGFyZWQtc2VjcmV0' };
    const cases: [string, unknown, string][] = [
      ['one-jwk.json', ec.jwk, 'jwks must be a JWK Set: an object with a "keys" array'],
      ['array.json', [ec.jwk], 'jwks must be a JWK Set: an object with a "keys" array'],
      ['no-keys.json', { keys: [] }, 'jwks must hold 1 to 10 keys'],
      ['symmetric.json', { keys: [oct] }, 'jwks.keys[0] holds private key material ("k"): register public keys only '
        + '(a symmetric key, kty "oct": private_key_jwt takes RSA or EC public keys)'],
      ['same-kid.json', { keys: [ec.jwk, ec.jwk] }, 'jwks holds the kid "k1" more than once'],
      ['bad-curve.json', { keys: [{ ...ec.jwk, crv: 'P-192' }] }, 'jwks.keys[0].crv must be P-256, P-384 or P-521'],
      // Pretty-printed under 64 KiB, but more than the store keeps as JSON.
      ['too-many-members.json', { keys: [{ ...ec.jwk, x5c: ['A'.repeat(21_000)] }] }, 'jwks is larger than 20000 characters as JSON'],
    ];
    for (const [name, content] of cases) write(name, JSON.stringify(content, null, 2));
    const runs = await runAll(cases.map(([name]) => [...CREATE, '--jwks-file', name]));
    expect(runs).to.deep.equal(cases.map(([name, , message]) => failure(`--jwks-file "${name}": ${message}`)));
    for (const run of runs) expect(run.stderr).to.not.include(oct.k);
  });

  it('refuses both key options, a jwks_uri that is not https, and an --auth-method that does not fit, with exit code 2', async function () {
    write('keys.json', JSON.stringify({ keys: [ec.jwk] }));
    const runs = await runAll([
      [...CREATE, '--jwks-file', 'keys.json', '--jwks-uri', 'https://archiver.internal/jwks.json'],
      [...CREATE, '--jwks-uri', 'ftp://archiver.internal/jwks.json'],
      [...CREATE, '--jwks-uri', 'http://archiver.internal/jwks.json'],
      [...CREATE, '--jwks-uri', 'https://user:pass@archiver.internal/jwks.json'],
      [...CREATE, '--jwks-uri', 'jwks.json'],
      [...CREATE, '--auth-method', 'client_secret_basic', '--jwks-file', 'keys.json'],
      [...CREATE, '--auth-method', 'private_key_jwt'],
      [...CREATE, '--auth-method', 'client_secret_bsic'],
      [...CREATE, '--jwks-fil', 'keys.json'],
      [...CREATE, '--jwks-url', 'https://archiver.internal/jwks.json'],
      ['clients', 'update', 'archiver', '--jwks-file', 'keys.json', '--jwks-uri', 'https://archiver.internal/jwks.json'],
      ['clients', 'update', 'archiver', '--jwks-uri', 'http://archiver.internal/jwks.json'],
      ['clients', 'update', 'archiver', '--jwks', 'keys.json'],
    ]);
    const https = '--jwks-uri must use https (http only on localhost, 127.0.0.1 or [::1])';
    expect(runs).to.deep.equal([
      badUsage('--jwks-file and --jwks-uri cannot be combined', CREATE_USAGE),
      badUsage(`${https}, got "ftp://archiver.internal/jwks.json"`, CREATE_USAGE),
      badUsage(`${https}, got "http://archiver.internal/jwks.json"`, CREATE_USAGE),
      // The credentials are not printed back.
      badUsage('--jwks-uri must hold no credentials and no fragment, got "https://***@archiver.internal/jwks.json"', CREATE_USAGE),
      badUsage('--jwks-uri must be an absolute URL, got "jwks.json"', CREATE_USAGE),
      badUsage('--jwks-file registers a private_key_jwt client, which has no secret: it cannot be combined with --auth-method client_secret_basic',
        CREATE_USAGE),
      badUsage('--auth-method private_key_jwt needs the public keys: --jwks-file FILE or --jwks-uri URL', CREATE_USAGE),
      badUsage('--auth-method must be client_secret_basic, client_secret_post or private_key_jwt, got "client_secret_bsic" '
        + '(did you mean client_secret_basic?)', CREATE_USAGE),
      badUsage('unknown option --jwks-fil (did you mean --jwks-file?)', CREATE_USAGE),
      badUsage('unknown option --jwks-url (did you mean --jwks-uri?)', CREATE_USAGE),
      badUsage('--jwks-file and --jwks-uri cannot be combined', UPDATE_USAGE),
      badUsage(`${https}, got "http://archiver.internal/jwks.json"`, UPDATE_USAGE),
      badUsage('unknown option --jwks', UPDATE_USAGE),
    ]);
  });

  it('takes - as a value only for --jwks-file, where it means standard input', async function () {
    const runs = await runAll([[...CREATE, '--client-id', '-'], ['clients', 'update', 'archiver', '--jwks-uri', '-']]);
    expect(runs).to.deep.equal([
      badUsage('option --client-id needs a value (write --client-id=VALUE for one starting with "-")', CREATE_USAGE),
      badUsage('option --jwks-uri needs a value (write --jwks-uri=VALUE for one starting with "-")', UPDATE_USAGE),
    ]);
  });
});
