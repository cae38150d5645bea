import { expect } from 'chai';
import type { Client } from '../../lib/core/client.js';
import { resolveAudience, resolveScopes } from '../../lib/core/grant.js';
import {
  InvalidRequestError, InvalidScopeError, InvalidTargetError, type OAuthError, type OAuthErrorCode,
} from '../../lib/errors.js';

const CREATED = new Date(Date.UTC(2026, 0, 1));

function client(overrides: Partial<Client> = {}): Client {
  return {
    clientId: 'svc-a',
    name: 'service a',
    scopes: ['reports:read', 'reports:write', 'admin'],
    defaultScopes: ['reports:read'],
    audiences: ['https://reports.internal', 'https://archive.internal/api', 'urn:example:billing', 'billing'],
    defaultAudience: 'https://reports.internal',
    tokenLifetime: null,
    grantTypes: ['client_credentials'],
    enabled: true,
    claims: {},
    tokenEndpointAuthMethod: null,
    jwks: null,
    jwksUri: null,
    createdAt: CREATED,
    updatedAt: CREATED,
    ...overrides,
  };
}

function expectOAuthError(
  fn: () => unknown, type: abstract new (...args: never[]) => OAuthError, code: OAuthErrorCode, description: string,
): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).to.be.instanceOf(type);
  const err = caught as OAuthError;
  expect(err.status).to.equal(400);
  expect(err.toJSON()).to.deep.equal({ error: code, error_description: description });
}

const EXCEEDS = 'the requested scope exceeds the scope granted to the client';

describe('resolveScopes()', () => {
  for (const policy of ['reject', 'downscope'] as const) {
    describe(`with the "${policy}" policy`, () => {
      it('grants the default scopes when no scope is requested', () => {
        expect(resolveScopes(client({ defaultScopes: ['reports:read', 'admin'] }), undefined, policy))
          .to.deep.equal(['reports:read', 'admin']);
      });

      it('rejects a request without scope with invalid_scope when the client has no default scope', () => {
        expectOAuthError(() => resolveScopes(client({ defaultScopes: [] }), undefined, policy), InvalidScopeError,
          'invalid_scope', 'no scope was requested and the client has no default scope');
      });

      it('grants exactly the requested scopes when all are allowed, in request order', () => {
        expect(resolveScopes(client(), 'admin reports:read', policy)).to.deep.equal(['admin', 'reports:read']);
      });

      it('grants a scope outside the defaults when it is allowed', () => {
        expect(resolveScopes(client(), 'reports:write', policy)).to.deep.equal(['reports:write']);
      });

      it('removes duplicates from the request', () => {
        expect(resolveScopes(client(), 'admin admin reports:read admin', policy)).to.deep.equal(['admin', 'reports:read']);
      });

      it('rejects a request of only unknown scopes with invalid_scope', () => {
        expectOAuthError(() => resolveScopes(client(), 'payroll:read', policy), InvalidScopeError, 'invalid_scope', EXCEEDS);
      });

      it('rejects an empty scope with invalid_scope', () => {
        expectOAuthError(() => resolveScopes(client(), '', policy), InvalidScopeError, 'invalid_scope', 'scope is empty');
      });

      it('rejects a malformed scope with invalid_scope', () => {
        expectOAuthError(() => resolveScopes(client(), 'reports:read "admin"', policy), InvalidScopeError, 'invalid_scope',
          'scope holds a malformed scope token');
      });

      if (policy === 'reject') {
        it('rejects a request holding one scope beyond the allowed ones with invalid_scope', () => {
          expectOAuthError(() => resolveScopes(client(), 'reports:read payroll:read', policy), InvalidScopeError,
            'invalid_scope', EXCEEDS);
        });
      } else {
        it('grants the allowed part of the request, in request order', () => {
          expect(resolveScopes(client(), 'payroll:read admin x reports:read', policy)).to.deep.equal(['admin', 'reports:read']);
        });
      }

      it('never matches a scope by prefix or substring', () => {
        expectOAuthError(() => resolveScopes(client(), 'reports', policy), InvalidScopeError, 'invalid_scope', EXCEEDS);
        expectOAuthError(() => resolveScopes(client(), 'reports:read:all', policy), InvalidScopeError, 'invalid_scope', EXCEEDS);
        expectOAuthError(() => resolveScopes(client(), 'ADMIN', policy), InvalidScopeError, 'invalid_scope', EXCEEDS);
      });
    });
  }
});

describe('resolveAudience()', () => {
  it('gives the default audience when neither resource nor audience is requested', () => {
    expect(resolveAudience(client(), [], undefined)).to.deep.equal(['https://reports.internal']);
  });

  it('rejects a request without target with invalid_target when the client has no default audience', () => {
    expectOAuthError(() => resolveAudience(client({ defaultAudience: null }), [], undefined), InvalidTargetError,
      'invalid_target', 'no resource or audience was requested and the client has no default audience');
  });

  it('rejects both resource and audience with invalid_request', () => {
    expectOAuthError(() => resolveAudience(client(), ['https://reports.internal'], 'https://reports.internal'),
      InvalidRequestError, 'invalid_request', 'use either resource or audience, not both');
  });

  describe('with "audience"', () => {
    it('gives the requested audience when it is allowed', () => {
      expect(resolveAudience(client(), [], 'https://archive.internal/api')).to.deep.equal(['https://archive.internal/api']);
    });

    it('accepts an allowed audience that is not a URI', () => {
      expect(resolveAudience(client(), [], 'billing')).to.deep.equal(['billing']);
    });

    it('rejects an audience the client may not have with invalid_target', () => {
      expectOAuthError(() => resolveAudience(client(), [], 'https://payroll.internal'), InvalidTargetError,
        'invalid_target', 'the requested resource or audience is not allowed for this client');
    });

    it('rejects an empty audience with invalid_target', () => {
      expectOAuthError(() => resolveAudience(client(), [], ''), InvalidTargetError,
        'invalid_target', 'the requested resource or audience is not allowed for this client');
    });

    it('never matches an audience by prefix', () => {
      expectOAuthError(() => resolveAudience(client(), [], 'https://reports.internal/'), InvalidTargetError,
        'invalid_target', 'the requested resource or audience is not allowed for this client');
      expectOAuthError(() => resolveAudience(client(), [], 'https://archive.internal'), InvalidTargetError,
        'invalid_target', 'the requested resource or audience is not allowed for this client');
    });
  });

  describe('with "resource"', () => {
    it('gives the requested resource when it is allowed', () => {
      expect(resolveAudience(client(), ['https://archive.internal/api'], undefined)).to.deep.equal(['https://archive.internal/api']);
    });

    it('gives every requested resource, deduplicated, in request order', () => {
      expect(resolveAudience(client(), [
        'urn:example:billing', 'https://reports.internal', 'urn:example:billing',
      ], undefined)).to.deep.equal(['urn:example:billing', 'https://reports.internal']);
    });

    it('accepts an absolute URN', () => {
      expect(resolveAudience(client(), ['urn:example:billing'], undefined)).to.deep.equal(['urn:example:billing']);
    });

    it('rejects a relative reference with invalid_target', () => {
      expectOAuthError(() => resolveAudience(client(), ['billing'], undefined), InvalidTargetError,
        'invalid_target', 'resource must be an absolute URI without a fragment');
      expectOAuthError(() => resolveAudience(client(), ['/reports'], undefined), InvalidTargetError,
        'invalid_target', 'resource must be an absolute URI without a fragment');
    });

    it('rejects a URI with a fragment with invalid_target', () => {
      expectOAuthError(() => resolveAudience(client({ audiences: ['https://reports.internal#x'] }), ['https://reports.internal#x'], undefined),
        InvalidTargetError, 'invalid_target', 'resource must be an absolute URI without a fragment');
      expectOAuthError(() => resolveAudience(client(), ['https://reports.internal#'], undefined),
        InvalidTargetError, 'invalid_target', 'resource must be an absolute URI without a fragment');
    });

    it('rejects a resource with whitespace or control characters, even one registered so, with invalid_target', () => {
      // The URL parser would encode the space and drop the tab and newline, so a parse alone passes them.
      const spaced = client({ audiences: ['https://reports.internal/a b'] });
      for (const value of ['https://reports.internal/a b', 'https://reports.internal\t', 'https://reports.internal\n', ' https://reports.internal']) {
        expectOAuthError(() => resolveAudience(spaced, [value], undefined), InvalidTargetError,
          'invalid_target', 'resource must be an absolute URI without a fragment');
      }
    });

    it('rejects an empty resource with invalid_target', () => {
      expectOAuthError(() => resolveAudience(client(), [''], undefined), InvalidTargetError,
        'invalid_target', 'resource must be an absolute URI without a fragment');
    });

    it('rejects a 10 kB resource with invalid_target', () => {
      expectOAuthError(() => resolveAudience(client(), [`https://x/${'a'.repeat(10_240)}`], undefined), InvalidTargetError,
        'invalid_target', 'resource must be an absolute URI without a fragment');
    });

    it('rejects the whole request when one of several resources is not allowed', () => {
      expectOAuthError(() => resolveAudience(client(), ['https://reports.internal', 'https://payroll.internal'], undefined),
        InvalidTargetError, 'invalid_target', 'the requested resource or audience is not allowed for this client');
    });

    it('rejects more than 10 resources with invalid_target', () => {
      const many = Array.from({ length: 11 }, () => 'https://reports.internal');
      expectOAuthError(() => resolveAudience(client(), many, undefined), InvalidTargetError,
        'invalid_target', 'at most 10 resource parameters are accepted');
    });

    it('accepts 10 resources', () => {
      const ten = Array.from({ length: 10 }, () => 'https://reports.internal');
      expect(resolveAudience(client(), ten, undefined)).to.deep.equal(['https://reports.internal']);
    });
  });
});
