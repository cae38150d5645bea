// The JWT worker, which runs jsonwebtoken's sign and verify off the event loop: batches, several
// keys, key removal, recovery after the worker stops, and the process's lifetime. Every signature
// is checked with node:crypto against the public key.
import { spawnSync } from 'node:child_process';
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';
import { generateSigningKey, importPrivateKey, type GeneratedKey } from '../../lib/core/keys.js';
import { jwtWorker } from '../../lib/core/jwt-worker.js';
import { createTokenSigner, type TokenSigner } from '../../lib/core/token.js';
import { rejectionOf } from '../support/rejection.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const publicKeyOf = (key: GeneratedKey): KeyObject => createPublicKey({ key: key.publicJwk as unknown as JsonWebKey, format: 'jwk' });

/** True when `jws` carries a valid ES256 signature by `key` over its first two segments. */
function signedBy(jws: string, key: GeneratedKey): boolean {
  const [header, payload, signature = ''] = jws.split('.');
  return verify('sha256', Buffer.from(`${header}.${payload}`), { key: publicKeyOf(key), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'));
}

/** The claims of `jws`, less the `iat` that jsonwebtoken adds to a claim set without one. */
function payloadOf(jws: string): unknown {
  const { iat, ...claims } = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  expect(iat).to.be.a('number');
  return claims;
}

describe('the JWT worker, signing ES256 with jsonwebtoken', () => {
  let first: GeneratedKey;
  let second: GeneratedKey;
  const signerFor = (key: GeneratedKey): TokenSigner =>
    createTokenSigner({ kid: key.kid, alg: 'ES256', privateKey: importPrivateKey(key.privateKeyPem) });

  before(async () => {
    [first, second] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('ES256')]);
  });

  it('signs 300 tokens asked for at once, each over its own claims, each valid', async () => {
    const sign = signerFor(first);
    try {
      const tokens = await Promise.all(Array.from({ length: 300 }, (_, i) => sign({ n: i, pad: 'x'.repeat(i) })));
      expect(tokens.map(payloadOf)).to.deep.equal(Array.from({ length: 300 }, (_, i) => ({ n: i, pad: 'x'.repeat(i) })));
      expect(tokens.every((t) => signedBy(t, first))).to.equal(true);
      // ECDSA signatures are randomised: 300 distinct ones.
      expect(new Set(tokens.map((t) => t.split('.')[2])).size).to.equal(300);
    } finally {
      sign.dispose();
    }
  });

  it('keeps the keys of two signers apart within one batch', async () => {
    const a = signerFor(first);
    const b = signerFor(second);
    try {
      const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b)({ n: i })));
      expect(tokens.map((t, i) => signedBy(t, i % 2 === 0 ? first : second))).to.deep.equal(tokens.map(() => true));
      expect(tokens.map((t, i) => signedBy(t, i % 2 === 0 ? second : first))).to.deep.equal(tokens.map(() => false));
      expect(tokens.map((t) => JSON.parse(Buffer.from(t.split('.')[0] ?? '', 'base64url').toString()).kid))
        .to.deep.equal(tokens.map((_, i) => (i % 2 === 0 ? first.kid : second.kid)));
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('makes the signatures asked for before dispose(), then refuses the key', async () => {
    const sign = signerFor(first);
    const pending = Promise.all([sign({ n: 1 }), sign({ n: 2 })]);
    sign.dispose();
    const tokens = await pending;
    expect(tokens.every((t) => signedBy(t, first))).to.equal(true);
    const err = await rejectionOf(sign({ n: 3 }), Error);
    expect(err.message).to.equal('the key is not registered');
  });

  it('gives the batch a stopped worker held to a new worker, once', async () => {
    const sign = signerFor(first);
    try {
      await sign({ warm: true });
      // A batch of 3000 takes the worker tens of milliseconds; it leaves on the next turn, and the
      // worker is stopped as soon as it has: the batch goes to a new worker and is signed there.
      const held = Promise.all(Array.from({ length: 3000 }, (_, n) => sign({ n })));
      await new Promise((resolve) => setImmediate(resolve));
      await jwtWorker().stop();
      const tokens = await held;
      expect(tokens.map(payloadOf)).to.deep.equal(Array.from({ length: 3000 }, (_, n) => ({ n })));
      expect(tokens.every((t) => signedBy(t, first))).to.equal(true);

      // Stopped again while it holds the same batch a second time: the batch is refused.
      const twice = Promise.allSettled(Array.from({ length: 3000 }, (_, n) => sign({ n })));
      await new Promise((resolve) => setImmediate(resolve));
      await jwtWorker().stop();
      await new Promise((resolve) => setImmediate(resolve));
      await jwtWorker().stop();
      const outcomes = await twice;
      const reasons = new Set(outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as Error).message] : [])));
      expect([...reasons]).to.deep.equal(['the JWT worker stopped']);
      for (const outcome of outcomes) if (outcome.status === 'fulfilled') expect(signedBy(outcome.value, first)).to.equal(true);

      const after = await Promise.all([sign({ n: 3 }), sign({ n: 4 })]);
      expect(after.every((t) => signedBy(t, first))).to.equal(true);
    } finally {
      sign.dispose();
    }
  });

  it('lets a process end by itself once its signatures are made, and keeps it alive until then', () => {
    // A top-level await on a signature with nothing else keeping the event loop alive: it must
    // complete (the worker holds the process while it signs), and then the process must exit
    // (an idle worker does not hold it).
    const script = [
      "import { generateSigningKey, importPrivateKey } from './lib/core/keys.ts';",
      "import { createTokenSigner } from './lib/core/token.ts';",
      "const key = await generateSigningKey('ES256');",
      "const sign = createTokenSigner({ kid: key.kid, alg: 'ES256', privateKey: importPrivateKey(key.privateKeyPem) });",
      'const token = await sign({ hello: 1 });',
      "console.log(token.split('.').length);",
    ].join('\n');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 15_000, encoding: 'utf8' });
    expect([run.status, run.signal, run.stdout, run.stderr]).to.deep.equal([0, null, '3\n', '']);
  });

  it('drops the key of a signer that was never disposed once the signer is collected', () => {
    const script = [
      "import { generateSigningKey, importPrivateKey } from './lib/core/keys.ts';",
      "import { jwtWorker } from './lib/core/jwt-worker.ts';",
      "import { createTokenSigner } from './lib/core/token.ts';",
      "const key = await generateSigningKey('ES256');",
      'const counts = [jwtWorker().keyCount];',
      'await (async () => {',
      "  const sign = createTokenSigner({ kid: key.kid, alg: 'ES256', privateKey: importPrivateKey(key.privateKeyPem) });",
      '  await sign({ n: 1 });',
      '  counts.push(jwtWorker().keyCount);',
      '})();',
      'for (let i = 0; i < 20 && jwtWorker().keyCount > 0; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }',
      'counts.push(jwtWorker().keyCount);',
      'console.log(counts.join(" "));',
    ].join('\n');
    const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 15_000, encoding: 'utf8' });
    expect([run.status, run.stdout, run.stderr]).to.deep.equal([0, '0 1 0\n', '']);
  });

  it('signs with jsonwebtoken on the event loop where worker threads are not allowed (permission model)', function () {
    // Node's permission model refuses worker threads unless --allow-worker, and with them tsx's
    // loader: the modules are transpiled to plain JavaScript for this run, in a folder inside the
    // project so that jsonwebtoken resolves from node_modules.
    const dir = mkdtempSync(join(ROOT, '.permission-test-'));
    try {
      for (const name of ['token', 'jwt-worker', 'jwt-jobs']) {
        const source = readFileSync(join(ROOT, 'lib/core', `${name}.ts`), 'utf8');
        const { outputText } = ts.transpileModule(source, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
        });
        writeFileSync(join(dir, `${name}.mjs`), outputText.replace(/'\.\/(jwt-worker|jwt-jobs)\.js'/g, "'./$1.mjs'"));
      }
      const script = [
        "import { generateKeyPairSync, verify } from 'node:crypto';",
        `import { createTokenSigner } from ${JSON.stringify(join(dir, 'token.mjs'))};`,
        "const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });",
        "const sign = createTokenSigner({ kid: 'k', alg: 'ES256', privateKey });",
        'const tokens = await Promise.all([1, 2, 3].map((n) => sign({ n })));',
        "console.log(tokens.map((t) => { const [h, p, s] = t.split('.'); return verify('sha256', Buffer.from(`${h}.${p}`), "
          + "{ key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')); }).join(' '));",
      ].join('\n');
      const run = spawnSync(process.execPath, ['--experimental-permission', `--allow-fs-read=${ROOT}`, '--no-warnings', '--input-type=module', '-e', script],
        { cwd: dir, timeout: 15_000, encoding: 'utf8' });
      expect([run.status, run.signal, run.stdout, run.stderr]).to.deep.equal([0, null, 'true true true\n', '']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
