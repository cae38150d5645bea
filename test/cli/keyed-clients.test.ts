import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Client } from '../../lib/index.js';
import { makeKey } from '../express/resource-server-fixtures.js';
import { sampleWith } from '../support/readme-samples.js';
import { requiresServers } from '../support/servers.js';
import { CLI_DATABASES, clientJson, failure, json, registration, useCliDatabase, type Run } from './harness.js';

// Secretless (private_key_jwt) clients registered with the CLI: `clients create --jwks-file` or
// `--jwks-uri`, and what `clients show` and `clients list` print of them.

const CREATE = ['clients', 'create', '--name', 'archiver', '--client-id', 'archiver', '--scope', 'reports:read', '--audience', 'https://reports.internal'];
const KEYED_NOTICE = 'No secret was issued: the client authenticates with JWTs signed by its private key (private_key_jwt).';
const seconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

const ec = makeKey('ES256', { kid: 'archiver-1' });
const rsa = makeKey('RS256', { kid: 'archiver-2' });

/** A directory of files for the CLI to read, made for each test. */
function useFiles(): { dir: string; write(name: string, content: unknown): string } {
  const files = { dir: '' } as { dir: string; write(name: string, content: unknown): string };
  beforeEach(function () {
    files.dir = mkdtempSync(join(tmpdir(), 'm2m-jwks-'));
  });
  afterEach(function () {
    rmSync(files.dir, { recursive: true, force: true });
  });
  files.write = (name, content) => {
    writeFileSync(join(files.dir, name), typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 2));
    return name;
  };
  return files;
}

for (const database of CLI_DATABASES) {
  describe(`express-m2m CLI: secretless clients on ${database}`, function () {
    if (database === 'postgres') requiresServers(this, 'postgres');
    this.timeout(120_000);
    const target = useCliDatabase(database);
    const files = useFiles();

    describe('clients create', function () {
      it('registers a private_key_jwt client with the keys of a JWK Set file and prints no secret', async function () {
        files.write('archiver.jwks.json', { keys: [ec.jwk] });
        const run = await target.run([...CREATE, '--jwks-file', 'archiver.jwks.json'], { cwd: files.dir });
        expect(run).to.deep.equal({
          code: 0,
          stderr: '',
          stdout: [
            'Created client "archiver".',
            '',
            '  client id:    archiver',
            '  auth method:  private_key_jwt',
            '  keys:         archiver-1  EC P-256  ES256',
            '',
            KEYED_NOTICE,
            '',
          ].join('\n'),
        });
        expect(await target.store.clients.get('archiver')).to.deep.include({
          name: 'archiver', scopes: ['reports:read'], audiences: ['https://reports.internal'],
          tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ec.jwk] }, jwksUri: null,
        });
        expect(await target.store.clients.listSecrets('archiver')).to.deep.equal([]);
      });

      it('reads the JWK Set from standard input with --jwks-file -, and prints the client as JSON with --json', async function () {
        const output = json(await target.run([...CREATE, '--jwks-file', '-', '--json'], { input: JSON.stringify({ keys: [ec.jwk, rsa.jwk] }) }));
        const client = await target.store.clients.get('archiver') as Client;
        expect(output).to.deep.equal({ clientId: 'archiver', client: clientJson(client) });
        expect(output).to.deep.nested.include({
          'client.tokenEndpointAuthMethod': 'private_key_jwt', 'client.jwks': { keys: [ec.jwk, rsa.jwk] }, 'client.jwksUri': null,
        });
        expect(JSON.stringify(output)).to.not.match(/clientSecret|"secret"/);
      });

      it('registers a client whose keys the issuer fetches from --jwks-uri', async function () {
        const run = await target.run([...CREATE, '--jwks-uri', 'https://archiver.internal/jwks.json']);
        expect(run).to.deep.equal({
          code: 0,
          stderr: '',
          stdout: 'Created client "archiver".\n\n'
            + '  client id:    archiver\n'
            + '  auth method:  private_key_jwt\n'
            + '  jwks uri:     https://archiver.internal/jwks.json\n\n'
            + `${KEYED_NOTICE}\n`,
        });
        expect(await target.store.clients.get('archiver')).to.deep.include({
          tokenEndpointAuthMethod: 'private_key_jwt', jwks: null, jwksUri: 'https://archiver.internal/jwks.json',
        });
      });

      it('fixes a secret client to one method with --auth-method, and takes private_key_jwt with keys', async function () {
        files.write('keys.json', { keys: [ec.jwk] });
        const [post, keyed] = await target.runAll([
          ['clients', 'create', '--json', '--name', 'poster', '--client-id', 'poster', '--scope', 's', '--audience', 'https://a.internal',
            '--auth-method', 'client_secret_post'],
          [...CREATE, '--auth-method', 'private_key_jwt', '--jwks-file', 'keys.json', '--json'],
        ], { cwd: files.dir }) as [Run, Run];
        expect(json(post)).to.have.property('clientSecret').that.is.a('string');
        expect(json(keyed)).to.not.have.property('clientSecret');
        expect((await target.store.clients.list()).map((c) => [c.clientId, c.tokenEndpointAuthMethod])).to.deep.equal([
          ['archiver', 'private_key_jwt'], ['poster', 'client_secret_post'],
        ]);
      });
    });

    describe('clients show and clients list', function () {
      it('show prints the method and each key (kid, type and size, alg), and no secrets section', async function () {
        const client = (await target.store.clients.create({ ...registration, clientId: 'archiver', jwks: { keys: [ec.jwk, { ...rsa.jwk, alg: undefined }] } })).client;
        const run = await target.run(['clients', 'show', 'archiver']);
        expect(run).to.deep.equal({
          code: 0,
          stderr: '',
          stdout: [
            'Client archiver',
            '  name:              nightly-report',
            '  enabled:           yes',
            '  scopes:            reports:read',
            '  default scopes:    reports:read',
            '  audiences:         https://reports.internal',
            '  default audience:  https://reports.internal',
            "  token lifetime:    issuer's default",
            '  grant types:       client_credentials',
            '  auth method:       private_key_jwt',
            '  keys:              archiver-1  EC P-256  ES256',
            '                     archiver-2  RSA 2048  any alg',
            '  claims:            {}',
            `  created:           ${seconds(client.createdAt)}`,
            `  updated:           ${seconds(client.updatedAt)}`,
            '',
          ].join('\n'),
        });
      });

      it('show prints the jwks_uri of a client that publishes its keys, and both as JSON', async function () {
        await target.store.clients.create({ ...registration, clientId: 'fetcher', jwksUri: 'https://fetcher.internal/jwks.json' });
        await target.store.clients.create({ ...registration, clientId: 'archiver', jwks: { keys: [ec.jwk] } });
        const [text, fetcher, archiver] = await target.runAll([
          ['clients', 'show', 'fetcher'], ['clients', 'show', 'fetcher', '--json'], ['clients', 'show', 'archiver', '--json'],
        ]) as [Run, Run, Run];
        expect(text.stdout.split('\n').slice(9, 11)).to.deep.equal([
          '  auth method:       private_key_jwt',
          '  jwks uri:          https://fetcher.internal/jwks.json',
        ]);
        expect(json(fetcher)).to.deep.equal({ client: clientJson(await target.store.clients.get('fetcher') as Client), secrets: [] });
        const shown = json(archiver);
        expect(shown).to.deep.equal({ client: clientJson(await target.store.clients.get('archiver') as Client), secrets: [] });
        expect(shown).to.have.nested.property('client.jwks.keys[0].kid', 'archiver-1');
        expect(shown).to.have.nested.property('client.tokenEndpointAuthMethod', 'private_key_jwt');
      });

      it('list prints each client\'s method and its kids or jwks_uri, and every field with --json', async function () {
        await target.store.clients.create({ ...registration, clientId: 'archiver', jwks: { keys: [ec.jwk, rsa.jwk] } });
        await target.store.clients.create({ ...registration, clientId: 'billing' });
        await target.store.clients.create({ ...registration, clientId: 'fetcher', jwksUri: 'https://fetcher.internal/jwks.json' });
        const [text, asJson] = await target.runAll([['clients', 'list'], ['clients', 'list', '--json']]) as [Run, Run];
        expect(text).to.deep.equal({
          code: 0,
          stderr: '',
          stdout: [
            'CLIENT ID  NAME            ENABLED  AUTH METHOD               KEYS                                SCOPES        AUDIENCES',
            'archiver   nightly-report  yes      private_key_jwt           archiver-1 archiver-2               reports:read  https://reports.internal',
            'billing    nightly-report  yes      client_secret_basic|post  -                                   reports:read  https://reports.internal',
            'fetcher    nightly-report  yes      private_key_jwt           https://fetcher.internal/jwks.json  reports:read  https://reports.internal',
            '',
          ].join('\n'),
        });
        expect(json(asJson)).to.deep.equal({ clients: (await target.store.clients.list()).map(clientJson) });
      });
    });

    it("runs the README's secretless-client lines, as written", async function () {
      files.write('archiver.jwks.json', { keys: [ec.jwk] });
      files.write('archiver-rotation.jwks.json', { keys: [ec.jwk, rsa.jwk] });
      const lines = sampleWith('--jwks-file archiver.jwks.json').split('\n').filter((line) => line.trim() !== '');
      expect(lines).to.have.length(4);
      for (const line of lines) {
        const [npx, bin, ...args] = line.replace(/\s+#.*$/, '').split(/\s+/);
        expect([npx, bin], line).to.deep.equal(['npx', 'express-m2m']);
        const run = await target.run(args, { cwd: files.dir });
        expect([run.code, run.stderr], line).to.deep.equal([0, '']);
        if (line.includes('clients show')) expect(run.stdout).to.include('  auth method:       private_key_jwt\n');
      }
      expect(await target.store.clients.get('archiver')).to.deep.include({ jwks: { keys: [ec.jwk, rsa.jwk] }, jwksUri: null });
      expect(await target.store.clients.get('fetcher')).to.deep.include({ jwks: null, jwksUri: 'https://fetcher.internal/jwks.json' });
    });

    it('refuses a key file that holds a private key, naming the key and never printing its material, creating nothing', async function () {
      const secret = makeKey('ES256', { kid: 'leaked', fresh: true });
      const privateJwk = { ...secret.privateKey.export({ format: 'jwk' }), kid: 'leaked' } as Record<string, string>;
      files.write('private.json', { keys: [privateJwk] });
      const runs = await target.runAll([
        [...CREATE, '--jwks-file', 'private.json'], [...CREATE, '--jwks-file', 'private.json', '--json'], [...CREATE, '--jwks-file', 'private.json', '--debug'],
      ], { cwd: files.dir });
      const message = '--jwks-file "private.json": jwks.keys[0] holds private key material ("d"): register public keys only';
      expect(runs.slice(0, 2)).to.deep.equal([
        failure(message),
        { code: 1, stdout: '', stderr: `${JSON.stringify({ error: { code: 'ERR_M2M_INVALID_OPTION', message } }, null, 2)}\n` },
      ]);
      for (const run of runs) {
        for (const member of ['d', 'x', 'y']) expect(run.stderr).to.not.include(privateJwk[member]);
      }
      expect(await target.store.clients.list()).to.deep.equal([]);
    });
  });
}
