import type { Request, RequestHandler, Response } from 'express';
import { Passport } from 'passport';
import { Strategy as PassportStrategy } from 'passport-strategy';
import { Strategy as ClientPasswordStrategy } from 'passport-oauth2-client-password';
import { CLIENT_ASSERTION_TYPE, readAssertionSubject } from '../core/client-assertion.js';
import type { Client } from '../core/client.js';
import type { AuthenticationFailure, ClientStore } from '../core/store.js';
import { InvalidClientError, InvalidRequestError } from '../errors.js';
import type { ClientAuthFailure, ClientAuthMethod, ClientAuthOutcome } from './client-auth-outcome.js';
import { PrivateKeyJwtStrategy, type VerifyAssertion } from './private-key-jwt.js';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A client id and secret from an Authorization header, decoded. */
export interface BasicCredentials {
  clientId: string;
  clientSecret: string;
}

/** Decodes one half of a Basic credential: RFC 6749 §2.3.1 form-urlencodes id and secret before base64. */
function formDecode(value: string): string {
  // Nothing to decode in the common case; decodeURIComponent would return the same string.
  if (!value.includes('%') && !value.includes('+')) return value;
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    throw new InvalidRequestError('client credentials in the Authorization header are not properly form-urlencoded');
  }
}

/**
 * Parses `Authorization: Basic ...` into a client id and secret.
 *
 * @throws {@link InvalidRequestError} for a malformed header: not base64, no colon, an empty part,
 *   or bad percent-encoding.
 */
export function parseBasicCredentials(header: string): BasicCredentials {
  const match = /^Basic +(\S+) *$/i.exec(header.trim());
  const encoded = match?.[1];
  if (encoded === undefined || encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw new InvalidRequestError('the Basic authorization header is not valid base64');
  }
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw new InvalidRequestError('the Basic authorization header holds no colon between client id and secret');
  const clientId = formDecode(decoded.slice(0, colon));
  const clientSecret = formDecode(decoded.slice(colon + 1));
  if (clientId === '' || clientSecret === '') {
    throw new InvalidRequestError('the Basic authorization header has an empty client id or secret');
  }
  return { clientId, clientSecret };
}

type Done = (err: unknown, client?: Client | false, info?: { reason: AuthenticationFailure }) => void;
type Verify = (clientId: string, clientSecret: string, done: Done) => void;

/**
 * Passport strategy for client_secret_basic with RFC 6749 §2.3.1 decoding: the client id and
 * secret are form-urlencoded before base64 (passport-http's BasicStrategy does not decode them, so
 * ids and secrets holding `%2D` or `+` would fail). A malformed header never reaches it: the
 * token endpoint refuses it with 400 first ({@link detectClientCredentials}).
 */
export class ClientSecretBasicStrategy extends PassportStrategy {
  name = 'client_secret_basic';
  constructor(private readonly verify: Verify) {
    super();
  }
  override authenticate(req: Request): void {
    let credentials: BasicCredentials;
    try {
      credentials = parseBasicCredentials(req.headers.authorization ?? '');
    } catch {
      this.fail({ reason: 'malformed_credentials' }, 401);
      return;
    }
    this.verify(credentials.clientId, credentials.clientSecret, (err, client, info) => {
      if (err) this.error(err as Error);
      else if (!client) this.fail(info ?? { reason: 'invalid_secret' }, 401);
      else this.success(client);
    });
  }
}

type Settle = (err: unknown, client?: Client | false, info?: { reason?: ClientAuthFailure; detail?: string }) => void;

/** The outcome of a client that passed its strategy: refused when it was registered with another method. */
function checkMethod(client: Client, method: ClientAuthMethod, clientId: string | undefined): ClientAuthOutcome {
  const registered = client.tokenEndpointAuthMethod;
  // A null method predates recorded methods: either secret method, as before.
  const allowed = registered === null ? method !== 'private_key_jwt' : registered === method;
  if (allowed) return { ok: true, client, method };
  return { ok: false, method, clientId, reason: 'method_not_allowed', detail: `the client authenticates with ${registered ?? 'a secret'}, not ${method}` };
}

/**
 * Creates the client authenticator: a private Passport instance (never the host's global one)
 * with one strategy per method: {@link ClientSecretBasicStrategy}, passport-oauth2-client-
 * password's for client_secret_post and, given `verifyAssertion`, {@link PrivateKeyJwtStrategy}.
 * Each request runs `passport.authenticate(method, { session: false }, callback)` for the one
 * method it uses, found first by {@link detectClientCredentials}; a client registered with another
 * method is then refused (`method_not_allowed`).
 *
 * @param clients - The client store that checks secrets.
 * @param verifyAssertion - Checks `private_key_jwt` assertions; without it that method is refused
 *   as `unsupported_method`.
 */
export function createClientAuthenticator(
  clients: ClientStore, verifyAssertion?: VerifyAssertion,
): (req: Request, res: Response, presented: PresentedCredentials) => Promise<ClientAuthOutcome> {
  const passport = new Passport();
  if (verifyAssertion) passport.use(new PrivateKeyJwtStrategy(verifyAssertion));
  const verify: Verify = (clientId, clientSecret, done) => {
    clients.authenticate(clientId, clientSecret).then(
      (result) => (result.ok ? done(null, result.client) : done(null, false, { reason: result.reason })),
      (err: unknown) => done(err),
    );
  };
  passport.use(new ClientSecretBasicStrategy(verify));
  // passport-oauth2-client-password reads client_id and client_secret from req.body and fails
  // without a reason of its own; the store's reason is kept per request.
  const reasons = new WeakMap<Request, AuthenticationFailure>();
  passport.use('client_secret_post', new ClientPasswordStrategy({ passReqToCallback: true }, (req: Request, id: string, secret: string, done: Done) => {
    verify(id, secret, (err, client, info) => {
      if (info) reasons.set(req, info.reason);
      done(err, client);
    });
  }));

  return function authenticateClient(req, res, presented) {
    const { method, clientId } = presented;
    if (method === undefined) {
      return Promise.resolve({ ok: false, method: undefined, clientId, reason: presented.reason });
    }
    if (method === 'private_key_jwt' && !verifyAssertion) {
      return Promise.resolve({ ok: false, method, clientId, reason: 'unsupported_method', detail: 'this issuer has no store for used assertions' });
    }
    return new Promise((resolve, reject) => {
      const settle: Settle = (err, client, info) => {
        if (err) reject(err);
        else if (client) resolve(checkMethod(client, method, clientId));
        else {
          const reason = info?.reason ?? reasons.get(req) ?? 'invalid_secret';
          resolve({ ok: false, method, clientId, reason, ...(info?.detail === undefined ? {} : { detail: info.detail }) });
        }
      };
      // Neither strategy passes or redirects; passport would then call next().
      const next = (err?: unknown): void => reject(err ?? new Error(`the ${method} strategy passed without deciding`));
      (passport.authenticate(method, { session: false }, settle) as RequestHandler)(req, res, next);
    });
  };
}

/** Which authentication method a request uses, and the client id it claims (for an assertion, its unverified `sub`). */
export type PresentedCredentials =
  | ({ method: 'client_secret_basic' } & BasicCredentials)
  | { method: 'client_secret_post'; clientId: string; clientSecret: string }
  | { method: 'private_key_jwt'; clientId: string | undefined }
  | { method: undefined; clientId: string | undefined; reason: 'no_credentials' | 'unsupported_method' };

/** The client-authentication parameters of a token request's body, each present at most once. */
export interface BodyCredentials {
  clientId: string | undefined;
  clientSecret: string | undefined;
  clientAssertion?: string | undefined;
  clientAssertionType?: string | undefined;
}

const mixedMethods = (first: string, second: string): InvalidRequestError =>
  new InvalidRequestError(`client authentication must use exactly one method, not both ${first} and ${second}`);

/** RFC 7521 §4.2: both assertion parameters, and a `client_id`, if any, naming the assertion's subject. */
function detectAssertion(body: BodyCredentials): PresentedCredentials {
  const { clientAssertion: assertion, clientAssertionType: type, clientId: bodyId } = body;
  if (assertion === undefined) throw new InvalidRequestError('client_assertion_type was sent without client_assertion');
  if (type === undefined) throw new InvalidRequestError('client_assertion was sent without client_assertion_type');
  const subject = readAssertionSubject(assertion);
  if (bodyId !== undefined && subject !== undefined && bodyId !== subject) {
    throw new InvalidRequestError('client_id in the body differs from the sub of the client assertion');
  }
  const clientId = subject ?? bodyId;
  if (type !== CLIENT_ASSERTION_TYPE) return { method: undefined, clientId, reason: 'unsupported_method' };
  return { method: 'private_key_jwt', clientId };
}

/**
 * Finds the one client authentication method a token request uses (RFC 6749 §2.3: exactly one).
 *
 * @param authorization - The request's Authorization header, if any.
 * @param body - `client_id`, `client_secret`, `client_assertion` and `client_assertion_type` from
 *   the request body.
 * @throws {@link InvalidRequestError} when the request uses more than one of the Authorization
 *   header, `client_secret` and `client_assertion`; when the body's `client_id` differs from the
 *   header's or from the assertion's `sub`; when only one of the two assertion parameters is
 *   sent; or when the Basic header is malformed.
 */
export function detectClientCredentials(authorization: string | undefined, body: BodyCredentials): PresentedCredentials {
  const header = authorization;
  const bodyId = body.clientId;
  const assertion = body.clientAssertion !== undefined || body.clientAssertionType !== undefined;
  if (header !== undefined) {
    if (body.clientSecret !== undefined) throw mixedMethods('the Authorization header', 'client_secret');
    if (assertion) throw mixedMethods('the Authorization header', 'client_assertion');
    if (!/^Basic(\s|$)/i.test(header)) return { method: undefined, clientId: bodyId, reason: 'unsupported_method' };
    const parsed = parseBasicCredentials(header);
    if (bodyId !== undefined && bodyId !== parsed.clientId) {
      throw new InvalidRequestError('client_id in the body differs from the client id in the Authorization header');
    }
    return { method: 'client_secret_basic', clientId: parsed.clientId, clientSecret: parsed.clientSecret };
  }
  if (assertion) {
    if (body.clientSecret !== undefined) throw mixedMethods('client_secret', 'client_assertion');
    return detectAssertion(body);
  }
  if (body.clientSecret !== undefined && bodyId !== undefined) return { method: 'client_secret_post', clientId: bodyId, clientSecret: body.clientSecret };
  return { method: undefined, clientId: bodyId, reason: 'no_credentials' };
}

/** The error answered for every failed client authentication: one text, whatever the reason. */
export function clientAuthenticationError(method: ClientAuthMethod | undefined, realm: string): InvalidClientError {
  // RFC 6749 §5.2: 401 with a WWW-Authenticate challenge when the client tried the Authorization
  // header; offering Basic also helps a client that sent no credentials at all. A client that
  // authenticated in the body (a secret or an assertion) gets none.
  const body = method === 'client_secret_post' || method === 'private_key_jwt';
  const headers: Record<string, string> = body ? {} : { 'WWW-Authenticate': `Basic realm="${realm}"` };
  return new InvalidClientError('client authentication failed', { headers });
}
