import { expect } from 'chai';
import { createKnexStore, KeyDecryptionError } from '../../lib/index.js';
import { badUsage, cli, cliAll, failure, json, snapshot, usageOf, useSqliteDatabase } from './harness.js';

/** What the tests know of a key. */
interface KeyLike {
  kid: string;
  alg: string;
  createdAt: Date;
  activatesAt: Date;
  revokedAt?: Date | null;
}

describe('express-m2m CLI: keys', function () {
  this.timeout(60_000);
  const db = useSqliteDatabase({ migrated: true });

  describe('keys rotate', function () {
    it('adds a pending ES256 key that signs after 600 seconds, and warns when no key signs yet', async function () {
      const run = await cli(['keys', 'rotate', '--json'], { env: db.env });
      expect(run.code).to.equal(0);
      const [key, other] = await db.store.keys.list();
      expect(other).to.equal(undefined);
      expect(JSON.parse(run.stdout)).to.deep.equal({
        key: {
          kid: key?.kid, alg: 'ES256', state: 'pending', createdAt: key?.createdAt.toISOString(),
          activatesAt: new Date((key?.createdAt.getTime() ?? 0) + 600_000).toISOString(), revokedAt: null,
        },
      });
      expect(run.stderr).to.equal(`Warning: no key signs tokens until ${key?.activatesAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}; `
        + 'use --activate-after 0 for the first key.\n');
    });

    it("stores the newest key's retention with the new key, or --max-token-lifetime plus 60 s", async function () {
      await db.store.keys.ensure('ES256', { retention: 86_460 });
      const retentions = async (): Promise<unknown> =>
        (await db.store.keys.list()).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map((k) => k.retention);
      expect((await cli(['keys', 'rotate', '--activate-after', '30'], { env: db.env })).code).to.equal(0);
      expect(await retentions()).to.deep.equal([86_460, 86_460]);
      expect((await cli(['keys', 'rotate', '--activate-after', '60', '--max-token-lifetime', '300'], { env: db.env })).code).to.equal(0);
      expect(await retentions()).to.deep.equal([86_460, 86_460, 360]);
    });

    it('stores the new key encrypted when M2M_KEY_ENCRYPTION_KEY is set, and refuses a short one', async function () {
      const kek = 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=';
      const run = await cli(['keys', 'rotate', '--activate-after', '0'], { env: { ...db.env, M2M_KEY_ENCRYPTION_KEY: kek } });
      const [key] = await db.store.keys.list();
      expect(run).to.deep.equal({ code: 0, stdout: `Added ES256 key ${key?.kid}: active now.\n`, stderr: '' });
      const [stored] = await db.knex('m2m_signing_keys').pluck('private_key') as string[];
      expect(stored).to.match(/^m2m-enc:v1:/);
      // This store has no secret: the key is listed, its private part is not readable.
      expect(() => key?.privateKeyPem).to.throw(KeyDecryptionError, /is stored encrypted/).with.property('code', 'ERR_M2M_KEY_DECRYPTION');
      const short = await cli(['keys', 'list'], { env: { ...db.env, M2M_KEY_ENCRYPTION_KEY: 'too-short' } });
      expect(short).to.deep.equal({
        code: 1, stdout: '', stderr: 'express-m2m: M2M_KEY_ENCRYPTION_KEY must be at least 32 characters (for example: openssl rand -base64 32)\n' });
    });

    it('refuses a plain-text key beside encrypted ones without M2M_KEY_ENCRYPTION_KEY, unless --allow-plaintext; keys seal encrypts it', async function () {
      const kek = 'q9Jb3v0m1dXc7sYH8wR2kTn4uPzL6aEfG5iOyVtQjC0=';
      expect((await cli(['keys', 'rotate', '--activate-after', '0'], { env: { ...db.env, M2M_KEY_ENCRYPTION_KEY: kek } })).code).to.equal(0);
      const refused = await cli(['keys', 'rotate'], { env: db.env });
      expect(refused).to.deep.equal({ code: 1, stdout: '', stderr: 'express-m2m: the other signing keys are stored encrypted: give this store the '
        + 'keyEncryptionKey (CLI: M2M_KEY_ENCRYPTION_KEY), or allow a plain-text key on purpose (allowPlaintext, CLI: --allow-plaintext)\n' });
      expect(await db.knex('m2m_signing_keys').count({ n: '*' }).first()).to.deep.equal({ n: 1 });
      const allowed = await cli(['keys', 'rotate', '--allow-plaintext', '--json'], { env: db.env });
      expect(allowed.code).to.equal(0);
      const stored = async () => (await db.knex('m2m_signing_keys').pluck('private_key') as string[]).map((k) => k.startsWith('m2m-enc:v1:'));
      expect((await stored()).sort()).to.deep.equal([false, true]);
      expect(await cli(['keys', 'seal'], { env: db.env })).to.deep.equal({
        code: 1, stdout: '', stderr: 'express-m2m: keys seal needs M2M_KEY_ENCRYPTION_KEY (at least 32 characters, for example: openssl rand -base64 32)\n' });
      expect(await cli(['keys', 'seal'], { env: { ...db.env, M2M_KEY_ENCRYPTION_KEY: kek } })).to.deep.equal({
        code: 0, stdout: 'Sealed 1 private key: stored encrypted from now on. Give the issuer the same keyEncryptionKey.\n', stderr: '' });
      expect(await stored()).to.deep.equal([true, true]);
      expect(await cli(['keys', 'seal', '--json'], { env: { ...db.env, M2M_KEY_ENCRYPTION_KEY: kek } })).to.deep.equal({
        code: 0, stdout: '{\n  "sealed": 0\n}\n', stderr: '' });
    });

    it('adds a key of the chosen algorithm that signs at once with --alg RS256 --activate-after 0', async function () {
      const run = await cli(['keys', 'rotate', '--alg', 'RS256', '--activate-after', '0'], { env: db.env });
      const [key] = await db.store.keys.list();
      expect(key?.alg).to.equal('RS256');
      expect(run).to.deep.equal({ code: 0, stdout: `Added RS256 key ${key?.kid}: active now.\n`, stderr: '' });
    });

    it('adds a pending key beside the active one without a warning', async function () {
      await db.store.keys.ensure('ES256');
      const run = await cli(['keys', 'rotate', '--activate-after', '30'], { env: db.env });
      const added = (await db.store.keys.list()).find((k) => k.activatesAt.getTime() > k.createdAt.getTime());
      expect(run).to.deep.equal({
        code: 0,
        stdout: `Added ES256 key ${added?.kid}: published now, signs tokens from ${added?.activatesAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}.\n`,
        stderr: '',
      });
    });
  });

  describe('keys revoke', function () {
    it('withdraws a key so that it is no longer listed, and warns when no active key is left', async function () {
      await db.store.keys.ensure('ES256');
      const [key] = await db.store.keys.list();
      // A kid is base64url: one in 64 starts with "-", which only an argument after -- may.
      const run = await cli(['keys', 'revoke', '--', key?.kid ?? ''], { env: db.env });
      expect(run).to.deep.equal({
        code: 0,
        stdout: `Revoked key ${key?.kid}. Tokens it signed no longer verify once verifiers refresh their JWKS.\n`,
        stderr: 'Warning: no active key is left; the issuer creates a new one on its next token request.\n',
      });
      expect(await db.store.keys.list()).to.deep.equal([]);
    });

    it('keeps the other keys and prints JSON with --json', async function () {
      const first = await db.store.keys.rotate({ activateAfter: 0 });
      const second = await db.store.keys.rotate({ activateAfter: 0 });
      const run = await cli(['keys', 'revoke', '--json', '--', first.kid], { env: db.env });
      expect([run.code, json(run), run.stderr]).to.deep.equal([0, { revoked: first.kid }, '']);
      expect((await db.store.keys.list()).map((k) => k.kid)).to.deep.equal([second.kid]);
    });

    it('takes a kid that starts with "-" after --, and says so when it is given before', async function () {
      expect(await cli(['keys', 'revoke', '--', '-no-such-kid'], { env: db.env })).to.deep.equal({
        code: 1, stdout: '', stderr: 'express-m2m: no signing key with kid "-no-such-kid"\n' });
      const run = await cli(['keys', 'revoke', '-no-such-kid'], { env: db.env });
      expect([run.code, run.stdout, run.stderr.split('\n')[0]]).to.deep.equal([2, '',
        'express-m2m: unknown option -n (an argument that starts with "-", such as a kid or a secret id, goes after --)']);
    });

    it('fails with exit code 1 for an unknown kid, and changes nothing', async function () {
      await db.store.keys.ensure('ES256');
      const before = await snapshot(db.knex);
      const runs = await cliAll([
        ['keys', 'revoke', 'no-such-kid'],
        ['keys', 'revoke', "x' or '1'='1"],
        ['keys', 'revoke', 'k'.repeat(5000)],
        ['keys', 'revoke', 'no-such-kid', '--json'],
      ], { env: db.env });
      expect(runs.slice(0, 3)).to.deep.equal([
        failure('no signing key with kid "no-such-kid"'),
        failure('no signing key with kid "x\' or \'1\'=\'1"'),
        failure(`no signing key with kid "${'k'.repeat(64)}..."`),
      ]);
      expect(runs[3]).to.deep.equal({ code: 1, stdout: '', stderr: `${JSON.stringify({
        error: { code: 'ERR_M2M_KEY_NOT_FOUND', message: 'no signing key with kid "no-such-kid"' } }, null, 2)}\n` });
      expect(await snapshot(db.knex)).to.deep.equal(before);
    });

    it('says that a key is already revoked, and since when, with exit code 1', async function () {
      const key = await db.store.keys.rotate({ activateAfter: 0 });
      expect((await cli(['keys', 'revoke', '--', key.kid], { env: db.env })).code).to.equal(0);
      const before = await snapshot(db.knex);
      const [revokedAt] = await db.knex('m2m_signing_keys').where({ kid: key.kid }).pluck('revoked_at') as number[];
      const since = new Date(Number(revokedAt)).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const [again, asJson] = await cliAll([['keys', 'revoke', '--', key.kid], ['keys', 'revoke', '--json', '--', key.kid]], { env: db.env });
      const message = `key "${key.kid}" is already revoked (since ${since})`;
      expect(again).to.deep.equal(failure(message));
      expect(asJson).to.deep.equal({ code: 1, stdout: '', stderr: `${JSON.stringify({ error: { code: 'ERR_M2M_KEY_REVOKED', message } }, null, 2)}\n` });
      expect(await snapshot(db.knex)).to.deep.equal(before);
    });

    it('refuses a missing or extra kid and options after -- with exit code 2', async function () {
      const key = await db.store.keys.rotate({ activateAfter: 0 });
      const usage = usageOf('keys revoke', 'KID');
      const runs = await cliAll([
        ['keys', 'revoke'],
        ['keys', 'revoke', '--', key.kid, 'other'],
        ['keys', 'revoke', '--', key.kid, '--json'],
        ['keys', 'revoke', '--', '-h'],
      ], { env: db.env });
      expect(runs).to.deep.equal([
        badUsage('missing key id', usage),
        badUsage('unexpected argument "other"', usage),
        badUsage('option --json after --: everything after -- is an argument, so put options before --', usage),
        badUsage('option --help after --: everything after -- is an argument, so put options before --', usage),
      ]);
      expect((await db.store.keys.list()).map((k) => k.kid)).to.deep.equal([key.kid]);
    });
  });

  describe('keys list', function () {
    /**
     * A key of each state, made through stores whose clock is in the past: A was superseded by B
     * two days ago (expired), B by C just now (still published for the longest token lifetime),
     * R was revoked, D is pending.
     */
    async function keysOfEveryState() {
      const day = 86_400_000;
      const past = (days: number) => createKnexStore(db.knex, { clock: () => Date.now() - days * day });
      const a = await past(3).keys.rotate({ activateAfter: 0 });
      const b = await past(2).keys.rotate({ activateAfter: 0, alg: 'RS256' });
      const r = await past(1).keys.rotate({ activateAfter: 0 });
      await db.store.keys.revoke(r.kid);
      const c = await db.store.keys.rotate({ activateAfter: 0 });
      const d = await db.store.keys.rotate({ activateAfter: 600, alg: 'PS256' });
      const [revokedAt] = await db.knex('m2m_signing_keys').where({ kid: r.kid }).pluck('revoked_at') as number[];
      return { a, b, r: { ...r, revokedAt: new Date(Number(revokedAt)) }, c, d };
    }

    const seconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const entry = (key: KeyLike, state: string): Record<string, unknown> => ({
      kid: key.kid, alg: key.alg, state, createdAt: key.createdAt.toISOString(), activatesAt: key.activatesAt.toISOString(),
      revokedAt: key.revokedAt?.toISOString() ?? null,
    });
    /** A line of the keys table: the widths are those of a kid, an alg, the longest state and a date. */
    const line = (key: KeyLike, state: string, revoked?: string): string =>
      [key.kid, key.alg, state.padEnd(21), seconds(key.createdAt), `${seconds(key.activatesAt)}${revoked === undefined ? '' : `  ${revoked}`}`].join('  ');

    it('shows the keys in use as pending, active or retired-but-published, and how many more --all lists', async function () {
      const { b, c, d } = await keysOfEveryState();
      expect(json(await cli(['keys', 'list', '--json'], { env: db.env }))).to.deep.equal({
        keys: [entry(b, 'retired-but-published'), entry(c, 'active'), entry(d, 'pending')],
      });
      const kid = 'KID'.padEnd(b.kid.length);
      expect(await cli(['keys', 'list'], { env: db.env })).to.deep.equal({
        code: 0,
        stderr: '',
        stdout: [
          `${kid}  ALG    STATE                  CREATED               ACTIVATES`,
          line(b, 'retired-but-published'), line(c, 'active'), line(d, 'pending'),
          '',
          '2 expired or revoked keys are not shown: `keys list --all` lists them.',
          '',
        ].join('\n'),
      });
    });

    it('lists every key with --all: expired and revoked ones too, with when each was revoked', async function () {
      const { a, b, r, c, d } = await keysOfEveryState();
      expect(json(await cli(['keys', 'list', '--all', '--json'], { env: db.env }))).to.deep.equal({
        keys: [entry(a, 'expired'), entry(b, 'retired-but-published'), entry(r, 'revoked'), entry(c, 'active'), entry(d, 'pending')],
      });
      const kid = 'KID'.padEnd(b.kid.length);
      expect(await cli(['keys', 'list', '--all'], { env: db.env })).to.deep.equal({
        code: 0,
        stderr: '',
        stdout: [
          `${kid}  ALG    STATE                  CREATED               ACTIVATES             REVOKED`,
          line(a, 'expired', '-'), line(b, 'retired-but-published', '-'), line(r, 'revoked', seconds(r.revokedAt)),
          line(c, 'active', '-'), line(d, 'pending', '-'),
          '',
        ].join('\n'),
      });
    });

    it('says so when no key is in use and only --all lists the others', async function () {
      const key = await db.store.keys.rotate({ activateAfter: 0 });
      await db.store.keys.revoke(key.kid);
      expect(await cli(['keys', 'list'], { env: db.env })).to.deep.equal({
        code: 0,
        stdout: 'No signing key in use. The issuer creates one on its first token request, or run `express-m2m keys rotate`.\n\n'
          + '1 expired or revoked key is not shown: `keys list --all` lists it.\n',
        stderr: '',
      });
    });

    it('refuses --all given twice or with a value, and an unknown option, with exit code 2', async function () {
      const usage = usageOf('keys list', '[--all] [--max-token-lifetime SECONDS]');
      expect(await cliAll([['keys', 'list', '--all', '--all'], ['keys', 'list', '--all=yes'], ['keys', 'list', '--al']], { env: db.env }))
        .to.deep.equal([
          badUsage('option --all given more than once', usage),
          badUsage('option --all takes no value', usage),
          badUsage('unknown option --al (did you mean --all?)', usage),
        ]);
    });

    /** Two keys: `old`, superseded `retiredFor` ms ago by `current`, each stored with `retention`. */
    async function supersededKeys(retiredFor: number, retention: number | null): Promise<void> {
      const created = Date.now() - retiredFor - 3_600_000;
      const old = await createKnexStore(db.knex, { clock: () => created }).keys.rotate({ activateAfter: 0 });
      const current = await db.store.keys.rotate({ activateAfter: 0 });
      await db.knex('m2m_signing_keys').where({ kid: current.kid }).update({ activates_at: Date.now() - retiredFor });
      await db.knex('m2m_signing_keys').whereIn('kid', [old.kid, current.kid]).update({ retention });
    }

    const states = async (args: string[] = []): Promise<unknown> =>
      ((json(await cli(['keys', 'list', '--all', '--json', ...args], { env: db.env })) as { keys: { state: string }[] }).keys).map((k) => k.state);

    it('keeps a retired key published for the retention stored with it', async function () {
      // An issuer with maxTokenLifetime 300 stored 360 s; another with 86400 stored 86460 s.
      await supersededKeys(3_600_000, 360);
      expect(await states()).to.deep.equal(['expired', 'active']);
      await db.knex('m2m_signing_keys').update({ retention: 86_460 });
      expect(await states()).to.deep.equal(['retired-but-published', 'active']);
    });

    it('shows the states of an issuer that has recorded its retention with store.keys.ensure()', async function () {
      await supersededKeys(20 * 60_000, null);
      await db.store.keys.ensure('ES256', { retention: 10 * 60 + 60 });
      const rows = await db.knex('m2m_signing_keys').orderBy('activates_at').pluck('retention') as (number | null)[];
      // The current key now has 660 s, the retired one keeps what it had (none: 3660 s).
      expect(rows).to.deep.equal([null, 660]);
      expect(await states()).to.deep.equal(['retired-but-published', 'active']);
      await db.knex('m2m_signing_keys').update({ retention: 660 });
      expect(await states()).to.deep.equal(['expired', 'active']);
    });

    it('reads a key stored before retention was recorded as published for 3660 s', async function () {
      await supersededKeys(3_600_000, null);
      expect(await states()).to.deep.equal(['retired-but-published', 'active']);
      await db.knex('m2m_signing_keys').delete();
      await supersededKeys(3_661_000, null);
      expect(await states()).to.deep.equal(['expired', 'active']);
    });

    it("takes --max-token-lifetime as the issuer's: no key retires sooner than it allows, or than stored", async function () {
      await supersededKeys(3_600_000, 360);
      expect(await states(['--max-token-lifetime', '3600'])).to.deep.equal(['retired-but-published', 'active']);
      expect(await states(['--max-token-lifetime', '300'])).to.deep.equal(['expired', 'active']);
      await db.knex('m2m_signing_keys').update({ retention: 3660 });
      expect(await states(['--max-token-lifetime', '300'])).to.deep.equal(['retired-but-published', 'active']);
    });

    it('never prints a private key', async function () {
      const revoked = await db.store.keys.rotate({ activateAfter: 0, alg: 'RS256' });
      await db.store.keys.revoke(revoked.kid);
      await db.store.keys.rotate({ activateAfter: 0 });
      const pems = await db.knex('m2m_signing_keys').pluck('private_key') as string[];
      for (const args of [['keys', 'list'], ['keys', 'list', '--json'], ['keys', 'list', '--all'], ['keys', 'list', '--all', '--json']]) {
        const run = await cli(args, { env: db.env });
        expect(run.code).to.equal(0);
        expect(run.stdout).to.not.include('PRIVATE KEY');
        for (const pem of pems) expect(run.stdout).to.not.include(pem.split('\n')[1]);
      }
    });

    it('says so when there is no key', async function () {
      expect(await cli(['keys', 'list'], { env: db.env })).to.deep.equal({
        code: 0,
        stdout: 'No signing keys. The issuer creates one on its first token request, or run `express-m2m keys rotate`.\n',
        stderr: '',
      });
    });
  });
});
