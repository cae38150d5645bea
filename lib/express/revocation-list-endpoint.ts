import type { NextFunction, Request, Response } from 'express';
import type { IssuedTokenVerifier } from '../core/issued-token.js';
import type { RevocationEntry, RevocationStore } from '../core/revocations.js';
import type { IssuerStore } from '../core/store.js';
import { InsufficientScopeError, InvalidRequestError, InvalidTokenError, OAuthError, TokenRequiredError } from '../errors.js';
import { readBearerToken } from './bearer.js';
import { createRefusal } from './guard-response.js';
import { createActivityCheck } from './introspection-endpoint.js';
import type { IssuerEmitter } from './issuer-events.js';
import { NO_STORE_HEADERS } from './render.js';
import { unavailable } from '../core/unavailable.js';

/**
 * The scope a token must grant to read the revocation list: what a resource server's
 * `revocations` option reads with (the `fetch` of a `tokenClient()` for a client allowed it).
 */
export const REVOCATIONS_SCOPE = 'm2m:revocations';

/** Entries per page of the list. */
const PAGE_SIZE = 1000;
const CURSOR = /^\d{1,15}$/;

/** What {@link createRevocationListEndpoint} works with. */
export interface RevocationListEndpointParts {
  issuer: string;
  store: IssuerStore;
  revocations: RevocationStore;
  verifyIssued: IssuedTokenVerifier;
  emitter: IssuerEmitter;
}

const seconds = (date: Date): number => Math.ceil(date.getTime() / 1000);

/** An entry on the wire: JWT NumericDates (seconds), the names of the claims they are compared with. */
function wireEntry(entry: RevocationEntry): Record<string, unknown> {
  return entry.type === 'token'
    ? { type: 'token', client_id: entry.clientId, jti: entry.jti, exp: seconds(entry.expiresAt) }
    : { type: 'client', client_id: entry.clientId, revoked_before: seconds(entry.revokedBefore), exp: seconds(entry.expiresAt) };
}

/** The `since` query parameter: absent, or one cursor of an earlier answer. */
function readCursor(req: Request): string | undefined {
  const since: unknown = (req.query as Record<string, unknown>).since;
  if (since === undefined) return undefined;
  if (typeof since !== 'string' || !CURSOR.test(since)) throw new InvalidRequestError('since must be the cursor of an earlier answer, once');
  return since;
}

/**
 * Creates the handler of `GET /revocations[?since=<cursor>]`: the revocation record, in pages of
 * 1000 entries oldest change first, for resource servers to keep a copy of (their `revocations`
 * option). It answers a Bearer token of this issuer's that grants {@link REVOCATIONS_SCOPE} and
 * is active (its client enabled, the token not revoked), as RFC 6750 §3 says otherwise: 401
 * without a token or with a bad one, 403 `insufficient_scope` without the scope. The body is
 * `{ cursor, more, revocations }`, each entry `{ type: 'token', client_id, jti, exp }` or
 * `{ type: 'client', client_id, revoked_before, exp }` (seconds), with `Cache-Control: no-store`.
 */
export function createRevocationListEndpoint(parts: RevocationListEndpointParts): (req: Request, res: Response, next: NextFunction) => void {
  const { issuer, store, revocations, verifyIssued, emitter } = parts;
  const isActive = createActivityCheck(store, 'the revocation list is temporarily unavailable');
  const refuse = createRefusal(new URL(issuer).host, 'respond');

  async function list(req: Request, res: Response): Promise<void> {
    const token = readBearerToken(req);
    if (token === undefined) throw new TokenRequiredError('an access token is required');
    const since = readCursor(req);
    const issued = await verifyIssued(token);
    if (issued === undefined || !await isActive(issued)) throw new InvalidTokenError('the token is not active');
    const scopes = issued.claims.scope?.split(' ') ?? [];
    if (!scopes.includes(REVOCATIONS_SCOPE)) throw new InsufficientScopeError('the token lacks the scope to read revocations', [REVOCATIONS_SCOPE]);
    const page = await revocations.list({ ...(since === undefined ? {} : { since }), limit: PAGE_SIZE }).catch((err: unknown) => {
      throw unavailable('the revocation list is temporarily unavailable', err);
    });
    res.status(200).set(NO_STORE_HEADERS).json({ cursor: page.cursor, more: page.more, revocations: page.entries.map(wireEntry) });
  }

  return function revocationListHandler(req, res, next) {
    list(req, res).catch((err: unknown) => {
      if (!(err instanceof OAuthError) || err.status >= 500) emitter.emit('internal_error', { error: err, endpoint: 'revocations' });
      refuse(res, next, err);
    });
  };
}
