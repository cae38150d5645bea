import type { Request } from 'express';
import { InvalidRequestError } from '../errors.js';

/** A parsed form: every value of every parameter, in order. */
export type Form = Map<string, string[]>;

/** Limits of {@link readForm}. */
export interface FormLimits {
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Most parameters accepted. */
  maxParameters: number;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

function checkContentType(req: Request): void {
  const header = req.headers['content-type'];
  // The common case, exactly the media type, skips the parameter parsing below.
  if (header !== FORM_TYPE) {
    const [type = '', ...params] = (header ?? '').split(';');
    if (type.trim().toLowerCase() !== FORM_TYPE) {
      throw new InvalidRequestError(`the token request must be sent as ${FORM_TYPE}`);
    }
    for (const param of params) {
      const [name = '', value = ''] = param.split('=');
      if (name.trim().toLowerCase() === 'charset' && !/^"?utf-8"?$/i.test(value.trim())) {
        throw new InvalidRequestError('the request body must be UTF-8', { status: 415 });
      }
    }
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    throw new InvalidRequestError('compressed request bodies are not accepted', { status: 415 });
  }
}

function tooLarge(limits: FormLimits): InvalidRequestError {
  // Close the connection after answering instead of draining a body of unknown size.
  return new InvalidRequestError(`the request body exceeds ${limits.maxBytes} bytes`, { status: 413, headers: { Connection: 'close' } });
}

function parseForm(text: string, limits: FormLimits): Form {
  const form: Form = new Map();
  let count = 0;
  for (const [name, value] of new URLSearchParams(text)) {
    if (++count > limits.maxParameters) throw new InvalidRequestError('the request has too many parameters', { status: 413 });
    const values = form.get(name);
    if (values) values.push(value);
    else form.set(name, [value]);
  }
  return form;
}

/**
 * Takes a body that has already arrived whole, or returns undefined. A token request is small and
 * usually comes in one packet: Node hands the request to Express when the headers are parsed and,
 * in the same turn, buffers the body behind them. One microtask later all the declared bytes are
 * in the stream's buffer and one `read()` takes them, without the three listeners and the switch
 * to flowing mode that reading a stream costs (in the benchmark, about 6% of the server's CPU
 * time per token). `resume()` afterwards lets the stream reach its end, so `end` and `close`
 * still fire for anyone listening on the request.
 */
function readBufferedBody(req: Request, declared: string | undefined, limits: FormLimits): Form | undefined {
  if (declared === undefined || req.readableFlowing === true || req.readableLength !== Number(declared)) return undefined;
  const data = req.read() as Buffer | string | null;
  req.resume();
  return parseForm(data === null ? '' : data.toString(), limits);
}

/** Reads the body and parses it: from the buffer when it is all there, else as it streams in. */
function readBody(req: Request, limits: FormLimits): Promise<Form> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes) return Promise.reject(tooLarge(limits));
  return Promise.resolve().then(() => readBufferedBody(req, declared, limits) ?? readStreamedBody(req, limits));
}

/** Reads the body as it streams in, within the limits. */
function readStreamedBody(req: Request, limits: FormLimits): Promise<Form> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const fail = (err: InvalidRequestError): void => {
      if (failed) return;
      failed = true;
      req.pause();
      reject(err);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) fail(tooLarge(limits));
      else if (!failed) chunks.push(chunk);
    });
    req.on('end', () => {
      if (failed) return;
      try {
        resolve(parseForm(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, size).toString('utf8'), limits));
      } catch (err) {
        reject(err as Error);
      }
    });
    // An aborted request emits 'error' (ECONNRESET) in Node 20 and later.
    req.on('error', () => fail(new InvalidRequestError('the request body could not be read')));
  });
}

function fromParsedBody(body: unknown): Form {
  // A host that parsed bodies before this router (app.use(express.urlencoded(...))) leaves an
  // object. Arrays are repeated parameters; nested objects (qs's extended syntax) are malformed.
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
 * Reads an `application/x-www-form-urlencoded` body for the token endpoint, strictly: UTF-8 only,
 * no compression, at most `maxBytes` bytes and `maxParameters` parameters, every value of a
 * repeated parameter kept so that the caller can refuse repetition (RFC 6749 §3.2).
 *
 * The platform's `URLSearchParams` does the decoding. body-parser would do it too, but the token
 * endpoint needs none of its options and the benchmark showed its per-request cost (type-is, qs,
 * raw-body, iconv-lite) at a quarter of the endpoint's time.
 *
 * @throws {@link InvalidRequestError}: 400 for a wrong content type or an unreadable body, 413 for
 *   a body or parameter count over the limits, 415 for a compressed or non-UTF-8 body.
 */
export function readForm(req: Request, limits: FormLimits): Promise<Form> {
  try {
    checkContentType(req);
    const consumed = (req as { _body?: boolean })._body === true || req.readableEnded;
    if (consumed) return Promise.resolve(fromParsedBody(req.body));
  } catch (err) {
    return Promise.reject(err as Error);
  }
  return readBody(req, limits);
}
