import { expect } from 'chai';
import {
  errorClasses, InsufficientScopeError, isOAuthError, OAuthError, sanitizeDescription, TemporarilyUnavailableError,
  type OAuthErrorCode,
} from '../lib/index.js';

const table: [OAuthErrorCode, number, string][] = [
  ['invalid_request', 400, 'InvalidRequestError'],
  ['invalid_client', 401, 'InvalidClientError'],
  ['invalid_grant', 400, 'InvalidGrantError'],
  ['unauthorized_client', 400, 'UnauthorizedClientError'],
  ['unsupported_grant_type', 400, 'UnsupportedGrantTypeError'],
  ['invalid_scope', 400, 'InvalidScopeError'],
  ['invalid_target', 400, 'InvalidTargetError'],
  ['invalid_token', 401, 'InvalidTokenError'],
  ['insufficient_scope', 403, 'InsufficientScopeError'],
  ['server_error', 500, 'ServerError'],
  ['temporarily_unavailable', 503, 'TemporarilyUnavailableError'],
];

describe('errors', () => {
  it('has one class for every code in the table, and no other', () => {
    expect(Object.keys(errorClasses).sort()).to.deep.equal(table.map(([code]) => code).sort());
  });

  for (const [code, status, name] of table) {
    describe(name, () => {
      const make = (description: string, options?: ConstructorParameters<typeof OAuthError>[3]) => {
        const Class = errorClasses[code] as unknown as new (d: string, a: unknown, o?: unknown) => OAuthError;
        return code === 'insufficient_scope' ? new Class(description, ['a'], options) : new Class(description, options);
      };

      it(`has code "${code}", status ${status} and name ${name}`, () => {
        const err = make('something is off');
        expect(err).to.be.instanceOf(OAuthError).and.instanceOf(Error);
        expect(isOAuthError(err)).to.equal(true);
        expect([err.code, err.status, err.name, err.message, err.description]).to.deep.equal(
          [code, status, name, 'something is off', 'something is off']);
        expect(err.headers).to.deep.equal({});
      });

      it('renders RFC 6749 §5.2 JSON', () => {
        expect(JSON.parse(JSON.stringify(make('why')))).to.deep.equal({ error: code, error_description: 'why' });
      });

      it('keeps a cause without rendering it, and takes status and header overrides', () => {
        const cause = new Error('select * from secrets');
        const err = make('failed', { cause, status: 429, headers: { 'Retry-After': '3' } });
        expect(err.cause).to.equal(cause);
        expect([err.status, err.headers]).to.deep.equal([429, { 'Retry-After': '3' }]);
        expect(JSON.stringify(err)).not.to.include('select');
      });
    });
  }

  it('keeps the required scopes on InsufficientScopeError', () => {
    expect(new InsufficientScopeError('missing', ['reports:read', 'reports:write']).scopes).to.deep.equal(['reports:read', 'reports:write']);
  });

  it('is not fooled by a look-alike object', () => {
    expect(isOAuthError({ code: 'invalid_request', status: 400 })).to.equal(false);
  });

  describe('sanitizeDescription()', () => {
    it('drops quotes, backslashes, CR, LF and non-ASCII, as RFC 6749 §5.2 allows', () => {
      expect(sanitizeDescription('a "b"\\c\r\nd\u00e9\u0000e')).to.equal('a bcde');
    });

    it('cuts text to 200 characters', () => {
      expect(sanitizeDescription('x'.repeat(10_000))).to.have.length(200);
    });

    it('is applied by the constructor, so a header built from it stays well formed', () => {
      const err = new TemporarilyUnavailableError('bad "value"\r\nSet-Cookie: x');
      expect(err.description).to.equal('bad valueSet-Cookie: x');
    });
  });
});
