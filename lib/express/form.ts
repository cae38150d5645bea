import express, { type Request, type Response } from 'express';
import { InvalidRequestError } from '../errors.js';

/** A parsed form: every value of every parameter, in order. */
export type Form = Map<string, string[]>;

/** Limits of {@link createFormReader}. */
export interface FormLimits {
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Most parameters accepted. */
  maxParameters: number;
  /** What the request is called in errors: `token request`, `revocation request`. */
  label: string;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

function tooLarge(limits: FormLimits): InvalidRequestError {
  // Close the connection after answering instead of draining a body of unknown size.
  return new InvalidRequestError(`the request body exceeds ${limits.maxBytes} bytes`, { status: 413, headers: { Connection: 'close' } });
}

function checkHeaders(req: Request, limits: FormLimits): void {
  const [type = '', ...params] = (req.headers['content-type'] ?? '').split(';');
  if (type.trim().toLowerCase() !== FORM_TYPE) {
    throw new InvalidRequestError(`the ${limits.label} must be sent as ${FORM_TYPE}`);
  }
  for (const param of params) {
    const [name = '', value = ''] = param.split('=');
    // body-parser also takes ISO-8859-1; RFC 6749 Appendix B asks for UTF-8 only.
    if (name.trim().toLowerCase() === 'charset' && !/^"?utf-8"?$/i.test(value.trim())) {
      throw new InvalidRequestError('the request body must be UTF-8', { status: 415 });
    }
  }
  // Answered before reading: body-parser would read (and discard) the whole declared body first.
  if (Number(req.headers['content-length']) > limits.maxBytes) throw tooLarge(limits);
}

/** The answer for each error type body-parser documents; anything else is a body that could not be read. */
function bodyError(err: { type?: unknown }, limits: FormLimits): InvalidRequestError {
  switch (err.type) {
    case 'entity.too.large':
      return tooLarge(limits);
    case 'parameters.too.many':
      return new InvalidRequestError('the request has too many parameters', { status: 413 });
    case 'encoding.unsupported':
      return new InvalidRequestError('compressed request bodies are not accepted', { status: 415 });
    case 'charset.unsupported':
      return new InvalidRequestError('the request body must be UTF-8', { status: 415 });
    default:
      return new InvalidRequestError('the request body could not be read', { cause: err });
  }
}

/**
 * The form as a map of every value of every parameter. A host that parsed bodies before this
 * router (`app.use(express.urlencoded(...))`) leaves its object, which body-parser then leaves
 * alone: arrays are repeated parameters; nested objects (qs's extended syntax) are malformed.
 */
function toForm(body: unknown): Form {
  const form: Form = new Map();
  if (body === null || typeof body !== 'object') return form;
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    const values = Array.isArray(value) ? value : [value];
    if (!values.every((v): v is string => typeof v === 'string')) {
      throw new InvalidRequestError(`the ${name.slice(0, 40).replace(/[^\w.-]/g, '')} parameter is malformed`);
    }
    form.set(name, values);
  }
  return form;
}

/**
 * Refuses a form that repeats any of `names` with 400 `invalid_request` (RFC 6749 §3.2: "Request
 * and response parameters MUST NOT be included more than once"; RFC 7009 §2.1 and RFC 7662 §2.1
 * use the same encoding).
 */
export function refuseRepeated(form: Form, names: readonly string[]): void {
  for (const name of names) {
    const values = form.get(name);
    if (values !== undefined && values.length > 1) throw new InvalidRequestError(`the ${name} parameter is repeated`);
  }
}

/**
 * Creates an endpoint's form reader: body-parser's `express.urlencoded` (simple syntax,
 * no inflation) within `limits`, strictly: the content type must be
 * `application/x-www-form-urlencoded` in UTF-8, and every value of a repeated parameter is kept
 * so that the caller can refuse repetition (RFC 6749 §3.2, {@link refuseRepeated}).
 *
 * @returns A function that reads one request's body, rejecting with {@link InvalidRequestError}:
 *   400 for a wrong content type or an unreadable body, 413 for a body or parameter count over the
 *   limits, 415 for a compressed or non-UTF-8 body.
 */
export function createFormReader(limits: FormLimits): (req: Request, res: Response) => Promise<Form> {
  const parse = express.urlencoded({
    extended: false, inflate: false, limit: limits.maxBytes, parameterLimit: limits.maxParameters, type: FORM_TYPE,
  });
  return (req, res) => new Promise((resolve, reject) => {
    try {
      checkHeaders(req, limits);
    } catch (err) {
      reject(err as Error);
      return;
    }
    parse(req, res, (err?: unknown) => {
      if (err) reject(bodyError(err as { type?: unknown }, limits));
      else {
        try {
          resolve(toForm(req.body));
        } catch (error) {
          reject(error as Error);
        }
      }
    });
  });
}
