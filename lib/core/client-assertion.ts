import jwt from 'jsonwebtoken';
import { InvalidTokenError } from '../errors.js';
import { isClientId, type Client } from './client.js';
import type { ClientKeys } from './client-keys.js';
import { jwtWorker } from './jwt-worker.js';
import type { UsedAssertionStore } from './store.js';
import type { AsymmetricAlgorithm, VerificationKey } from './verify.js';

/** The only `client_assertion_type` of RFC 7523 §2.2. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Longest `client_assertion` looked at, in characters: an RSA-8192 signature and generous claims fit. */
export const MAX_ASSERTION_LENGTH = 3072;

/** Longest `jti` accepted, in characters. */
const MAX_JTI_LENGTH = 256;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Why a client assertion was refused. Private detail for events and logs: the client is told
 * `invalid_client`, whatever the reason.
 *
 * - `malformed_credentials`: not a compact JWS of JSON objects, or longer than {@link MAX_ASSERTION_LENGTH}
 * - `invalid_assertion`: an algorithm not allowed, `iss` not `sub`, a wrong `aud`, `exp` missing or
 *   too far ahead, no `jti`, a bad signature...
 * - `expired_assertion`: `exp` has passed
 * - `unknown_key`: no key of the client matches the assertion's `kid`
 * - `replayed_assertion`: the client used this `jti` before
 * - `method_not_allowed`: the client does not authenticate with `private_key_jwt`
 * - `unknown_client`, `client_disabled`: as for a secret
 */
export type AssertionFailure =
  | 'malformed_credentials' | 'invalid_assertion' | 'expired_assertion' | 'unknown_key' | 'replayed_assertion'
  | 'method_not_allowed' | 'unknown_client' | 'client_disabled';

/** The outcome of checking a client assertion; `detail` says why it was refused, never holding the assertion. */
export type AssertionOutcome =
  | { ok: true; client: Client }
  | { ok: false; reason: AssertionFailure; detail: string };

/** What the issuer accepts in a client assertion. */
export interface AssertionRules {
  /** Accepted `alg` values, asymmetric only. */
  algorithms: readonly AsymmetricAlgorithm[];
  /** Longest time from now to `exp`, in seconds. */
  maxLifetime: number;
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. */
  clockTolerance: number;
}

/** Options of {@link createAssertionVerifier}. */
export interface AssertionVerifierOptions extends AssertionRules {
  /** Accepted `aud` values: the issuer identifier and the token endpoint URL (RFC 7523 §3 item 3). */
  audiences: readonly string[];
  /** Finds a registered client by id. */
  findClient(clientId: string): Promise<Client | undefined>;
  /** Where used `jti`s are recorded. */
  usedAssertions: UsedAssertionStore;
  /** The clients' public keys. */
  keys: ClientKeys;
  /** Current time in milliseconds since the epoch. */
  clock: () => number;
}

/** A refusal on its way to becoming an {@link AssertionOutcome}. */
class Refusal extends Error {
  constructor(readonly reason: AssertionFailure, readonly detail: string) {
    super(detail);
  }
}

const refuse = (reason: AssertionFailure, detail: string): never => {
  throw new Refusal(reason, detail);
};

interface Decoded {
  alg: AsymmetricAlgorithm;
  kid: string | undefined;
  payload: Record<string, unknown>;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * The `sub` of a client assertion, unverified, when it is a well-formed assertion whose `sub` is a
 * client id: what a token request claims to be, for the `client_id` check and the failure
 * counters. Nothing is trusted from it.
 */
export function readAssertionSubject(assertion: string): string | undefined {
  if (assertion.length > MAX_ASSERTION_LENGTH || !COMPACT_JWS.test(assertion)) return undefined;
  try {
    const payload = jwt.decode(assertion, { json: true });
    return isClientId(payload?.sub) ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the assertion apart (jsonwebtoken's `decode`) and checks its header, before any lookup. */
function decode(assertion: string, algorithms: readonly string[]): Decoded {
  if (assertion.length > MAX_ASSERTION_LENGTH) refuse('malformed_credentials', `the client assertion is longer than ${MAX_ASSERTION_LENGTH} characters`);
  if (!COMPACT_JWS.test(assertion)) refuse('malformed_credentials', 'the client assertion is not a signed JWT in compact form');
  let decoded: jwt.Jwt | null = null;
  try {
    decoded = jwt.decode(assertion, { complete: true });
  } catch {
    // Left null: refused below.
  }
  if (decoded === null || !isObject(decoded.header) || !isObject(decoded.payload)) {
    return refuse('malformed_credentials', 'the client assertion header or claims are not JSON objects');
  }
  const { alg, kid, crit } = decoded.header as unknown as Record<string, unknown>;
  // RFC 8725 §3.1: an allow-list, never none nor HS* (a client's public key is no HMAC secret).
  if (typeof alg !== 'string' || !algorithms.includes(alg)) refuse('invalid_assertion', 'the client assertion signing algorithm is not accepted');
  if (crit !== undefined) refuse('invalid_assertion', 'the client assertion header has critical extensions');
  if (kid !== undefined && (typeof kid !== 'string' || kid === '' || kid.length > 128)) refuse('malformed_credentials', 'the client assertion kid is malformed');
  return { alg: alg as AsymmetricAlgorithm, kid: kid as string | undefined, payload: decoded.payload };
}

const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

function checkTimes(payload: Record<string, unknown>, now: number, rules: AssertionRules): number {
  const tolerance = rules.clockTolerance * 1000;
  const { exp, nbf, iat } = payload;
  if (!isTime(exp)) return refuse('invalid_assertion', 'the client assertion has no exp');
  if (now >= exp * 1000 + tolerance) refuse('expired_assertion', 'the client assertion has expired');
  // A long-lived assertion is a reusable credential: RFC 7523 §3 item 4 lets servers bound it.
  if (exp * 1000 > now + rules.maxLifetime * 1000 + tolerance) {
    refuse('invalid_assertion', `the client assertion expires more than ${rules.maxLifetime} seconds ahead`);
  }
  if (nbf !== undefined && (!isTime(nbf) || nbf * 1000 > now + tolerance)) refuse('invalid_assertion', 'the client assertion is not valid yet');
  if (iat !== undefined && (!isTime(iat) || iat * 1000 > now + tolerance)) refuse('invalid_assertion', 'the client assertion was issued in the future');
  return exp;
}

/**
 * The claims RFC 7523 §3 asks for, checked before any lookup: `iss` = `sub` = a client id, `aud`
 * one of `audiences`, `exp` present, not past and at most `maxLifetime` ahead, `nbf` and `iat`
 * not in the future, and a `jti`.
 */
function checkClaims(payload: Record<string, unknown>, now: number, rules: AssertionRules, audiences: readonly string[]) {
  const { iss, sub, aud, jti } = payload;
  if (!isClientId(sub)) return refuse('invalid_assertion', 'the client assertion sub is not a client id');
  if (iss !== sub) refuse('invalid_assertion', 'the client assertion iss differs from its sub');
  const audOk = typeof aud === 'string' ? audiences.includes(aud)
    : Array.isArray(aud) && aud.some((a) => typeof a === 'string' && audiences.includes(a));
  if (!audOk) refuse('invalid_assertion', 'the client assertion aud is neither the issuer nor its token endpoint');
  const exp = checkTimes(payload, now, rules);
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) {
    return refuse('invalid_assertion', `the client assertion has no jti of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  return { clientId: sub, jti, exp };
}

/** The refusal for an error of jsonwebtoken's `verify`. */
function signatureRefusal(err: Error): Refusal {
  if (err.name === 'TokenExpiredError') return new Refusal('expired_assertion', 'the client assertion has expired');
  if (err.name === 'NotBeforeError') return new Refusal('invalid_assertion', 'the client assertion is not valid yet');
  if (err.name === 'JsonWebTokenError') {
    return new Refusal('invalid_assertion', err.message === 'invalid signature'
      ? 'the client assertion signature is invalid' : `jsonwebtoken refused the client assertion: ${err.message.slice(0, 120)}`);
  }
  // jsonwebtoken's check that the key fits the algorithm throws a plain Error.
  return new Refusal('invalid_assertion', 'the client assertion algorithm does not fit its key');
}

/**
 * Creates the verifier of `private_key_jwt` client assertions (RFC 7523 §2.2 and §3, RFC 7521
 * §4.2): cheap refusals first (the header, the claims, the client and its method), then the key
 * (the registered set or the client's `jwks_uri`, see {@link ClientKeys}), then jsonwebtoken's
 * `verify` in the JWT worker thread (signature, algorithm allow-list, `aud`, `iss`, `sub`,
 * `exp`, `nbf` with the clock tolerance), and last the `jti`, recorded until the assertion
 * expires so that it authenticates once, on any instance sharing the store.
 *
 * @returns A function that checks one assertion. It rejects (the token endpoint answers 503) when
 *   the store fails or the client's `jwks_uri` cannot be read: the assertion may be good.
 */
export function createAssertionVerifier(options: AssertionVerifierOptions): (assertion: string) => Promise<AssertionOutcome> {
  const { audiences, algorithms, findClient, usedAssertions, keys, clock } = options;
  const worker = jwtWorker();
  const verifyOptions = { algorithms: [...algorithms], audience: [...audiences] as [string, ...string[]], clockTolerance: options.clockTolerance };
  // Each key belongs to one client: its worker registration binds iss and sub to that client.
  const registered = new WeakMap<VerificationKey, { clientId: string; id: number }>();

  function checkSignature(clientId: string, key: VerificationKey, assertion: string, now: number): Promise<void> {
    let known = registered.get(key);
    if (known?.clientId !== clientId) {
      known = { clientId, id: worker.addKey({ key: key.key, verify: { ...verifyOptions, issuer: clientId, subject: clientId } }, key) };
      registered.set(key, known);
    }
    return worker.verify(known.id, assertion, now).catch((err: unknown) => { throw signatureRefusal(err as Error); });
  }

  async function keyFor(client: Client, decoded: Decoded): Promise<VerificationKey> {
    let key: VerificationKey;
    try {
      key = await keys.getKey(client, decoded.kid, decoded.alg);
    } catch (err) {
      // The registered set and the jwks_uri key source word it differently: one wording here.
      if (err instanceof InvalidTokenError) {
        refuse('unknown_key', decoded.kid === undefined ? 'the assertion names no key and the client has several' : 'no key of the client matches the assertion kid');
      }
      throw err;
    }
    // RFC 7517 §4.4: a key that names its algorithm is used with that one only.
    if (key.alg !== undefined && key.alg !== decoded.alg) refuse('invalid_assertion', 'the client assertion algorithm does not match its key');
    return key;
  }

  async function check(assertion: string): Promise<Client> {
    const now = clock();
    const decoded = decode(assertion, algorithms);
    const { clientId, jti, exp } = checkClaims(decoded.payload, now, options, audiences);
    const client = await findClient(clientId);
    if (client === undefined) return refuse('unknown_client', 'no client has the id the assertion names');
    if (client.tokenEndpointAuthMethod !== 'private_key_jwt') refuse('method_not_allowed', `the client authenticates with ${client.tokenEndpointAuthMethod ?? 'a secret'}, not private_key_jwt`);
    await checkSignature(clientId, await keyFor(client, decoded), assertion, now);
    // After the signature, as for a secret: only the client itself learns that it is disabled.
    if (!client.enabled) refuse('client_disabled', 'the client is disabled');
    // Kept as long as jsonwebtoken would accept the assertion: until exp plus the tolerance.
    const first = await usedAssertions.markUsed(clientId, jti, new Date((exp + options.clockTolerance) * 1000));
    if (!first) refuse('replayed_assertion', 'the client assertion jti was used before');
    return client;
  }

  return async function verifyAssertion(assertion) {
    try {
      return { ok: true, client: await check(assertion) };
    } catch (err) {
      if (err instanceof Refusal) return { ok: false, reason: err.reason, detail: err.detail };
      throw err;
    }
  };
}
