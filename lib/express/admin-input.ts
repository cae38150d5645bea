/**
 * Input and errors of the admin API ({@link adminApi}): JSON bodies read with body-parser under a
 * size limit, refused when the media type is wrong, a key repeats or a field is unknown; path
 * parameters checked before any store call; every error a JSON `{ error, error_description }` with
 * a stable `error` code, never a stack trace, SQL or a secret.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { closest } from '../core/options.js';
import { ClientAuthMethodError } from '../errors.js';

/** The largest JSON body the admin API reads, in bytes. */
export const ADMIN_BODY_LIMIT = 16 * 1024;

/** An admin API refusal: its HTTP status, stable `error` code and description. */
export class AdminApiError extends Error {
  constructor(readonly status: number, readonly error: string, description: string, readonly headers: Record<string, string> = {}) {
    super(description);
    this.name = 'AdminApiError';
  }
}

/** 400 `invalid_request`. */
export const invalidRequest = (description: string): AdminApiError => new AdminApiError(400, 'invalid_request', description);

/** 404 `not_found`. */
export const notFound = (description: string): AdminApiError => new AdminApiError(404, 'not_found', description);

/**
 * The first key that appears twice in one object of the JSON text `text`, or undefined. JSON.parse
 * keeps the last silently: a request naming a field twice is ambiguous, and is refused instead.
 * Linear in the text, which the body limit bounds.
 */
export function repeatedKey(text: string): string | undefined {
  const stack: ({ keys: Set<string>; expectKey: boolean } | undefined)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (top?.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push(undefined);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && top) top.expectKey = true;
  }
  return undefined;
}

const parseJson = express.json({
  limit: ADMIN_BODY_LIMIT,
  strict: true,
  type: () => true,
  verify: (_req, _res, buf) => {
    const key = repeatedKey(buf.toString('utf8'));
    if (key !== undefined) throw invalidRequest(`the field ${JSON.stringify(key.slice(0, 64))} is given twice`);
  },
});

/** Reads a JSON object body: `application/json` only, at most {@link ADMIN_BODY_LIMIT} bytes, no repeated key. */
export const readJsonBody: RequestHandler = (req, res, next) => {
  const type = req.headers['content-type'];
  if (req.headers['content-length'] === '0' || (type === undefined && req.headers['transfer-encoding'] === undefined)) {
    req.body = {};
    next();
    return;
  }
  if (!req.is('application/json')) {
    next(new AdminApiError(415, 'unsupported_media_type', 'the body must be application/json'));
    return;
  }
  parseJson(req, res, (err?: unknown) => {
    if (err !== undefined) {
      next(bodyError(err));
      return;
    }
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) next(invalidRequest('the body must be a JSON object'));
    else next();
  });
};

function bodyError(err: unknown): AdminApiError {
  if (err instanceof AdminApiError) return err;
  const { type, status } = err as { type?: unknown; status?: unknown };
  if (type === 'entity.too.large') return new AdminApiError(413, 'request_too_large', `the body is larger than ${ADMIN_BODY_LIMIT} bytes`);
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new AdminApiError(415, 'unsupported_media_type', 'the body must be UTF-8 JSON');
  if (typeof status === 'number' && status >= 400 && status < 500) return invalidRequest('the body is not valid JSON');
  return invalidRequest('the body could not be read');
}

/**
 * The body's fields, refusing any not in `allowed` (with the nearest known name) so that a typo
 * never passes silently as "no change".
 */
export function fields(req: Request, allowed: readonly string[]): Record<string, unknown> {
  const body = req.body as Record<string, unknown>;
  for (const name of Object.keys(body)) {
    if (!allowed.includes(name)) {
      const near = closest(name.slice(0, 64), allowed);
      throw invalidRequest(`unknown field ${JSON.stringify(name.slice(0, 64))}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`);
    }
  }
  return body;
}

/** A path parameter: 1 to 128 printable ASCII characters (what client ids, secret ids and kids are). */
export function pathParam(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== 'string' || !/^[\x21-\x7E]{1,128}$/.test(value)) {
    throw invalidRequest(`${name} must be 1 to 128 printable ASCII characters`);
  }
  return value;
}

/** The admin API's error handler: its own errors as they are; a store's TypeError as 400; the rest 503. */
export function adminErrorHandler(onError: (err: unknown) => void) {
  return (err: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    let refusal: AdminApiError;
    if (err instanceof AdminApiError) refusal = err;
    else if (err instanceof ClientAuthMethodError) refusal = new AdminApiError(409, 'conflict', err.message);
    else if (err instanceof TypeError) refusal = invalidRequest(err.message);
    else {
      onError(err);
      refusal = new AdminApiError(503, 'temporarily_unavailable', 'the store is unavailable', { 'Retry-After': '5' });
    }
    res.status(refusal.status).set({ 'Cache-Control': 'no-store', ...refusal.headers })
      .json({ error: refusal.error, error_description: refusal.message });
  };
}
