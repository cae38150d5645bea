import { expect } from 'chai';
import {
  applyClientUpdate, isClientId, normalizeRegistration, type Client, type ClientRegistration, type ClientUpdate,
} from '../../lib/core/client.js';
import { RESERVED_CLAIMS } from '../../lib/core/token.js';

const GENERATED = '7f0c2d4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f';
const TEN_KB = 'x'.repeat(10_240);

const base: ClientRegistration = {
  name: 'nightly-report',
  scopes: ['reports:read', 'reports:write'],
  audiences: ['https://reports.internal', 'https://archive.internal'],
};

/** The registration with one field replaced, bypassing the types to reach the runtime checks. */
const withField = (name: string, value: unknown): ClientRegistration =>
  ({ ...base, [name]: value }) as unknown as ClientRegistration;

const CREATED = new Date(Date.UTC(2026, 0, 1));

function client(overrides: Partial<Client> = {}): Client {
  return {
    clientId: 'svc-a',
    name: 'service a',
    scopes: ['a', 'b', 'c'],
    defaultScopes: ['a', 'b'],
    audiences: ['https://one.internal', 'https://two.internal'],
    defaultAudience: 'https://two.internal',
    tokenLifetime: 300,
    grantTypes: ['client_credentials'],
    enabled: true,
    claims: { tenant: 'acme' },
    tokenEndpointAuthMethod: null,
    jwks: null,
    jwksUri: null,
    createdAt: CREATED,
    updatedAt: CREATED,
    ...overrides,
  };
}

describe('isClientId()', () => {
  it('accepts 1 to 128 printable ASCII characters', () => {
    expect(isClientId('a')).to.equal(true);
    expect(isClientId('x'.repeat(128))).to.equal(true);
    expect(isClientId("x'OR'1'='1")).to.equal(true);
    expect(isClientId('!~')).to.equal(true);
  });

  it('rejects empty, over-long, spaced, control, non-ASCII and non-string values', () => {
    for (const value of ['', 'x'.repeat(129), 'a b', 'a\tb', 'a\x00', 'a\x7f', 'é', '読', TEN_KB, 42, null, undefined, ['a']]) {
      expect(isClientId(value), JSON.stringify(value)?.slice(0, 20)).to.equal(false);
    }
  });
});

describe('normalizeRegistration()', () => {
  it('fills in every default', () => {
    expect(normalizeRegistration(base, GENERATED)).to.deep.equal({
      clientId: GENERATED,
      name: 'nightly-report',
      scopes: ['reports:read', 'reports:write'],
      defaultScopes: ['reports:read', 'reports:write'],
      audiences: ['https://reports.internal', 'https://archive.internal'],
      defaultAudience: 'https://reports.internal',
      tokenLifetime: null,
      grantTypes: ['client_credentials'],
      enabled: true,
      claims: {},
      tokenEndpointAuthMethod: null,
      jwks: null,
      jwksUri: null,
    });
  });

  it('keeps every field given', () => {
    const input: ClientRegistration = {
      clientId: 'svc-reports',
      name: 'Reports ✓',
      scopes: ['a', 'b'],
      defaultScopes: ['b'],
      audiences: ['https://one.internal', 'urn:example:two'],
      defaultAudience: 'urn:example:two',
      tokenLifetime: 86400,
      grantTypes: ['client_credentials'],
      enabled: false,
      claims: { tenant: 'acme', nested: { list: [1, 'two', null], flag: true } },
      tokenEndpointAuthMethod: 'client_secret_post',
    };
    expect(normalizeRegistration(input, GENERATED)).to.deep.equal({
      clientId: 'svc-reports',
      name: 'Reports ✓',
      scopes: ['a', 'b'],
      defaultScopes: ['b'],
      audiences: ['https://one.internal', 'urn:example:two'],
      defaultAudience: 'urn:example:two',
      tokenLifetime: 86400,
      grantTypes: ['client_credentials'],
      enabled: false,
      claims: { tenant: 'acme', nested: { list: [1, 'two', null], flag: true } },
      tokenEndpointAuthMethod: 'client_secret_post',
      jwks: null,
      jwksUri: null,
    });
  });

  it('keeps a null defaultAudience', () => {
    expect(normalizeRegistration({ ...base, defaultAudience: null }, GENERATED).defaultAudience).to.equal(null);
  });

  it('accepts empty scopes and defaultScopes', () => {
    const result = normalizeRegistration({ ...base, scopes: [] }, GENERATED);
    expect(result.scopes).to.deep.equal([]);
    expect(result.defaultScopes).to.deep.equal([]);
  });

  it('removes duplicate scopes, default scopes and audiences', () => {
    const result = normalizeRegistration({
      ...base, scopes: ['a', 'b', 'a'], defaultScopes: ['b', 'b'], audiences: ['https://x', 'https://x', 'https://y'],
    }, GENERATED);
    expect(result.scopes).to.deep.equal(['a', 'b']);
    expect(result.defaultScopes).to.deep.equal(['b']);
    expect(result.audiences).to.deep.equal(['https://x', 'https://y']);
  });

  it('copies claims so later changes to the input do not leak in', () => {
    const claims = { tenant: { id: 'acme' } };
    const result = normalizeRegistration({ ...base, claims }, GENERATED);
    claims.tenant.id = 'changed';
    expect(result.claims).to.deep.equal({ tenant: { id: 'acme' } });
  });

  it('rejects a registration that is not an object with a TypeError', () => {
    expect(() => normalizeRegistration(null as unknown as ClientRegistration, GENERATED)).to.throw(TypeError);
    expect(() => normalizeRegistration('x' as unknown as ClientRegistration, GENERATED)).to.throw(TypeError);
  });

  describe('rejects with a TypeError', () => {
    const cases: readonly [string, string, unknown, string | RegExp][] = [
      ['an empty clientId', 'clientId', '', /clientId/],
      ['a clientId with a space', 'clientId', 'svc a', /clientId/],
      ['a clientId of 129 characters', 'clientId', 'x'.repeat(129), /clientId/],
      ['a 10 kB clientId', 'clientId', TEN_KB, /clientId/],
      ['a non-ASCII clientId', 'clientId', 'sérvice', /clientId/],
      ['a clientId with a control character', 'clientId', 'svc\n', /clientId/],
      ['a numeric clientId', 'clientId', 42, /clientId/],
      ['an empty name', 'name', '', /^name/],
      ['a name of 201 characters', 'name', 'n'.repeat(201), /^name/],
      ['a 10 kB name', 'name', TEN_KB, /^name/],
      ['a name with a line feed', 'name', 'a\nb', /^name/],
      ['a name with NUL', 'name', 'a\x00b', /^name/],
      ['a missing name', 'name', undefined, /^name/],
      ['scopes that are a string', 'scopes', 'a b', /^scopes/],
      ['a scope with a space', 'scopes', ['a b'], /^scopes/],
      ['a scope with a double quote', 'scopes', ['a"b'], /^scopes/],
      ['a scope with a backslash', 'scopes', ['a\\b'], /^scopes/],
      ['a scope with a control character', 'scopes', ['a\x01b'], /^scopes/],
      ['a scope with DEL', 'scopes', ['a\x7fb'], /^scopes/],
      ['a scope with unicode', 'scopes', ['lecture:données'], /^scopes/],
      ['an empty scope', 'scopes', [''], /^scopes/],
      ['a 10 kB scope', 'scopes', [TEN_KB], /^scopes/],
      ['a malformed default scope', 'defaultScopes', ['a b'], /^defaultScopes/],
      ['a default scope not among the scopes', 'defaultScopes', ['admin'], /default scope "admin"/],
      ['empty audiences', 'audiences', [], /^audiences/],
      ['missing audiences', 'audiences', undefined, /^audiences/],
      ['audiences that are a string', 'audiences', 'https://x', /^audiences/],
      ['51 audiences', 'audiences', Array.from({ length: 51 }, (_, i) => `https://a${i}`), /^audiences/],
      ['an empty audience', 'audiences', [''], /audience/],
      ['an audience with a control character', 'audiences', ['https://x\r\n'], /audience/],
      ['an audience of 513 characters', 'audiences', [`https://${'a'.repeat(505)}`], /audience/],
      ['a 10 kB audience', 'audiences', [TEN_KB], /audience/],
      ['a non-string audience', 'audiences', [42], /audience/],
      ['a defaultAudience not among the audiences', 'defaultAudience', 'https://elsewhere', /defaultAudience/],
      ['a 10 kB defaultAudience', 'defaultAudience', TEN_KB, /defaultAudience/],
      ['an empty defaultAudience', 'defaultAudience', '', /defaultAudience/],
      ['a tokenLifetime of 0', 'tokenLifetime', 0, /tokenLifetime/],
      ['a negative tokenLifetime', 'tokenLifetime', -60, /tokenLifetime/],
      ['a tokenLifetime of 86401', 'tokenLifetime', 86401, /tokenLifetime/],
      ['a fractional tokenLifetime', 'tokenLifetime', 1.5, /tokenLifetime/],
      ['a string tokenLifetime', 'tokenLifetime', '300', /tokenLifetime/],
      ['a NaN tokenLifetime', 'tokenLifetime', Number.NaN, /tokenLifetime/],
      ['an Infinity tokenLifetime', 'tokenLifetime', Number.POSITIVE_INFINITY, /tokenLifetime/],
      ['another grant type', 'grantTypes', ['authorization_code'], /grantTypes/],
      ['grantTypes that are a string', 'grantTypes', 'client_credentials', /grantTypes/],
      ['a string enabled', 'enabled', 'true', /enabled/],
      ['a numeric enabled', 'enabled', 1, /enabled/],
      ['claims that are an array', 'claims', ['a'], /claims/],
      ['claims that are null', 'claims', null, /claims/],
      ['claims that are a string', 'claims', '{}', /claims/],
      ['claims larger than 4 kB', 'claims', { blob: 'x'.repeat(4096) }, /claims/],
      ['10 kB claims', 'claims', { blob: TEN_KB }, /claims/],
    ];
    for (const [label, field, value, message] of cases) {
      it(`for ${label}`, () => {
        expect(() => normalizeRegistration(withField(field, value), GENERATED)).to.throw(TypeError, message);
      });
    }

    for (const name of RESERVED_CLAIMS) {
      it(`for the reserved claim name ${name}`, () => {
        expect(() => normalizeRegistration({ ...base, claims: { ok: 1, [name]: 'x' } }, GENERATED))
          .to.throw(TypeError, `claims may not set the reserved claim ${JSON.stringify(name)}`);
      });
    }

    it('for a generated id that is not a client id', () => {
      expect(() => normalizeRegistration(base, 'not valid')).to.throw(TypeError, /clientId/);
    });
  });

  it('covers at least the RFC 9068 and JWT registered claim names as reserved', () => {
    for (const name of ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'cnf', 'act']) {
      expect(RESERVED_CLAIMS.has(name), name).to.equal(true);
    }
  });

  it('accepts claims of exactly 4096 bytes of JSON', () => {
    const claims = { blob: 'x'.repeat(4096 - '{"blob":""}'.length) };
    expect(JSON.stringify(claims)).to.have.length(4096);
    expect(normalizeRegistration({ ...base, claims }, GENERATED).claims).to.deep.equal(claims);
  });

  it('accepts a name of exactly 200 characters and an audience of exactly 512', () => {
    const audience = `https://${'a'.repeat(504)}`;
    const result = normalizeRegistration({ ...base, name: 'n'.repeat(200), audiences: [audience] }, GENERATED);
    expect(result.name).to.have.length(200);
    expect(result.defaultAudience).to.equal(audience);
  });
});

describe('applyClientUpdate()', () => {
  const unchanged = (c: Client): Omit<Client, 'createdAt' | 'updatedAt'> => {
    const { createdAt: _c, updatedAt: _u, ...rest } = c;
    return rest;
  };

  it('changes nothing for an empty update', () => {
    const current = client();
    expect(applyClientUpdate(current, {})).to.deep.equal(unchanged(current));
  });

  it('changes each field given and keeps the rest', () => {
    const current = client();
    const update: ClientUpdate = {
      name: 'renamed',
      scopes: ['a', 'd'],
      defaultScopes: ['d'],
      audiences: ['https://three.internal'],
      defaultAudience: 'https://three.internal',
      tokenLifetime: null,
      enabled: false,
      claims: { region: 'eu' },
    };
    expect(applyClientUpdate(current, update)).to.deep.equal({
      clientId: 'svc-a',
      name: 'renamed',
      scopes: ['a', 'd'],
      defaultScopes: ['d'],
      audiences: ['https://three.internal'],
      defaultAudience: 'https://three.internal',
      tokenLifetime: null,
      grantTypes: ['client_credentials'],
      enabled: false,
      claims: { region: 'eu' },
      tokenEndpointAuthMethod: null,
      jwks: null,
      jwksUri: null,
    });
  });

  it('never changes the client id', () => {
    const update = { clientId: 'other', name: 'x' } as unknown as ClientUpdate;
    expect(applyClientUpdate(client(), update).clientId).to.equal('svc-a');
  });

  it('drops default scopes that are no longer among the scopes', () => {
    expect(applyClientUpdate(client(), { scopes: ['b', 'c'] }).defaultScopes).to.deep.equal(['b']);
  });

  it('clears the default audience when it is no longer among the audiences', () => {
    expect(applyClientUpdate(client(), { audiences: ['https://one.internal'] }).defaultAudience).to.equal(null);
  });

  it('keeps the default audience when it is still among the audiences', () => {
    expect(applyClientUpdate(client(), { audiences: ['https://two.internal', 'https://x'] }).defaultAudience)
      .to.equal('https://two.internal');
  });

  it('sets the default audience to null on request', () => {
    expect(applyClientUpdate(client(), { defaultAudience: null }).defaultAudience).to.equal(null);
  });

  it('does not modify the client it is given', () => {
    const current = client();
    const copy = structuredClone(current);
    applyClientUpdate(current, { scopes: ['z'], audiences: ['https://z'], claims: { x: 1 }, enabled: false });
    expect(current).to.deep.equal(copy);
  });

  it('rejects an update that is not an object with a TypeError', () => {
    expect(() => applyClientUpdate(client(), null as unknown as ClientUpdate)).to.throw(TypeError);
  });

  describe('rejects with a TypeError', () => {
    const cases: readonly [string, ClientUpdate, string | RegExp][] = [
      ['an empty name', { name: '' }, /^name/],
      ['a 10 kB name', { name: TEN_KB }, /^name/],
      ['a scope with a space', { scopes: ['a', 'b c'] }, /^scopes/],
      ['a scope with unicode', { scopes: ['ü'] }, /^scopes/],
      ['empty audiences', { audiences: [] }, /^audiences/],
      ['a 10 kB audience', { audiences: [TEN_KB] }, /audience/],
      ['a default scope not among the scopes', { defaultScopes: ['z'] }, /default scope "z"/],
      ['default scopes not among new scopes', { scopes: ['x'], defaultScopes: ['a'] }, /default scope "a"/],
      ['a default audience not among the audiences', { defaultAudience: 'https://z' }, /defaultAudience/],
      ['a tokenLifetime of 0', { tokenLifetime: 0 }, /tokenLifetime/],
      ['a tokenLifetime over a day', { tokenLifetime: 86401 }, /tokenLifetime/],
      ['a string enabled', { enabled: 'no' as unknown as boolean }, /enabled/],
      ['another grant type', { grantTypes: ['password' as 'client_credentials'] }, /grantTypes/],
      ['a reserved claim', { claims: { sub: 'admin' } }, /reserved claim "sub"/],
      ['10 kB claims', { claims: { blob: TEN_KB } }, /claims/],
    ];
    for (const [label, update, message] of cases) {
      it(`for ${label}`, () => {
        expect(() => applyClientUpdate(client(), update)).to.throw(TypeError, message);
      });
    }
  });
});
