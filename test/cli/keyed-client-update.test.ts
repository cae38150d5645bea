import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Client } from '../../lib/index.js';
import { assertion, expectInvalidClient, postAssertion } from '../express/private-key-jwt-fixtures.js';
import { makeKey } from '../express/resource-server-fixtures.js';
import { startIssuer } from '../support/issuer.js';
import { requiresServers } from '../support/servers.js';
import { CLI_DATABASES, clientJson, failure, json, registration, useCliDatabase, type Run } from './harness.js';

// Changing the keys of a secretless (private_key_jwt) client with `clients update --jwks-file` or
// `--jwks-uri` (several keys at once are how keys rotate without downtime), the secret commands
// refused for it, and a client registered by the CLI getting tokens from a real issuer.

const old = makeKey('ES256', { kid: 'archiver-1', fresh: true });
const next = makeKey('RS256', { kid: 'archiver-2', fresh: true });
const CREATE = ['clients', 'create', '--name', 'archiver', '--client-id', 'archiver', '--scope', 'reports:read', '--audience', 'https://reports.internal'];

for (const database of CLI_DATABASES) {
  describe(`express-m2m CLI: the keys of secretless clients on ${database}`, function () {
    if (database === 'postgres') requiresServers(this, 'postgres');
    this.timeout(180_000);
    const target = useCliDatabase(database);
    let dir: string;

    beforeEach(function () {
      dir = mkdtempSync(join(tmpdir(), 'm2m-jwks-'));
      writeFileSync(join(dir, 'old.json'), JSON.stringify({ keys: [old.jwk] }));
      writeFileSync(join(dir, 'both.json'), JSON.stringify({ keys: [old.jwk, next.jwk] }, null, 2));
      writeFileSync(join(dir, 'next.json'), JSON.stringify({ keys: [next.jwk] }));
    });
    afterEach(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    const run = (args: readonly string[], input?: string): Promise<Run> => target.run(args, { cwd: dir, ...(input === undefined ? {} : { input }) });

    it('replaces the keys: both keys during a rotation, then the next one alone, printing what changed', async function () {
      await target.store.clients.create({ ...registration, clientId: 'archiver', jwks: { keys: [old.jwk] } });
      expect(await run(['clients', 'update', 'archiver', '--jwks-file', 'both.json'])).to.deep.equal({
        code: 0,
        stderr: '',
        stdout: 'Updated client archiver:\n'
          + '  keys:  archiver-1  EC P-256  ES256\n'
          + '         archiver-2  RSA 2048  RS256\n',
      });
      expect((await target.store.clients.get('archiver'))?.jwks).to.deep.equal({ keys: [old.jwk, next.jwk] });
      const output = json(await run(['clients', 'update', 'archiver', '--jwks-file', '-', '--json'], JSON.stringify({ keys: [next.jwk] })));
      const client = await target.store.clients.get('archiver') as Client;
      expect(client.jwks).to.deep.equal({ keys: [next.jwk] });
      expect(output).to.deep.equal({ client: clientJson(client), changed: ['jwks'] });
      expect(await run(['clients', 'update', 'archiver', '--jwks-file', 'next.json'])).to.deep.equal({
        code: 0, stdout: 'Client archiver already had these settings: nothing changed.\n', stderr: '',
      });
    });

    it('moves a client from a key set to a jwks_uri and back', async function () {
      await target.store.clients.create({ ...registration, clientId: 'archiver', jwks: { keys: [old.jwk] } });
      const toUri = json(await run(['clients', 'update', 'archiver', '--jwks-uri', 'https://archiver.internal/jwks.json', '--json']));
      expect(toUri).to.have.property('changed').that.deep.equals(['jwks', 'jwksUri']);
      expect(await target.store.clients.get('archiver')).to.deep.include({ jwks: null, jwksUri: 'https://archiver.internal/jwks.json' });
      expect(await run(['clients', 'update', 'archiver', '--jwks-file', 'old.json'])).to.deep.equal({
        code: 0, stdout: 'Updated client archiver:\n  keys:  archiver-1  EC P-256  ES256\n', stderr: '',
      });
      expect(await target.store.clients.get('archiver')).to.deep.include({ jwks: { keys: [old.jwk] }, jwksUri: null });
    });

    it('refuses keys for a client that authenticates with a secret, and the secret commands for a keyed client', async function () {
      const secretClient = await target.store.clients.create({ ...registration, clientId: 'billing', tokenEndpointAuthMethod: 'client_secret_basic' });
      await target.store.clients.create({ ...registration, clientId: 'archiver', jwks: { keys: [old.jwk] } });
      const before = [await target.store.clients.get('billing'), await target.store.clients.get('archiver')];
      const runs = await target.runAll([
        ['clients', 'update', 'billing', '--jwks-file', 'old.json'],
        ['clients', 'update', 'billing', '--jwks-uri', 'https://billing.internal/jwks.json', '--json'],
        ['clients', 'rotate-secret', 'archiver'],
        ['clients', 'revoke-secret', 'archiver', secretClient.secret.id],
        ['clients', 'rotate-secret', 'archiver', '--json'],
      ], { cwd: dir });
      const noSecret = 'client "archiver": it authenticates with private_key_jwt and has no secret: to rotate its keys, register the '
        + 'next key beside the current one with `express-m2m clients update archiver --jwks-file FILE`';
      const noKeys = 'client "billing": it authenticates with a secret (client_secret_basic), so it has no public keys to replace: '
        + 'the method is fixed at registration; register a new client with --jwks-file or --jwks-uri';
      expect(runs).to.deep.equal([
        failure(noKeys),
        { code: 1, stdout: '', stderr: `${JSON.stringify({ error: { code: 'ERR_M2M_CLIENT_AUTH_METHOD', message: noKeys } }, null, 2)}\n` },
        failure(noSecret),
        failure(noSecret),
        { code: 1, stdout: '', stderr: `${JSON.stringify({ error: { code: 'ERR_M2M_CLIENT_AUTH_METHOD', message: noSecret } }, null, 2)}\n` },
      ]);
      expect([await target.store.clients.get('billing'), await target.store.clients.get('archiver')]).to.deep.equal(before);
      expect(await target.store.clients.listSecrets('archiver')).to.deep.equal([]);
      expect((await target.store.clients.authenticate('billing', secretClient.clientSecret)).ok).to.equal(true);
    });

    it('registers a client whose assertions get tokens from a real issuer, and rotates its keys without downtime', async function () {
      // The issuer shares the CLI's database; the test's hooks own the database, so the issuer leaves it open.
      const issuer = await startIssuer({ rateLimit: false }, { ...target.db, destroy: async () => {} }, { clientCacheTtl: 0 });
      try {
        const token = (key: typeof old) => postAssertion(issuer.tokenUrl, assertion(key, 'archiver', issuer.tokenUrl), { scope: 'reports:read' });
        expect(json(await run([...CREATE, '--jwks-file', 'old.json', '--json']))).to.not.have.property('clientSecret');
        await issuer.as.ready();
        const first = await token(old);
        expect([first.status, first.json]).to.deep.equal([200, {
          access_token: (first.json as { access_token: string }).access_token, token_type: 'Bearer', expires_in: 300, scope: 'reports:read',
        }]);
        expectInvalidClient(await token(next));

        expect((await run(['clients', 'update', 'archiver', '--jwks-file', 'both.json'])).code).to.equal(0);
        expect((await Promise.all([old, next].map(token))).map((res) => res.status)).to.deep.equal([200, 200]);

        expect((await run(['clients', 'update', 'archiver', '--jwks-file', 'next.json'])).code).to.equal(0);
        expectInvalidClient(await token(old));
        expect((await token(next)).status).to.equal(200);
      } finally {
        await issuer.close();
      }
    });
  });
}
