import type { Request, RequestHandler, Response } from 'express';
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

/**
 * Creates the client authenticator: a private Passport instance (never the host's global one)
 * with one strategy per method: {@link ClientSecretBasicStrategy} and passport-oauth2-client-
 * password's for client_secret_post. Each request runs `passport.authenticate(method, { session:
 * false }, callback)` for the one method it uses, found first by {@link detectClientCredentials}.
 *
 * @param clients - The client store that checks credentials.
 */
export function createClientAuthenticator(clients: ClientStore): (req: Request, res: Response, presented: PresentedCredentials) => Promise<ClientAuthOutcome> {
  const passport = new Passport();
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
    const { method } = presented;
    if (method === undefined) {
      return Promise.resolve({ ok: false, method: undefined, clientId: presented.clientId, reason: presented.reason });
    }
    return new Promise((resolve, reject) => {
      const settle = (err: unknown, client?: Client | false, info?: { reason?: AuthenticationFailure }): void => {
        if (err) reject(err);
        else if (client) resolve({ ok: true, client, method });
        else resolve({ ok: false, method, clientId: presented.clientId, reason: info?.reason ?? reasons.get(req) ?? 'invalid_secret' });
      };
      // Neither strategy passes or redirects; passport would then call next().
      const next = (err?: unknown): void => reject(err ?? new Error(`the ${method} strategy passed without deciding`));
      (passport.authenticate(method, { session: false }, settle) as RequestHandler)(req, res, next);
    });
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
