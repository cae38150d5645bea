import { InvalidOptionError } from './options.js';

/** Hosts on which plain http is accepted without `allowHttp`: the loopback names. */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Seconds a client is asked to wait (`Retry-After`) when keys or a dependency are briefly unavailable. */
export const RETRY_AFTER_SECONDS = 5;

function parse(value: unknown, what: string): URL {
  if (typeof value !== 'string') throw new InvalidOptionError(what, `${what} must be a string`);
  try {
    return new URL(value);
  } catch {
    throw new InvalidOptionError(what, `${what} must be an absolute URL`);
  }
}

function checkScheme(url: URL, what: string, allowHttp: boolean, hint: string): void {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (allowHttp || LOOPBACK_HOSTS.has(url.hostname)))) {
    throw new InvalidOptionError(what, `${what} must use https ${hint}`);
  }
}

/**
 * Checks that `value` is an absolute http(s) URL, https unless on a loopback host or `allowHttp`.
 *
 * @throws {@link InvalidOptionError} naming `what`.
 */
export function checkRemoteUrl(value: unknown, what: string, allowHttp: boolean): string {
  const url = parse(value, what);
  checkScheme(url, what, allowHttp, '(http only on loopback hosts, or with allowHttp)');
  return value as string;
}

/**
 * Checks an issuer identifier (RFC 8414 §2): https (http only on loopback hosts), no query,
 * fragment, trailing slash or credentials.
 *
 * @throws {@link InvalidOptionError} naming `issuer`.
 */
export function checkIssuerUrl(value: unknown): string {
  if (typeof value !== 'string') throw new InvalidOptionError('issuer', 'issuer is required: the absolute URL where the router is mounted');
  const url = parse(value, 'issuer');
  checkScheme(url, 'issuer', false, '(http is accepted only for localhost and loopback addresses)');
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) {
    throw new InvalidOptionError('issuer', 'issuer must not have a query or fragment');
  }
  if (value.endsWith('/')) throw new InvalidOptionError('issuer', 'issuer must not end with a slash');
  if (url.username !== '' || url.password !== '') throw new InvalidOptionError('issuer', 'issuer must not hold credentials');
  return value;
}

// Whitespace and controls: no URI holds them, and the URL parser would drop some silently.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NOT_IN_URI = /[\x00-\x20\x7f-\x9f]/;

/**
 * True for an RFC 8707 §2 resource indicator as this package takes one (in `resource` at the token
 * endpoint, and for the audiences the CLI registers): an absolute URI without a fragment, at most
 * 512 characters, with no whitespace or control characters (RFC 3986 has none, and the URL parser
 * would drop some silently).
 */
export function isResourceIndicator(value: string): boolean {
  if (value.length > 512 || value.includes('#') || NOT_IN_URI.test(value)) return false;
  try {
    return new URL(value).protocol.length > 1;
  } catch {
    return false;
  }
}
