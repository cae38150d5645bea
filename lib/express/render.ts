import type { Response } from 'express';
import { OAuthError, ServerError } from '../errors.js';

/** Headers on every token-endpoint answer (RFC 6749 §5.1): responses must not be cached. */
export const NO_STORE_HEADERS: Readonly<Record<string, string>> = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/**
 * Sends an OAuth error as RFC 6749 §5.2 JSON, with the error's status and headers and no-store
 * caching headers. Anything that is not an {@link OAuthError} is answered as a generic 500
 * `server_error`: its message may hold SQL or internals and is never sent.
 *
 * @param res - The Express response.
 * @param err - The error to render.
 */
export function sendOAuthError(res: Response, err: unknown): void {
  const error = err instanceof OAuthError ? err : new ServerError('the server could not complete the request');
  sendJson(res.set(error.headers), error.status, error.toJSON());
}

/** The headers of every JSON answer of the token endpoint, built once. */
const JSON_HEADERS: Readonly<Record<string, string>> = { ...NO_STORE_HEADERS, 'Content-Type': 'application/json; charset=utf-8' };

/**
 * Sends a JSON body with the no-store headers. Written with `writeHead` and a prebuilt header
 * object rather than `res.status().set().json()`: no ETag for a body that must never be cached,
 * and none of Express's per-header work (value coercion, a MIME lookup for Content-Type). The
 * length is given because headers written before `end` would otherwise mean chunked encoding.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.writeHead(status, JSON_HEADERS).end(text);
}
