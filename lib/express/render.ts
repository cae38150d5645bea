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

/**
 * Sends a JSON body with the no-store headers. Written directly rather than through `res.json` so
 * that no ETag is computed for a body that must never be cached anyway.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).set(NO_STORE_HEADERS).set('Content-Type', 'application/json; charset=utf-8').end(JSON.stringify(body));
}
