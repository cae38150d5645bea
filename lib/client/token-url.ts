/**
 * The token endpoint a client sends its requests to: the configured `tokenUrl`, or the one an
 * issuer's metadata names, read when first needed and kept once it was read and checked; and the
 * revocation endpoint, configured or named by the same metadata.
 */
import { TokenRequestError } from '../errors.js';
import type { discoverMetadata } from '../core/metadata.js';
import { checkRemoteUrl } from '../core/urls.js';
import type { ResolvedOptions } from './options.js';

/** Reads an issuer's metadata: {@link discoverMetadata}, or a shared memo of it ({@link tokenClients}). */
export type Discover = typeof discoverMetadata;

/** A client's token endpoint. */
export interface TokenUrl {
  /** The token endpoint when configured or already discovered, else `undefined` (for events and errors). */
  known(): string | undefined;
  /**
   * The token endpoint, discovered from the issuer's metadata the first time.
   *
   * @throws TokenRequestError (`discovery_failed`, retryable) when the metadata cannot be read or
   *   names no usable `token_endpoint`.
   */
  resolve(): Promise<string>;
  /**
   * The revocation endpoint (RFC 7009): `revocationUrl`, else the `revocation_endpoint` of the
   * issuer's metadata (read now if it was not yet), else undefined (none configured, or the
   * metadata names none that may be used: https, or http where `allowHttp` or on loopback).
   *
   * @throws TokenRequestError (`discovery_failed`) when the metadata cannot be read.
   */
  revocation(): Promise<string | undefined>;
}

/** A usable endpoint URL from the metadata: checked as the client's own options are, else undefined. */
function usable(value: unknown, what: string, allowHttp: boolean): string | undefined {
  try {
    checkRemoteUrl(value, what, allowHttp);
    return new URL(value as string).username === '' ? value as string : undefined;
  } catch {
    return undefined;
  }
}

/** The {@link TokenUrl} of the client with `options`, reading metadata through `discover`. */
export function createTokenUrl(options: ResolvedOptions, discover: Discover): TokenUrl {
  let tokenUrl = options.tokenUrl;
  let revocationUrl = options.revocationUrl;
  const self: TokenUrl = {
    known: () => tokenUrl,
    async revocation() {
      // Once the token endpoint was discovered, so was any revocation endpoint of the same metadata.
      if (revocationUrl === undefined && tokenUrl === undefined) await self.resolve();
      return revocationUrl;
    },
    async resolve() {
      if (tokenUrl !== undefined) return tokenUrl;
      const issuer = options.issuer as string;
      try {
        const { metadata, url } = await discover(options.fetch, issuer, options.timeout);
        const found = metadata.token_endpoint;
        checkRemoteUrl(found, `token_endpoint in the metadata at ${url}`, options.allowHttp);
        if (new URL(found as string).username !== '') throw new TypeError('the token_endpoint holds credentials');
        tokenUrl = found as string;
        revocationUrl ??= usable(metadata.revocation_endpoint, `revocation_endpoint in the metadata at ${url}`, options.allowHttp);
        return tokenUrl;
      } catch (err) {
        const status = (err as { status?: unknown }).status;
        throw new TokenRequestError(`the token endpoint of ${issuer} could not be discovered`, {
          reason: 'discovery_failed', tokenUrl: issuer, clientId: options.clientId, retryable: true, cause: err,
          ...(typeof status === 'number' ? { status } : {}),
        });
      }
    },
  };
  return self;
}
