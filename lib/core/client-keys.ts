import { createPublicKey } from 'node:crypto';
import jwksRsa from 'jwks-rsa';
import { LRUCache } from 'lru-cache';
import { InvalidTokenError } from '../errors.js';
import type { Client } from './client.js';
import type { ClientJwks } from './client-jwks.js';
import { createKeySource, type FetchFunction } from './jwks.js';
import type { AsymmetricAlgorithm, VerificationKey } from './verify.js';

/** Options of {@link createClientKeys}. Times in milliseconds. */
export interface ClientKeysOptions {
  /** Deadline of one fetch of a client's `jwks_uri`. */
  timeout: number;
  /** How long a fetched key set is used before it is fetched again. */
  cacheMaxAge: number;
  /** Least time between two fetches caused by an unknown `kid`, and between two after a failure. */
  cooldown: number;
  /** The host's `fetch` for `jwks_uri`s; default: jwks-rsa's own HTTP client, through the platform's fetch. */
  fetch: FetchFunction | undefined;
  /** Current time in milliseconds since the epoch. */
  clock: () => number;
}

/** The public keys of `private_key_jwt` clients; see {@link createClientKeys}. */
export interface ClientKeys {
  /**
   * The key of `client` that `kid` names, or its only key when there is no `kid`.
   *
   * @throws {@link InvalidTokenError} when the client has no such key;
   *   {@link TemporarilyUnavailableError} (503) when its `jwks_uri` cannot be read.
   */
  getKey(client: Client, kid: string | undefined, alg: AsymmetricAlgorithm): Promise<VerificationKey>;
}

interface Entry {
  /** What the keys were made from: the jwks_uri, or the registered set as JSON. */
  origin: string;
  getKey(kid: string | undefined, alg: AsymmetricAlgorithm): Promise<VerificationKey>;
}

/** Most clients whose keys are kept at once; the least recently used are made again when needed. */
const MAX_CLIENTS = 10_000;

const noKey = (kid: string | undefined): InvalidTokenError =>
  new InvalidTokenError(kid === undefined ? 'the assertion names no key and the client has several' : 'no key of the client matches the assertion kid');

/**
 * The keys of a registered set, made by jwks-rsa as it makes those of a `jwks_uri` (its `fetcher`
 * hook hands it the registered set), once per set.
 */
function registeredKeys(jwks: ClientJwks): Entry['getKey'] {
  const client = new jwksRsa.JwksClient({ cache: false, rateLimit: false, fetcher: async () => jwks });
  const made = client.getSigningKeys().then(
    (signingKeys) => signingKeys.map((key) => ({ kid: key.kid as string | undefined, key: { key: createPublicKey(key.getPublicKey()), alg: key.alg || undefined } })),
    // Keys were checked at registration; a set jwks-rsa makes no key of has no key to match.
    () => [],
  );
  return async (kid) => {
    const keys = await made;
    const found = kid === undefined ? (keys.length === 1 ? keys[0] : undefined) : keys.find((k) => k.kid === kid);
    if (found === undefined) throw noKey(kid);
    return found.key;
  };
}

/**
 * The public keys of `private_key_jwt` clients (RFC 7523 §2.2): a registered set, made into keys
 * by jwks-rsa once per set, or a client's `jwks_uri` through the resource server's key source
 * (`createKeySource` in jwks.ts): one jwks-rsa client per client, the whole set cached for
 * `cacheMaxAge`, at most one refetch per `cooldown` for unknown `kid`s, and an unreachable
 * `jwks_uri` answered with 503 rather than a refusal. Keys are made again when a client's keys
 * change.
 */
export function createClientKeys(options: ClientKeysOptions): ClientKeys {
  const entries = new LRUCache<string, Entry>({ max: MAX_CLIENTS });

  function remoteKeys(jwksUri: string): Entry['getKey'] {
    const source = createKeySource({ ...options, issuers: [], jwksUri, serveStale: 0, allowHttp: false });
    return (kid, alg) => source.getKey({ issuer: '', kid, alg });
  }

  function entryFor(client: Client): Entry {
    const origin = client.jwksUri ?? JSON.stringify(client.jwks);
    const known = entries.get(client.clientId);
    if (known?.origin === origin) return known;
    const getKey = client.jwksUri === null ? registeredKeys(client.jwks ?? { keys: [] }) : remoteKeys(client.jwksUri);
    const entry = { origin, getKey };
    entries.set(client.clientId, entry);
    return entry;
  }

  return {
    getKey: (client, kid, alg) => entryFor(client).getKey(kid, alg),
  };
}
