import type { Request } from 'express';
import { Passport } from 'passport';
import { Strategy as PassportStrategy } from 'passport-strategy';
import { Strategy as ClientPasswordStrategy } from 'passport-oauth2-client-password';
import type { Client } from '../core/client.js';
import type { AuthenticationFailure, ClientStore } from '../core/store.js';
import { InvalidClientError, InvalidRequestError } from '../errors.js';

/** Client authentication methods of RFC 6749 §2.3.1 (and, later, RFC 7523). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** Why a client failed to authenticate, including failures before any lookup. */
export type ClientAuthFailure = AuthenticationFailure | 'no_credentials' | 'unsupported_method';

/** Outcome of {@link authenticateClient}. */
export type ClientAuthOutcome =
  | { ok: true; client: Client; method: ClientAuthMethod }
  | { ok: false; method: ClientAuthMethod | undefined; clientId: string | undefined; reason: ClientAuthFailure };

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

type Verify = (req: Request, clientId: string, clientSecret: string,
  done: (err: unknown, client?: Client | false, info?: { reason: AuthenticationFailure }) => void) => void;

/**
 * Passport strategy for client_secret_basic with RFC 6749 §2.3.1 decoding (passport-http's
 * BasicStrategy does not form-decode, so ids and secrets holding `%2D` or `+` would fail). The
 * header was already parsed by {@link detectClientCredentials}; the strategy takes that result
 * rather than parsing it twice.
 */
class ClientBasicStrategy extends PassportStrategy {
  name = 'client_secret_basic';
  constructor(private readonly verify: Verify, private readonly parsed: WeakMap<Request, BasicCredentials>) {
    super();
  }
  override authenticate(req: Request): void {
    const credentials = this.parsed.get(req);
    if (credentials === undefined) {
      this.fail({ reason: 'malformed_credentials' }, 401);
      return;
    }
    this.verify(req, credentials.clientId, credentials.clientSecret, (err, client, info) => {
      if (err) this.error(err as Error);
      else if (!client) this.fail(info ?? { reason: 'invalid_secret' }, 401);
      else this.success(client, info);
    });
  }
}

/** What a strategy's success, fail and error settle: one request's outcome. */
type Settle = (outcome: ClientAuthOutcome) => void;

/**
 * Runs one registered strategy for one request exactly as `passport.authenticate(name, { session:
 * false }, callback)` does for a single strategy: the strategy's `authenticate` runs with `this` an
 * object whose prototype is the strategy, carrying `success`, `fail`, `error`, `pass` and
 * `redirect`. passport builds that object, its five closures and a middleware closure on every
 * request, and adds six properties (`req.logIn` and its family) to the request, each a slow
 * property addition on an IncomingMessage; here the actions are methods of one prototype per
 * strategy and a request costs one small object. In the benchmark that took about a tenth off the
 * server's CPU time per token.
 */
function createStrategyRunner(strategy: PassportStrategy, method: ClientAuthMethod,
  reasonOf: (req: Request) => AuthenticationFailure | undefined): (req: Request, clientId: string) => Promise<ClientAuthOutcome> {
  class Attempt {
    constructor(readonly req: Request, readonly clientId: string, readonly resolve: Settle, readonly reject: (err: unknown) => void) {}
    success(client: Client): void {
      this.resolve({ ok: true, client, method });
    }
    fail(challenge?: unknown, _status?: number): void {
      // passport: fail(status) leaves the challenge undefined; the challenge becomes the callback's info.
      const info = typeof challenge === 'number' ? undefined : challenge as { reason?: AuthenticationFailure } | undefined;
      this.resolve({ ok: false, method, clientId: this.clientId, reason: info?.reason ?? reasonOf(this.req) ?? 'invalid_secret' });
    }
    error(err: unknown): void {
      this.reject(err);
    }
    // Neither strategy passes or redirects; passport would call next(), which rejected before.
    pass(): void {
      this.reject(new Error(`the ${method} strategy passed without deciding`));
    }
    redirect(): void {
      this.reject(new Error(`the ${method} strategy asked for a redirect`));
    }
  }
  Object.setPrototypeOf(Attempt.prototype, strategy);
  const options = { session: false };
  return (req, clientId) => new Promise((resolve, reject) => {
    (new Attempt(req, clientId, resolve, reject) as unknown as PassportStrategy).authenticate(req, options);
  });
}

/**
 * Creates the client authenticator: a private Passport instance (never the host's global one) with
 * one strategy per method, sessions off. The request's method is found first by
 * {@link detectClientCredentials}.
 *
 * @param clients - The client store that checks credentials.
 */
export function createClientAuthenticator(clients: ClientStore): (req: Request, presented: PresentedCredentials) => Promise<ClientAuthOutcome> {
  const passport = new Passport();
  const reasons = new WeakMap<Request, AuthenticationFailure>();
  const parsed = new WeakMap<Request, BasicCredentials>();
  const verify: Verify = (_req, clientId, clientSecret, done) => {
    clients.authenticate(clientId, clientSecret).then(
      (result) => (result.ok ? done(null, result.client) : done(null, false, { reason: result.reason })),
      (err: unknown) => done(err),
    );
  };
  const basicStrategy = new ClientBasicStrategy(verify, parsed);
  // passport-oauth2-client-password calls fail() without the reason; the reason is kept on the request.
  const postStrategy = new ClientPasswordStrategy({ passReqToCallback: true }, (req: Request, id: string, secret: string,
    done: (err: unknown, client?: Client | false) => void) => {
    verify(req, id, secret, (err, client, info) => {
      if (info) reasons.set(req, info.reason);
      done(err, client);
    });
  });
  passport.use(basicStrategy);
  passport.use(postStrategy);
  const reasonOf = (req: Request): AuthenticationFailure | undefined => reasons.get(req);
  const runBasic = createStrategyRunner(basicStrategy, 'client_secret_basic', reasonOf);
  const runPost = createStrategyRunner(postStrategy, 'client_secret_post', reasonOf);

  return function authenticateClient(req, presented) {
    if (presented.method === undefined) {
      return Promise.resolve({ ok: false, method: undefined, clientId: presented.clientId, reason: presented.reason });
    }
    if (presented.method === 'client_secret_basic') {
      parsed.set(req, presented);
      return runBasic(req, presented.clientId);
    }
    // passport-oauth2-client-password reads the credentials from req.body, so they are put there
    // for this method only: adding a property to the request costs several microseconds.
    req.body = { client_id: presented.clientId, client_secret: presented.clientSecret };
    return runPost(req, presented.clientId);
  };
}

/** Which authentication method a request uses, and the client id it claims. */
export type PresentedCredentials =
  | ({ method: 'client_secret_basic' } & BasicCredentials)
  | { method: 'client_secret_post'; clientId: string; clientSecret: string }
  | { method: undefined; clientId: string | undefined; reason: 'no_credentials' | 'unsupported_method' };

/** The client-authentication parameters of a token request's body, each present at most once. */
export interface BodyCredentials {
  clientId: string | undefined;
  clientSecret: string | undefined;
}

/**
 * Finds the one client authentication method a token request uses (RFC 6749 §2.3: exactly one).
 *
 * @param authorization - The request's Authorization header, if any.
 * @param body - `client_id` and `client_secret` from the request body.
 * @throws {@link InvalidRequestError} when the request uses both the Authorization header and
 *   `client_secret`, when the body's `client_id` differs from the header's, or when the Basic
 *   header is malformed.
 */
export function detectClientCredentials(authorization: string | undefined, body: BodyCredentials): PresentedCredentials {
  const header = authorization;
  const bodyId = body.clientId;
  if (header !== undefined) {
    if (body.clientSecret !== undefined) {
      throw new InvalidRequestError('client authentication must use exactly one method, not both the Authorization header and client_secret');
    }
    if (!/^Basic(\s|$)/i.test(header)) return { method: undefined, clientId: bodyId, reason: 'unsupported_method' };
    const parsed = parseBasicCredentials(header);
    if (bodyId !== undefined && bodyId !== parsed.clientId) {
      throw new InvalidRequestError('client_id in the body differs from the client id in the Authorization header');
    }
    return { method: 'client_secret_basic', clientId: parsed.clientId, clientSecret: parsed.clientSecret };
  }
  if (body.clientSecret !== undefined && bodyId !== undefined) return { method: 'client_secret_post', clientId: bodyId, clientSecret: body.clientSecret };
  return { method: undefined, clientId: bodyId, reason: 'no_credentials' };
}

/** The error answered for every failed client authentication: one text, whatever the reason. */
export function clientAuthenticationError(method: ClientAuthMethod | undefined, realm: string): InvalidClientError {
  // RFC 6749 §5.2: 401 with a WWW-Authenticate challenge when the client tried the Authorization
  // header; offering Basic also helps a client that sent no credentials at all.
  const headers: Record<string, string> = method === 'client_secret_post' ? {} : { 'WWW-Authenticate': `Basic realm="${realm}"` };
  return new InvalidClientError('client authentication failed', { headers });
}
