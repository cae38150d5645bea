import type { Request } from 'express';
import { InvalidRequestError } from '../errors.js';

/** RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const BEARER_SCHEME = /^Bearer(?:[ ,]|$)/i;
/** RFC 9110 §11.1: auth-scheme = token, followed by a space or nothing. */
const OTHER_SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?: |$)/;

const QUERY_TOKEN = /[?&]access_token=/;

/**
 * RFC 6750 §2: a client must not use more than one method to send the token. The query string
 * and a body the host already parsed are looked at only for that (never read as a token); the
 * URL is scanned before `req.query` is parsed, which costs every request.
 */
function hasOtherTokenParameter(req: Request): boolean {
  if (QUERY_TOKEN.test(req.url) && req.query.access_token !== undefined) return true;
  const body: unknown = req.body;
  return body !== null && typeof body === 'object' && Object.hasOwn(body, 'access_token');
}

/**
 * Reads the access token from the Authorization header only (RFC 6750 §2.1; never the query
 * string or the body, which leak into logs).
 *
 * @returns The token, or undefined when the request carries no Bearer credentials.
 * @throws {@link InvalidRequestError} for malformed Bearer credentials, two tokens, or two
 *   Authorization headers (Node keeps only the first, so they are counted in `rawHeaders`).
 */
export function readBearerToken(req: Request): string | undefined {
  const value = req.headers.authorization;
  if (value === undefined) return undefined;
  const raw = req.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 13 && name.toLowerCase() === 'authorization') count++;
  }
  if (count > 1) throw new InvalidRequestError('the request has more than one Authorization header');
  const match = BEARER.exec(value);
  if (match) {
    if (hasOtherTokenParameter(req)) throw new InvalidRequestError('the request presents an access token in more than one way');
    return match[1];
  }
  if (!BEARER_SCHEME.test(value)) {
    // Another authentication scheme (Basic, DPoP, ...): no Bearer credentials were presented.
    if (OTHER_SCHEME.test(value)) return undefined;
  } else if (value.slice(6).split(/[\s,]+/).filter((part) => part !== '').length > 1) {
    throw new InvalidRequestError('the request holds more than one Bearer token');
  }
  throw new InvalidRequestError('the Authorization header is not a well-formed Bearer credential');
}
