import type { FetchFunction } from './jwks.js';
import { errorTypeOf, inSpan } from './telemetry.js';

/**
 * The metadata locations to try for an issuer, in order: OpenID Connect Discovery 1.0 §4
 * (`/.well-known/openid-configuration` appended), RFC 8414 §3.1 (`/.well-known/oauth-authorization-server`
 * inserted before the issuer's path) and the appended form of the latter, which several servers
 * (and this package's router, mounted at the issuer path) answer.
 */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const trimmed = issuer.replace(/\/+$/, '');
  const path = url.pathname.replace(/\/+$/, '');
  return [...new Set([
    `${trimmed}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${trimmed}/.well-known/oauth-authorization-server`,
  ])];
}

/** `max-age` of a Cache-Control header in seconds, when it has one that is a whole number. */
export function maxAgeOf(cacheControl: string | null): number | undefined {
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,9})"?\s*(?:,|$)/i.exec(cacheControl ?? '');
  return match ? Number(match[1]) : undefined;
}

/** A JSON object body, and the response's Cache-Control `max-age` in seconds when it gave one. */
export interface JsonDocument {
  body: Record<string, unknown>;
  maxAge: number | undefined;
}

/** Largest JSON document read from a key set or metadata URL by default, in bytes. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;

/**
 * The response's body as text, refused once it passes `maxBytes` (by its Content-Length, or while
 * it streams in): a server that sends without end costs bounded memory.
 */
async function boundedText(res: Response, url: string, maxBytes: number): Promise<string> {
  const tooLarge = (): Error => new Error(`${url} answered more than ${maxBytes} bytes`);
  if (Number(res.headers.get('content-length') ?? 0) > maxBytes) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * GETs `url` and returns its JSON object body. A non-2xx answer throws an error with `status`;
 * redirects are refused, the request is abandoned after `timeout` milliseconds, and a body over
 * `maxBytes` is refused.
 */
export async function fetchJson(
  fetchFn: FetchFunction, url: string, timeout: number, accept = 'application/json', maxBytes = MAX_DOCUMENT_BYTES,
): Promise<JsonDocument> {
  const res = await fetchFn(url, {
    headers: { accept },
    redirect: 'error',
    signal: AbortSignal.timeout(timeout),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw Object.assign(new Error(`HTTP ${res.status} from ${url}`), { status: res.status });
  }
  const body: unknown = JSON.parse(await boundedText(res, url, maxBytes));
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error(`${url} did not answer a JSON object`);
  return { body: body as Record<string, unknown>, maxAge: maxAgeOf(res.headers.get('cache-control')) };
}

/**
 * Reads an issuer's metadata (OpenID Connect Discovery 1.0 §4, RFC 8414 §3) from the first
 * location of {@link metadataUrls} that answers. A 4xx means "not here" and the next location is
 * tried; anything else is an outage and throws. The document's `issuer` must equal `issuer`
 * exactly (RFC 8414 §3.3, OpenID Connect Discovery §4.3).
 *
 * @returns The metadata object and the URL it came from.
 */
export function discoverMetadata(
  fetchFn: FetchFunction, issuer: string, timeout: number,
): Promise<{ metadata: Record<string, unknown>; url: string }> {
  return inSpan('m2m.metadata.fetch', { 'm2m.issuer': issuer }, errorTypeOf, () => readMetadata(fetchFn, issuer, timeout));
}

async function readMetadata(fetchFn: FetchFunction, issuer: string, timeout: number): Promise<{ metadata: Record<string, unknown>; url: string }> {
  let lastError: unknown;
  for (const url of metadataUrls(issuer)) {
    let metadata: Record<string, unknown>;
    try {
      metadata = (await fetchJson(fetchFn, url, timeout)).body;
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        lastError = err;
        continue;
      }
      throw err;
    }
    if (metadata.issuer !== issuer) throw new Error(`the metadata at ${url} names another issuer`);
    return { metadata, url };
  }
  throw new Error(`no metadata found for ${issuer}`, { cause: lastError });
}
