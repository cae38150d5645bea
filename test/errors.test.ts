import { expect } from 'chai';
import {
  ClientAuthMethodError, ClientExistsError, ClientNotFoundError, errorClasses, InsufficientScopeError, InvalidRequestError, isOAuthError,
  KeyDecryptionError, KeyMismatchError, M2MError, PlaintextKeyError, OAuthError, RegistrationNotFoundError, sanitizeDescription, TemporarilyUnavailableError,
  TokenCacheError, TokenRequestError, TokenRequiredError, UnsupportedKeyError, type M2MErrorCode, type OAuthErrorCode,
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
        expect(err).to.be.instanceOf(OAuthError).and.instanceOf(M2MError).and.instanceOf(Error);
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

  it('keeps invalid_token as the code of TokenRequiredError', () => {
    const err = new TokenRequiredError('an access token is required');
    expect([err.code, err.status, err.name, isOAuthError(err)]).to.deep.equal(['invalid_token', 401, 'TokenRequiredError', true]);
  });

  describe('isOAuthError()', () => {
    /** An OAuthError as another copy of express-m2m (a second node_modules install) builds it. */
    class OtherCopyOAuthError extends Error {
      readonly headers: Record<string, string> = {};
      readonly description: string;
      constructor(readonly code: string, readonly status: number, description: string) {
        super(description);
        this.name = 'InvalidScopeError';
        this.description = description;
      }
      toJSON() {
        return { error: this.code, error_description: this.description };
      }
    }

    it('recognises an OAuthError of another copy of the package by its code, status and headers', () => {
      const err = new OtherCopyOAuthError('invalid_scope', 400, 'the requested scope exceeds the scope granted to the client');
      expect(err).to.not.be.instanceOf(OAuthError);
      expect(isOAuthError(err)).to.equal(true);
      if (!isOAuthError(err)) return;
      expect([err.code, err.status, err.headers, err.description]).to.deep.equal(
        ['invalid_scope', 400, {}, 'the requested scope exceeds the scope granted to the client']);
    });

    it('recognises every OAuth code from another copy', () => {
      for (const [code, status] of table) expect(isOAuthError(new OtherCopyOAuthError(code, status, 'x')), code).to.equal(true);
    });

    it('does not recognise errors with other codes, without status or headers, or objects that are not errors', () => {
      const withFields = (code: unknown, fields: Record<string, unknown> = { status: 400, headers: {}, description: 'x' }) =>
        Object.assign(new Error('x'), { code, ...fields });
      const others: [string, unknown][] = [
        ['a plain Error', new Error('invalid_request')],
        ['a TypeError', new TypeError('issuer is required')],
        ["Node's ECONNRESET", withFields('ECONNRESET')],
        ["PostgreSQL's unique_violation", withFields('23505')],
        ['an unknown OAuth-like code', withFields('access_denied')],
        ['a code in another case', withFields('INVALID_REQUEST')],
        ["this package's ERR_M2M_ code", withFields('ERR_M2M_CLIENT_EXISTS')],
        ['ClientExistsError', new ClientExistsError('svc')],
        ['TokenRequestError (it has a status)', new TokenRequestError('failed', {
          reason: 'oauth_error', tokenUrl: 'https://a.example/token', clientId: 'c', status: 400, error: 'invalid_scope', retryable: false })],
        ['an OAuth code without status', withFields('invalid_request', { headers: {}, description: 'x' })],
        ['an OAuth code with a string status', withFields('invalid_request', { status: '400', headers: {}, description: 'x' })],
        ['an OAuth code without headers', withFields('invalid_request', { status: 400, description: 'x' })],
        ['an OAuth code with null headers', withFields('invalid_request', { status: 400, headers: null, description: 'x' })],
        ['an OAuth code without description', withFields('invalid_request', { status: 400, headers: {} })],
        ['a look-alike object that is not an Error', { code: 'invalid_request', status: 400, headers: {}, description: 'x' }],
        ['a look-alike without headers', { code: 'invalid_request', status: 400 }],
        ['a string', 'invalid_request'],
        ['null', null],
        ['undefined', undefined],
      ];
      for (const [label, value] of others) expect(isOAuthError(value), label).to.equal(false);
    });

    it('recognises this copy\'s errors by instanceof', () => {
      expect(isOAuthError(new InvalidRequestError('x'))).to.equal(true);
    });
  });

  describe('errors that are not OAuth errors', () => {
    const cause = new Error('driver detail');
    // Typed by the union, so that a code added to M2MErrorCode without a case here fails to compile.
    const classNames: Record<M2MErrorCode, string> = {
      ERR_M2M_CLIENT_NOT_FOUND: 'ClientNotFoundError',
      ERR_M2M_CLIENT_EXISTS: 'ClientExistsError',
      ERR_M2M_CLIENT_AUTH_METHOD: 'ClientAuthMethodError',
      ERR_M2M_KEY_DECRYPTION: 'KeyDecryptionError',
      ERR_M2M_KEY_UNSUPPORTED: 'UnsupportedKeyError',
      ERR_M2M_KEY_PLAINTEXT: 'PlaintextKeyError',
      ERR_M2M_KEY_MISMATCH: 'KeyMismatchError',
      ERR_M2M_TOKEN_REQUEST: 'TokenRequestError',
      ERR_M2M_TOKEN_CACHE: 'TokenCacheError',
      ERR_M2M_REGISTRATION_NOT_FOUND: 'RegistrationNotFoundError',
    };
    const cases: [M2MErrorCode, string, M2MError, string][] = [
      ['ERR_M2M_CLIENT_NOT_FOUND', 'ClientNotFoundError', new ClientNotFoundError('svc', { cause }), 'no client with id "svc"'],
      ['ERR_M2M_CLIENT_EXISTS', 'ClientExistsError', new ClientExistsError('svc', { cause }), 'a client with id "svc" already exists'],
      ['ERR_M2M_CLIENT_AUTH_METHOD', 'ClientAuthMethodError', new ClientAuthMethodError('svc', 'private_key_jwt', 'it has no secret'),
        'client "svc": it has no secret'],
      ['ERR_M2M_KEY_DECRYPTION', 'KeyDecryptionError', new KeyDecryptionError('signing key k1 could not be decrypted', 'k1', { cause }),
        'signing key k1 could not be decrypted'],
      ['ERR_M2M_KEY_UNSUPPORTED', 'UnsupportedKeyError', new UnsupportedKeyError('k1', { cause }), 'stored key k1 has an unsupported algorithm'],
      ['ERR_M2M_KEY_PLAINTEXT', 'PlaintextKeyError', new PlaintextKeyError('no plain text here'), 'no plain text here'],
      ['ERR_M2M_KEY_MISMATCH', 'KeyMismatchError', new KeyMismatchError('k1'),
        'the private key stored for k1 does not match its public key: it is not used to sign'],
      ['ERR_M2M_TOKEN_REQUEST', 'TokenRequestError', new TokenRequestError('the token endpoint could not be reached', {
        reason: 'network_error', tokenUrl: 'https://a.example/token', clientId: 'c', retryable: true, cause }),
      'the token endpoint could not be reached'],
      ['ERR_M2M_TOKEN_CACHE', 'TokenCacheError', new TokenCacheError('the token cache could not read an entry', { cause }),
        'the token cache could not read an entry'],
      ['ERR_M2M_REGISTRATION_NOT_FOUND', 'RegistrationNotFoundError', new RegistrationNotFoundError('billing'),
        'no token client is registered as "billing"'],
    ];

    for (const [code, name, err, message] of cases) {
      it(`${name} has code ${code}, its name, its message and its cause`, () => {
        expect(err).to.be.instanceOf(M2MError).and.instanceOf(Error).and.not.instanceOf(OAuthError).and.not.instanceOf(TypeError);
        const withoutCause = err instanceof RegistrationNotFoundError || err instanceof PlaintextKeyError || err instanceof KeyMismatchError
          || err instanceof ClientAuthMethodError;
        const expectedCause = withoutCause ? undefined : cause;
        expect([err.code, err.name, err.message, err.cause]).to.deep.equal([code, name, message, expectedCause]);
        expect(isOAuthError(err)).to.equal(false);
      });
    }

    it('has one class for every ERR_M2M_ code', () => {
      expect(cases.map(([code, name]) => [code, name])).to.have.deep.members(Object.entries(classNames));
      expect(cases).to.have.length(Object.keys(classNames).length);
    });

    it('keeps the ids they are about', () => {
      expect(new ClientNotFoundError('x'.repeat(300)).clientId).to.have.length(128);
      expect(new ClientExistsError('svc').clientId).to.equal('svc');
      expect([new ClientAuthMethodError('svc', null, 'm').clientId, new ClientAuthMethodError('svc', null, 'm').method]).to.deep.equal(['svc', null]);
      expect(new KeyDecryptionError('m', 'k1').kid).to.equal('k1');
      expect(new UnsupportedKeyError('k2').kid).to.equal('k2');
      expect(new RegistrationNotFoundError('billing').registration).to.equal('billing');
    });
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
