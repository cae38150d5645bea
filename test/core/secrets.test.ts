import { createHash } from 'node:crypto';
import { expect } from 'chai';
import {
  DUMMY_SECRET_HASH, generateClientSecret, hashSecret, isWellFormedSecret, matchSecret, SECRET_PREFIX,
} from '../../lib/core/secrets.js';

const sha256Hex = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

/** A different character of the same class (base64url for the body, base36 for the checksum). */
function otherChar(char: string, alphabet: string): string {
  const index = alphabet.indexOf(char);
  expect(index, `character ${JSON.stringify(char)} not in its alphabet`).to.be.at.least(0);
  return alphabet[(index + 1) % alphabet.length] as string;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

describe('generateClientSecret()', () => {
  it('has the m2m_cs_ prefix, 43 base64url characters and a 6-character base36 checksum', () => {
    const secret = generateClientSecret();
    expect(SECRET_PREFIX).to.equal('m2m_cs_');
    expect(secret).to.have.length(7 + 43 + 6);
    expect(secret).to.match(/^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/);
  });

  it('carries 256 random bits in its body', () => {
    const secret = generateClientSecret();
    const body = Buffer.from(secret.slice(7, 50), 'base64url');
    expect(body).to.have.length(32);
  });

  it('never repeats a secret', () => {
    const seen = new Set(Array.from({ length: 200 }, () => generateClientSecret()));
    expect(seen.size).to.equal(200);
  });

  it('produces secrets that isWellFormedSecret() accepts', () => {
    for (let i = 0; i < 200; i++) {
      const secret = generateClientSecret();
      expect(isWellFormedSecret(secret), secret).to.equal(true);
    }
  });
});

describe('isWellFormedSecret()', () => {
  it('catches a one-character change anywhere in the body', () => {
    const secret = generateClientSecret();
    for (let i = SECRET_PREFIX.length; i < SECRET_PREFIX.length + 43; i++) {
      const changed = secret.slice(0, i) + otherChar(secret[i] as string, BASE64URL) + secret.slice(i + 1);
      expect(changed).to.match(/^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/);
      expect(isWellFormedSecret(changed), `changed at ${i}`).to.equal(false);
    }
  });

  it('catches a one-character change anywhere in the checksum', () => {
    const secret = generateClientSecret();
    for (let i = secret.length - 6; i < secret.length; i++) {
      const changed = secret.slice(0, i) + otherChar(secret[i] as string, BASE36) + secret.slice(i + 1);
      expect(isWellFormedSecret(changed), `changed at ${i}`).to.equal(false);
    }
  });

  it('catches two swapped adjacent characters of the body', () => {
    let secret = generateClientSecret();
    // Swapping two equal characters changes nothing; draw until positions 10 and 11 differ (bounded).
    for (let i = 0; i < 100 && secret[10] === secret[11]; i++) secret = generateClientSecret();
    const swapped = `${secret.slice(0, 10)}${secret[11]}${secret[10]}${secret.slice(12)}`;
    expect(swapped).to.not.equal(secret);
    expect(isWellFormedSecret(swapped)).to.equal(false);
  });

  it('rejects a changed prefix', () => {
    const secret = generateClientSecret();
    expect(isWellFormedSecret(`m2m_cx_${secret.slice(7)}`)).to.equal(false);
    expect(isWellFormedSecret(`M2M_CS_${secret.slice(7)}`)).to.equal(false);
  });

  it('rejects a truncated or extended secret', () => {
    const secret = generateClientSecret();
    expect(isWellFormedSecret(secret.slice(0, -1))).to.equal(false);
    expect(isWellFormedSecret(`${secret}0`)).to.equal(false);
    expect(isWellFormedSecret(`x${secret}`)).to.equal(false);
  });

  it('rejects surrounding whitespace', () => {
    const secret = generateClientSecret();
    expect(isWellFormedSecret(` ${secret}`)).to.equal(false);
    expect(isWellFormedSecret(`${secret}\n`)).to.equal(false);
  });

  it('rejects an upper-case checksum', () => {
    const secret = generateClientSecret();
    const upper = secret.slice(0, -6) + secret.slice(-6).toUpperCase();
    if (upper !== secret) expect(isWellFormedSecret(upper)).to.equal(false);
    expect(isWellFormedSecret(`${secret.slice(0, -6)}ZZZZZZ`)).to.equal(false);
  });

  it('rejects the empty string and arbitrary text', () => {
    expect(isWellFormedSecret('')).to.equal(false);
    expect(isWellFormedSecret('secret')).to.equal(false);
    expect(isWellFormedSecret(`${SECRET_PREFIX}no-such-secret`)).to.equal(false);
    expect(isWellFormedSecret('x'.repeat(10_240))).to.equal(false);
  });
});

describe('hashSecret()', () => {
  it('is the SHA-256 of the secret in lower-case hex', () => {
    const secret = generateClientSecret();
    const hash = hashSecret(secret);
    expect(hash).to.equal(sha256Hex(secret));
    expect(hash).to.match(/^[0-9a-f]{64}$/);
  });

  it('matches the published SHA-256 test vector for "abc"', () => {
    expect(hashSecret('abc')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('never contains the secret', () => {
    const secret = generateClientSecret();
    expect(hashSecret(secret)).to.not.include(secret.slice(SECRET_PREFIX.length, SECRET_PREFIX.length + 8));
  });
});

describe('DUMMY_SECRET_HASH', () => {
  it('is a well-formed SHA-256 hex hash that no generated secret has', () => {
    expect(DUMMY_SECRET_HASH).to.match(/^[0-9a-f]{64}$/);
    expect(DUMMY_SECRET_HASH).to.equal(sha256Hex(`${SECRET_PREFIX}no-such-secret`));
  });
});

describe('matchSecret()', () => {
  const a = generateClientSecret();
  const b = generateClientSecret();
  const c = generateClientSecret();

  it('returns the index of the matching hash', () => {
    const hashes = [hashSecret(a), hashSecret(b), hashSecret(c)];
    expect(matchSecret(a, hashes)).to.equal(0);
    expect(matchSecret(b, hashes)).to.equal(1);
    expect(matchSecret(c, hashes)).to.equal(2);
  });

  it('returns -1 when no hash matches', () => {
    expect(matchSecret(c, [hashSecret(a), hashSecret(b)])).to.equal(-1);
  });

  it('returns -1 for an empty list of hashes', () => {
    expect(matchSecret(a, [])).to.equal(-1);
  });

  it('returns -1 for an empty list even for the dummy hash preimage', () => {
    expect(matchSecret(`${SECRET_PREFIX}no-such-secret`, [])).to.equal(-1);
  });

  it('returns the first index when the same hash is stored twice', () => {
    expect(matchSecret(b, [hashSecret(a), hashSecret(b), hashSecret(b)])).to.equal(1);
  });

  it('does not match a secret differing in one character', () => {
    const changed = `${a.slice(0, 20)}${a[20] === 'A' ? 'B' : 'A'}${a.slice(21)}`;
    expect(matchSecret(changed, [hashSecret(a)])).to.equal(-1);
  });

  it('skips malformed stored hashes without throwing', () => {
    const hashes = ['', 'not-hex', hashSecret(a).slice(0, 63), hashSecret(a).toUpperCase(), hashSecret(a)];
    expect(matchSecret(a, hashes)).to.equal(3);
    expect(matchSecret(b, hashes)).to.equal(-1);
    expect(matchSecret(b, ['', 'zz', 'abc'])).to.equal(-1);
  });

  it('does not match the hash itself presented as the secret', () => {
    expect(matchSecret(hashSecret(a), [hashSecret(a)])).to.equal(-1);
  });
});
