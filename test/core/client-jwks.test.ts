import { createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import {
  applyClientUpdate, normalizeRegistration, type Client, type ClientRegistration,
} from '../../lib/core/client.js';
import { checkClientJwks, checkClientJwksUri, type ClientJwk } from '../../lib/core/client-jwks.js';
import { InvalidOptionError } from '../../lib/core/options.js';
import { ClientAuthMethodError } from '../../lib/errors.js';

const jwkOf = (key: KeyObject, extra: Record<string, unknown> = {}): ClientJwk =>
  ({ ...key.export({ format: 'jwk' }), ...extra }) as ClientJwk;

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ec521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
const RSA_PUBLIC = jwkOf(rsa.publicKey, { kid: 'rsa-1' });
const EC_PUBLIC = jwkOf(ec256.publicKey, { kid: 'ec-1' });

const base: ClientRegistration = { name: 'archiver', scopes: ['reports:read'], audiences: ['https://reports.internal'] };
const GENERATED = '7f0c2d4e-1b2a-4c3d-8e9f-0a1b2c3d4e5f';

/** The InvalidOptionError a call throws, for its option and message. */
function optionError(fn: () => unknown): { option: string; code: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidOptionError).and.instanceOf(TypeError);
    const { option, code, message } = err as InvalidOptionError;
    return { option, code, message };
  }
  throw new Error('expected an InvalidOptionError');
}

describe('checkClientJwks()', () => {
  it('accepts RSA and EC P-256, P-384 and P-521 public keys, as a copy', () => {
    const keys = [RSA_PUBLIC, EC_PUBLIC, jwkOf(ec384.publicKey, { kid: 'ec-2', alg: 'ES384', use: 'sig' }),
      jwkOf(ec521.publicKey, { kid: 'ec-3', x5t: 'kept' })];
    const input = { keys };
    const checked = checkClientJwks(input);
    expect(checked).to.deep.equal(input);
    expect(checked).not.to.equal(input);
    expect(checked.keys[0]).not.to.equal(RSA_PUBLIC);
  });

  it('accepts a single key without a kid', () => {
    const { kid: _kid, ...withoutKid } = EC_PUBLIC;
    expect(checkClientJwks({ keys: [withoutKid] })).to.deep.equal({ keys: [withoutKid] });
  });

  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) {
    it(`refuses a key holding the private member "${member}", naming the key`, () => {
      expect(optionError(() => checkClientJwks({ keys: [EC_PUBLIC, { ...RSA_PUBLIC, [member]: 'AAAA' }] }))).to.deep.equal({
        option: 'jwks.keys[1]', code: 'ERR_M2M_INVALID_OPTION',
        message: `jwks.keys[1] holds private key material (${JSON.stringify(member)}): register public keys only`,
      });
    });
  }

  it('refuses a whole private JWK as Node exports it, without echoing its private members', () => {
    const { message } = optionError(() => checkClientJwks({ keys: [jwkOf(ec256.privateKey)] }));
    expect(message).to.equal('jwks.keys[0] holds private key material ("d"): register public keys only');
    expect(message).not.to.include(String(ec256.privateKey.export({ format: 'jwk' }).d));
  });

  const bad: [string, unknown, string, string][] = [
    ['null', null, 'jwks', 'jwks must be a JWK Set: an object with a "keys" array'],
    ['a bare JWK', EC_PUBLIC, 'jwks', 'jwks must be a JWK Set: an object with a "keys" array'],
    ['an empty set', { keys: [] }, 'jwks', 'jwks must hold 1 to 10 keys'],
    ['eleven keys', { keys: Array.from({ length: 11 }, (_, i) => ({ ...EC_PUBLIC, kid: `k${i}` })) }, 'jwks', 'jwks must hold 1 to 10 keys'],
    ['a set over 20 000 characters', { keys: [{ ...EC_PUBLIC, x5c: ['A'.repeat(20_000)] }] }, 'jwks', 'jwks is larger than 20000 characters as JSON'],
    ['a key that is not an object', { keys: ['key'] }, 'jwks.keys[0]', 'jwks.keys[0] must be a JWK object'],
    ['a symmetric key', { keys: [{ kty: 'oct', kid: 's' }] }, 'jwks.keys[0]', 'jwks.keys[0] must be an RSA or EC public key (kty "RSA" or "EC")'],
    ['an Ed25519 key', { keys: [jwkOf(generateKeyPairSync('ed25519').publicKey)] }, 'jwks.keys[0]',
      'jwks.keys[0] must be an RSA or EC public key (kty "RSA" or "EC")'],
    ['an encryption key', { keys: [{ ...RSA_PUBLIC, use: 'enc' }] }, 'jwks.keys[0]', 'jwks.keys[0] must have use "sig" or no use'],
    ['an empty kid', { keys: [{ ...RSA_PUBLIC, kid: '' }] }, 'jwks.keys[0]', 'jwks.keys[0].kid must be 1 to 128 characters without control characters'],
    ['a numeric kid', { keys: [{ ...RSA_PUBLIC, kid: 7 }] }, 'jwks.keys[0]', 'jwks.keys[0].kid must be 1 to 128 characters without control characters'],
    ['an RSA key without e', { keys: [{ ...RSA_PUBLIC, e: undefined }] }, 'jwks.keys[0]', 'jwks.keys[0].e must be base64url'],
    ['an EC key with padded x', { keys: [{ ...EC_PUBLIC, x: `${String(EC_PUBLIC.x)}=` }] }, 'jwks.keys[0]', 'jwks.keys[0].x must be base64url'],
    ['an EC key on secp256k1', { keys: [{ ...EC_PUBLIC, crv: 'secp256k1' }] }, 'jwks.keys[0]', 'jwks.keys[0].crv must be P-256, P-384 or P-521'],
    ['an EC key whose alg fits another curve', { keys: [{ ...EC_PUBLIC, alg: 'ES384' }] }, 'jwks.keys[0]', 'jwks.keys[0].alg must be ES256 for a P-256 key'],
    ['an RSA key for HS256', { keys: [{ ...RSA_PUBLIC, alg: 'HS256' }] }, 'jwks.keys[0]',
      'jwks.keys[0].alg must be RS256, RS384, RS512, PS256, PS384 or PS512 for an RSA key'],
    ['a 1024-bit RSA key', { keys: [jwkOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)] }, 'jwks.keys[0]',
      'jwks.keys[0] must have a modulus of 2048 to 8192 bits'],
    ['an EC point off its curve', { keys: [{ ...EC_PUBLIC, y: EC_PUBLIC.x }] }, 'jwks.keys[0]', 'jwks.keys[0] is not a usable public key'],
    ['two keys, one without a kid', { keys: [EC_PUBLIC, { ...RSA_PUBLIC, kid: undefined }] }, 'jwks', 'every key of a jwks with several keys needs a kid'],
    ['two keys with one kid', { keys: [EC_PUBLIC, { ...RSA_PUBLIC, kid: 'ec-1' }] }, 'jwks', 'jwks holds the kid "ec-1" more than once'],
  ];
  for (const [what, value, option, message] of bad) {
    it(`refuses ${what} with an InvalidOptionError naming ${option}`, () => {
      expect(optionError(() => checkClientJwks(value))).to.deep.equal({ option, code: 'ERR_M2M_INVALID_OPTION', message });
    });
  }

  it('counts RSA modulus bits exactly: 2048 passes, 2047 does not', () => {
    const n = Buffer.from(String(RSA_PUBLIC.n), 'base64url');
    expect(n.length * 8).to.equal(2048);
    const short = Buffer.concat([Buffer.from([n[0] as number >> 1]), n.subarray(1)]);
    expect(optionError(() => checkClientJwks({ keys: [{ ...RSA_PUBLIC, n: short.toString('base64url') }] })).message)
      .to.equal('jwks.keys[0] must have a modulus of 2048 to 8192 bits');
  });
});

describe('checkClientJwksUri()', () => {
  it('accepts https anywhere and http on loopback hosts', () => {
    for (const uri of ['https://archiver.internal/jwks.json', 'http://localhost:8080/jwks', 'http://127.0.0.1/jwks', 'http://[::1]:9/k?x=1']) {
      expect(checkClientJwksUri(uri)).to.equal(uri);
    }
  });

  const bad: [string, unknown, string][] = [
    ['http off loopback', 'http://archiver.internal/jwks.json', 'jwksUri must use https (http only on localhost, 127.0.0.1 or [::1])'],
    ['another scheme', 'file:///etc/jwks.json', 'jwksUri must use https (http only on localhost, 127.0.0.1 or [::1])'],
    ['a relative URL', '/jwks.json', 'jwksUri must be an absolute URL'],
    ['credentials', 'https://user:pw@archiver.internal/jwks.json', 'jwksUri must hold no credentials and no fragment'],
    ['a fragment', 'https://archiver.internal/jwks.json#keys', 'jwksUri must hold no credentials and no fragment'],
    ['a URL over 2048 characters', `https://archiver.internal/${'a'.repeat(2048)}`, 'jwksUri must be a URL of at most 2048 characters'],
    ['a number', 42, 'jwksUri must be a URL of at most 2048 characters'],
  ];
  for (const [what, value, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(optionError(() => checkClientJwksUri(value))).to.deep.equal({ option: 'jwksUri', code: 'ERR_M2M_INVALID_OPTION', message });
    });
  }
});

describe('normalizeRegistration() and the authentication method', () => {
  it('makes a client registered with jwks a private_key_jwt client', () => {
    const client = normalizeRegistration({ ...base, jwks: { keys: [EC_PUBLIC] } }, GENERATED);
    expect([client.tokenEndpointAuthMethod, client.jwks, client.jwksUri]).to.deep.equal(['private_key_jwt', { keys: [EC_PUBLIC] }, null]);
  });

  it('makes a client registered with a jwksUri a private_key_jwt client', () => {
    const client = normalizeRegistration({ ...base, jwksUri: 'https://archiver.internal/jwks.json', tokenEndpointAuthMethod: 'private_key_jwt' }, GENERATED);
    expect([client.tokenEndpointAuthMethod, client.jwks, client.jwksUri]).to.deep.equal(['private_key_jwt', null, 'https://archiver.internal/jwks.json']);
  });

  it('records a secret method when given, and none (either secret method) when not', () => {
    expect(normalizeRegistration({ ...base, tokenEndpointAuthMethod: 'client_secret_basic' }, GENERATED).tokenEndpointAuthMethod).to.equal('client_secret_basic');
    expect(normalizeRegistration(base, GENERATED).tokenEndpointAuthMethod).to.equal(null);
  });

  const bad: [string, Record<string, unknown>, string, string][] = [
    ['both jwks and jwksUri', { jwks: { keys: [EC_PUBLIC] }, jwksUri: 'https://a.internal/jwks' }, 'jwksUri', 'give jwks or jwksUri, not both'],
    ['private_key_jwt without keys', { tokenEndpointAuthMethod: 'private_key_jwt' }, 'jwks', 'a private_key_jwt client needs jwks or jwksUri'],
    ['keys with a secret method', { tokenEndpointAuthMethod: 'client_secret_post', jwks: { keys: [EC_PUBLIC] } }, 'tokenEndpointAuthMethod',
      'jwks and jwksUri are for private_key_jwt clients, not client_secret_post'],
    ['an unknown method', { tokenEndpointAuthMethod: 'client_secret_jwt' }, 'tokenEndpointAuthMethod',
      'tokenEndpointAuthMethod must be client_secret_basic, client_secret_post or private_key_jwt'],
    ['a null jwks', { jwks: null }, 'jwks', 'jwks must be a JWK Set: an object with a "keys" array'],
  ];
  for (const [what, fields, option, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(optionError(() => normalizeRegistration({ ...base, ...fields } as ClientRegistration, GENERATED)))
        .to.deep.equal({ option, code: 'ERR_M2M_INVALID_OPTION', message });
    });
  }
});

describe('applyClientUpdate() and the authentication method', () => {
  const created = { createdAt: new Date(0), updatedAt: new Date(0) };
  const keyed: Client = { ...normalizeRegistration({ ...base, clientId: 'archiver', jwks: { keys: [EC_PUBLIC] } }, GENERATED), ...created };
  const secret: Client = { ...normalizeRegistration({ ...base, clientId: 'reporter' }, GENERATED), ...created };

  it('replaces the keys of a private_key_jwt client, several at once', () => {
    const next = applyClientUpdate(keyed, { jwks: { keys: [EC_PUBLIC, RSA_PUBLIC] } });
    expect([next.tokenEndpointAuthMethod, next.jwks, next.jwksUri]).to.deep.equal(['private_key_jwt', { keys: [EC_PUBLIC, RSA_PUBLIC] }, null]);
  });

  it('moves a private_key_jwt client from jwks to a jwksUri and back', () => {
    const remote = applyClientUpdate(keyed, { jwksUri: 'https://archiver.internal/jwks.json' });
    expect([remote.jwks, remote.jwksUri]).to.deep.equal([null, 'https://archiver.internal/jwks.json']);
    const local = applyClientUpdate({ ...remote, ...created }, { jwks: { keys: [RSA_PUBLIC] } });
    expect([local.jwks, local.jwksUri]).to.deep.equal([{ keys: [RSA_PUBLIC] }, null]);
  });

  it('keeps the method and keys when the update names neither, or names the same method', () => {
    const next = applyClientUpdate(keyed, { name: 'renamed', tokenEndpointAuthMethod: 'private_key_jwt' });
    expect([next.name, next.tokenEndpointAuthMethod, next.jwks]).to.deep.equal(['renamed', 'private_key_jwt', { keys: [EC_PUBLIC] }]);
  });

  it('refuses keys for a client that authenticates with a secret with ClientAuthMethodError', () => {
    const err = rejection(() => applyClientUpdate(secret, { jwks: { keys: [EC_PUBLIC] } }));
    expect([err.code, err.clientId, err.method, err.message]).to.deep.equal(['ERR_M2M_CLIENT_AUTH_METHOD', 'reporter', null,
      'client "reporter": only a private_key_jwt client has jwks or a jwksUri; this one authenticates with a secret']);
  });

  it('refuses to change the method with ClientAuthMethodError', () => {
    const err = rejection(() => applyClientUpdate(keyed, { tokenEndpointAuthMethod: 'client_secret_basic' }));
    expect([err.code, err.method, err.message]).to.deep.equal(['ERR_M2M_CLIENT_AUTH_METHOD', 'private_key_jwt',
      'client "archiver": tokenEndpointAuthMethod is fixed at registration: register a new client to change it']);
  });

  it('refuses a private key in an update, naming the key', () => {
    const { d } = ec256.privateKey.export({ format: 'jwk' }) as JsonWebKey;
    expect(optionError(() => applyClientUpdate(keyed, { jwks: { keys: [{ ...EC_PUBLIC, d }] } })).option).to.equal('jwks.keys[0]');
  });

  function rejection(fn: () => unknown): ClientAuthMethodError {
    try {
      fn();
    } catch (err) {
      expect(err).to.be.instanceOf(ClientAuthMethodError);
      return err as ClientAuthMethodError;
    }
    throw new Error('expected a ClientAuthMethodError');
  }
});

describe('the registered keys', () => {
  it('are what Node makes of the same JWK', () => {
    const checked = checkClientJwks({ keys: [EC_PUBLIC] });
    expect(createPublicKey({ key: checked.keys[0] as JsonWebKey, format: 'jwk' }).equals(ec256.publicKey)).to.equal(true);
  });
});
