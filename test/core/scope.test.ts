import { expect } from 'chai';
import { InvalidScopeError } from '../../lib/errors.js';
import {
  formatScope, isScopeToken, MAX_SCOPE_LENGTH, MAX_SCOPE_TOKEN_LENGTH, normalizeScopes, parseScope,
} from '../../lib/core/scope.js';

/** Every character RFC 6749 §3.3 allows in a scope token: %x21 / %x23-5B / %x5D-7E. */
const ALLOWED = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i))
  .filter((c) => c !== '"' && c !== '\\')
  .join('');

/** Characters outside the §3.3 set, each with a label for the test title. */
const FORBIDDEN: readonly [string, string][] = [
  ['a double quote', '"'],
  ['a backslash', '\\'],
  ['NUL', '\x00'],
  ['a tab', '\t'],
  ['a line feed', '\n'],
  ['a carriage return', '\r'],
  ['DEL', '\x7f'],
  ['a C1 control character', '\x85'],
  ['a no-break space', '\u00a0'],
  ['a Latin-1 letter', 'é'],
  ['a CJK character', '読'],
  ['an emoji', '\u{1F511}'],
  ['a line separator', '\u2028'],
];

function expectInvalidScope(fn: () => unknown, description: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).to.be.instanceOf(InvalidScopeError);
  const err = caught as InvalidScopeError;
  expect(err.status).to.equal(400);
  expect(err.toJSON()).to.deep.equal({ error: 'invalid_scope', error_description: description });
}

describe('parseScope()', () => {
  it('splits a space-delimited scope into tokens in first-seen order', () => {
    expect(parseScope('reports:read reports:write admin')).to.deep.equal(['reports:read', 'reports:write', 'admin']);
  });

  it('accepts every character RFC 6749 §3.3 allows in one token', () => {
    expect(ALLOWED).to.have.length(92);
    expect(parseScope(ALLOWED)).to.deep.equal([ALLOWED]);
  });

  it('removes duplicate tokens, keeping the first occurrence', () => {
    expect(parseScope('b a b c a')).to.deep.equal(['b', 'a', 'c']);
  });

  it('ignores leading, trailing and repeated spaces', () => {
    expect(parseScope('  a   b ')).to.deep.equal(['a', 'b']);
  });

  it('treats tokens as case-sensitive', () => {
    expect(parseScope('Read read READ')).to.deep.equal(['Read', 'read', 'READ']);
  });

  for (const [label, char] of FORBIDDEN) {
    it(`rejects a token holding ${label} with invalid_scope`, () => {
      expectInvalidScope(() => parseScope(`ok bad${char}token`), 'scope holds a malformed scope token');
    });
  }

  it('rejects a tab used as a separator with invalid_scope', () => {
    expectInvalidScope(() => parseScope('a\tb'), 'scope holds a malformed scope token');
  });

  it('rejects an empty scope with invalid_scope', () => {
    expectInvalidScope(() => parseScope(''), 'scope is empty');
  });

  it('rejects a scope of spaces only with invalid_scope', () => {
    expectInvalidScope(() => parseScope('   '), 'scope is empty');
  });

  it(`accepts a scope of exactly ${MAX_SCOPE_LENGTH} characters`, () => {
    // Eight tokens of 127 characters and seven spaces make 1023; one more character makes 1024.
    const tokens = Array.from({ length: 8 }, (_, i) => String(i).repeat(i === 7 ? 128 : 127));
    const exact = tokens.join(' ');
    expect(exact).to.have.length(MAX_SCOPE_LENGTH);
    expect(parseScope(exact)).to.deep.equal(tokens);
  });

  it(`rejects a scope longer than ${MAX_SCOPE_LENGTH} characters with invalid_scope`, () => {
    const value = Array.from({ length: 300 }, (_, i) => `s${i}`).join(' ').slice(0, MAX_SCOPE_LENGTH + 1);
    expect(value).to.have.length(MAX_SCOPE_LENGTH + 1);
    expectInvalidScope(() => parseScope(value), `scope is longer than ${MAX_SCOPE_LENGTH} characters`);
  });

  it('rejects a 10 kB scope with invalid_scope', () => {
    expectInvalidScope(() => parseScope('a'.repeat(10_240)), `scope is longer than ${MAX_SCOPE_LENGTH} characters`);
  });

  it(`accepts a token of exactly ${MAX_SCOPE_TOKEN_LENGTH} characters`, () => {
    const token = 't'.repeat(MAX_SCOPE_TOKEN_LENGTH);
    expect(parseScope(token)).to.deep.equal([token]);
  });

  it(`rejects a token longer than ${MAX_SCOPE_TOKEN_LENGTH} characters with invalid_scope`, () => {
    expectInvalidScope(() => parseScope(`a ${'t'.repeat(MAX_SCOPE_TOKEN_LENGTH + 1)}`), 'scope holds a malformed scope token');
  });
});

describe('isScopeToken()', () => {
  it('accepts a token of allowed characters', () => {
    expect(isScopeToken('reports:read')).to.equal(true);
    expect(isScopeToken(ALLOWED)).to.equal(true);
  });

  it('rejects the empty string', () => {
    expect(isScopeToken('')).to.equal(false);
  });

  it('rejects a space', () => {
    expect(isScopeToken('a b')).to.equal(false);
  });

  for (const [label, char] of FORBIDDEN) {
    it(`rejects ${label}`, () => {
      expect(isScopeToken(`a${char}`)).to.equal(false);
    });
  }

  it(`rejects a token longer than ${MAX_SCOPE_TOKEN_LENGTH} characters`, () => {
    expect(isScopeToken('t'.repeat(MAX_SCOPE_TOKEN_LENGTH))).to.equal(true);
    expect(isScopeToken('t'.repeat(MAX_SCOPE_TOKEN_LENGTH + 1))).to.equal(false);
  });
});

describe('normalizeScopes()', () => {
  it('returns the tokens deduplicated in first-seen order', () => {
    expect(normalizeScopes(['b', 'a', 'b'], 'scopes')).to.deep.equal(['b', 'a']);
  });

  it('accepts an empty list', () => {
    expect(normalizeScopes([], 'scopes')).to.deep.equal([]);
  });

  it('rejects a value that is not an array with a TypeError naming the field', () => {
    expect(() => normalizeScopes('a b' as unknown as string[], 'defaultScopes'))
      .to.throw(TypeError, 'defaultScopes must be an array of scope tokens');
  });

  it('rejects a token holding a space with a TypeError naming the field', () => {
    expect(() => normalizeScopes(['ok', 'a b'], 'scopes')).to.throw(TypeError, 'scopes holds a malformed scope token: "a b"');
  });

  it('rejects a non-string entry with a TypeError', () => {
    expect(() => normalizeScopes(['ok', 42 as unknown as string], 'scopes')).to.throw(TypeError, 'scopes holds a malformed scope token: "42"');
  });

  it('rejects an empty token with a TypeError', () => {
    expect(() => normalizeScopes([''], 'scopes')).to.throw(TypeError, 'scopes holds a malformed scope token');
  });

  it('quotes at most 40 characters of a bad token in the message', () => {
    let message = '';
    try {
      normalizeScopes([`"${'x'.repeat(10_000)}`], 'scopes');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.equal(`scopes holds a malformed scope token: ${JSON.stringify(`"${'x'.repeat(39)}`)}`);
  });
});

describe('formatScope()', () => {
  it('joins tokens with single spaces', () => {
    expect(formatScope(['a', 'b:c', 'd'])).to.equal('a b:c d');
  });

  it('formats an empty list as the empty string', () => {
    expect(formatScope([])).to.equal('');
  });

  it('round-trips through parseScope()', () => {
    const scopes = ['reports:read', 'x!#$%&()*+,-./:;<=>?@[]^_`{|}~'];
    expect(parseScope(formatScope(scopes))).to.deep.equal(scopes);
  });
});
