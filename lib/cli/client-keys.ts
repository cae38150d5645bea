// The public keys of a private_key_jwt client from the command line: `--jwks-file FILE` (a JWK Set,
// `-` for standard input) or `--jwks-uri URL`, read and checked by the store's own validation
// before the database is opened. Messages name the file and the key, never key material: a file
// given by mistake may hold a private key.
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { checkClientJwks, checkClientJwksUri, type ClientJwks } from '../core/client-jwks.js';
import { TOKEN_ENDPOINT_AUTH_METHODS, type TokenEndpointAuthMethod } from '../core/client.js';
import { closest, InvalidOptionError } from '../core/options.js';
import type { Args, CliIo } from './command.js';
import { CliError, UsageError, quote } from './errors.js';

/** Largest `--jwks-file` read, in bytes: ten RSA 8192-bit public keys, pretty-printed, fit well within it. */
export const JWKS_FILE_MAX = 64 * 1024;

/** Where a private_key_jwt client's public keys come from: a registered set, or its jwks_uri. */
export type ClientKeySource = { jwks: ClientJwks } | { jwksUri: string };

const SYSTEM_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file', EISDIR: 'it is a directory', EACCES: 'permission denied', EPERM: 'permission denied',
};

/** The bytes of `stream`, or undefined as soon as they exceed `max`. */
async function readAtMost(stream: AsyncIterable<unknown>, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer;
    size += bytes.length;
    // Leaving the loop destroys the stream: the rest is never read.
    if (size > max) return undefined;
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

function unreadable(label: string, reason: string): CliError {
  return new CliError(`cannot read ${label}: ${reason}`, 'ERR_M2M_JWKS_FILE_UNREADABLE');
}

async function readJwksFile(path: string, label: string, io: CliIo): Promise<Buffer> {
  let bytes: Buffer | undefined;
  if (path === '-') {
    if (io.stdin === undefined) throw unreadable(label, 'there is no standard input');
    // A JWK Set is not typed in by hand: waiting for one at a prompt is a mistake.
    if (io.stdin.isTTY === true) throw unreadable(label, 'standard input is a terminal; pipe the file in (--jwks-file - < jwks.json)');
    bytes = await readAtMost(io.stdin, JWKS_FILE_MAX);
  } else {
    try {
      bytes = await readAtMost(createReadStream(resolve(io.cwd ?? process.cwd(), path)), JWKS_FILE_MAX);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      throw unreadable(label, SYSTEM_ERRORS[code] ?? (code || 'read failed'));
    }
  }
  if (bytes === undefined) {
    throw new CliError(`${label} is larger than ${JWKS_FILE_MAX / 1024} KiB: a JWK Set of public keys is far smaller`, 'ERR_M2M_JWKS_FILE_TOO_LARGE');
  }
  return bytes;
}

/**
 * Reads and checks the JWK Set that `--jwks-file` names: at most {@link JWKS_FILE_MAX} bytes of
 * UTF-8 JSON, then {@link checkClientJwks}, the check the store makes at registration.
 *
 * @throws {@link CliError}: `ERR_M2M_JWKS_FILE_UNREADABLE`, `ERR_M2M_JWKS_FILE_TOO_LARGE`,
 *   `ERR_M2M_JWKS_FILE_NOT_JSON`, or `ERR_M2M_INVALID_OPTION` with the store's reason (not a JWK
 *   Set, a private or symmetric key, ...) naming the key.
 */
export async function loadJwksFile(path: string, io: CliIo): Promise<ClientJwks> {
  const label = path === '-' ? '--jwks-file - (standard input)' : `--jwks-file ${quote(path)}`;
  const text = (await readJwksFile(path, label, io)).toString('utf8').replace(/^\uFEFF/, '');
  if (text.trim() === '') throw new CliError(`${label} is empty: it must hold a JWK Set, {"keys": [...]}`, 'ERR_M2M_JWKS_FILE_NOT_JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message, nor as a cause: it quotes the text around the error, which may be a private key.
    throw new CliError(`${label} is not JSON: it must hold a JWK Set, {"keys": [...]}`, 'ERR_M2M_JWKS_FILE_NOT_JSON');
  }
  try {
    return checkClientJwks(parsed);
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err;
    throw new CliError(`${label}: ${err.message}${symmetricHint(parsed, err.option)}`, 'ERR_M2M_INVALID_OPTION', { cause: err });
  }
}

/**
 * Says so when the key the store refused is a symmetric one (`kty` "oct"), which the store reports
 * by its secret member `k`: a shared secret is what private_key_jwt does away with.
 */
function symmetricHint(parsed: unknown, option: string): string {
  const index = /^jwks\.keys\[(\d+)\]$/.exec(option)?.[1];
  // The store names a key only of an object with a keys array.
  const jwk: unknown = index === undefined ? undefined : (parsed as { keys: unknown[] }).keys[Number(index)];
  const symmetric = typeof jwk === 'object' && jwk !== null && (jwk as { kty?: unknown }).kty === 'oct';
  return symmetric ? ' (a symmetric key, kty "oct": private_key_jwt takes RSA or EC public keys)' : '';
}

/** `--jwks-uri URL`, checked as the store checks a `jwksUri`, or undefined when not given. */
export function jwksUriOption(args: Args): string | undefined {
  const value = args.string('jwks-uri');
  if (value === undefined) return undefined;
  try {
    return checkClientJwksUri(value);
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err;
    throw new UsageError(`${err.message.replace(/^jwksUri/, '--jwks-uri')}, got ${quote(value)}`, args.usage, 'ERR_M2M_INVALID_OPTION');
  }
}

/**
 * The public keys that `--jwks-file` or `--jwks-uri` give (at most one of them), or undefined when
 * neither is given.
 */
export async function keySourceOption(args: Args, io: CliIo): Promise<ClientKeySource | undefined> {
  args.exclusive('jwks-file', 'jwks-uri');
  const jwksUri = jwksUriOption(args);
  if (jwksUri !== undefined) return { jwksUri };
  const file = args.string('jwks-file');
  return file === undefined ? undefined : { jwks: await loadJwksFile(file, io) };
}

/**
 * `--auth-method METHOD` of `clients create`, checked against the key options: `private_key_jwt`
 * only with keys, a secret method only without.
 */
export function authMethodOption(args: Args): TokenEndpointAuthMethod | undefined {
  const value = args.string('auth-method');
  if (value === undefined) return undefined;
  if (!(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(value)) {
    const near = closest(value.slice(0, 64), TOKEN_ENDPOINT_AUTH_METHODS);
    throw new UsageError(`--auth-method must be client_secret_basic, client_secret_post or private_key_jwt, got ${quote(value)}`
      + `${near === undefined ? '' : ` (did you mean ${near}?)`}`, args.usage, 'ERR_M2M_INVALID_OPTION');
  }
  const keyOption = ['jwks-file', 'jwks-uri'].find((name) => args.values.has(name));
  if (value === 'private_key_jwt' && keyOption === undefined) {
    throw new UsageError('--auth-method private_key_jwt needs the public keys: --jwks-file FILE or --jwks-uri URL', args.usage);
  }
  if (value !== 'private_key_jwt' && keyOption !== undefined) {
    throw new UsageError(`--${keyOption} registers a private_key_jwt client, which has no secret: it cannot be combined with --auth-method ${value}`,
      args.usage);
  }
  return value as TokenEndpointAuthMethod;
}
