import { discoverMetadata } from '../core/metadata.js';
import { RegistrationNotFoundError } from '../errors.js';
import { createTokenClient, type TokenClient } from './token-client.js';
import type { Discover } from './token-url.js';
import { checkOptions, InvalidOptionError } from '../core/options.js';
import { TOKEN_CLIENT_OPTION_NAMES, type TokenClientOptions } from './options.js';

/**
 * One metadata read per issuer (and fetch function) for all registrations, however many name that
 * issuer; a failed read is forgotten, so the next token request tries again.
 */
function sharedDiscovery(): Discover {
  const reads = new Map<unknown, Map<string, ReturnType<Discover>>>();
  return (fetchFn, issuer, timeout) => {
    let byIssuer = reads.get(fetchFn);
    if (byIssuer === undefined) reads.set(fetchFn, byIssuer = new Map());
    const known = byIssuer.get(issuer);
    if (known !== undefined) return known;
    const read = discoverMetadata(fetchFn, issuer, timeout);
    byIssuer.set(issuer, read);
    read.catch(() => { if (byIssuer.get(issuer) === read) byIssuer.delete(issuer); });
    return read;
  };
}

/** Options shared by every registration of {@link tokenClients}; a registration's own options win. */
export type SharedTokenClientOptions = Partial<Omit<TokenClientOptions, 'clientId' | 'clientSecret' | 'privateKey'>>;

/** Credentials belong to one registration: they are never shared. */
const SHARED_OPTION_NAMES = TOKEN_CLIENT_OPTION_NAMES.filter(
  (name): name is keyof SharedTokenClientOptions => name !== 'clientId' && name !== 'clientSecret' && name !== 'privateKey');

/** The clients returned by {@link tokenClients}: one property per registration, and `get(name)`. */
export type TokenClients<Name extends string> = { readonly [K in Name]: TokenClient } & {
  /**
   * The client registered under `name`.
   *
   * @throws {@link RegistrationNotFoundError} (`ERR_M2M_REGISTRATION_NOT_FOUND`) for a name with no registration.
   */
  get(name: string): TokenClient;
  /** The registration names. */
  names(): Name[];
};

/**
 * Named registrations for a service that calls several APIs, as Spring's
 * ClientRegistrationRepository holds them: one {@link tokenClient} per name, each with its own
 * token, all validated at once: an {@link InvalidOptionError} names the registration at fault and
 * the option (`reports.timeout`).
 *
 * @example
 * ```ts
 * const apis = tokenClients({
 *   reports: { clientId: 'nightly', clientSecret: reportsSecret, scope: 'reports:read', audience: 'https://reports.internal' },
 *   billing: { clientId: 'nightly', clientSecret: billingSecret, scope: 'invoices:read', audience: 'https://billing.internal' },
 * }, { tokenUrl: 'https://auth.internal/oauth/token', cache: redisTokenCache(redis) });
 * await apis.reports.fetch('https://reports.internal/reports');
 * ```
 */
export function tokenClients<Name extends string>(
  registrations: Record<Name, TokenClientOptions | Omit<TokenClientOptions, keyof SharedTokenClientOptions> & SharedTokenClientOptions>,
  shared: SharedTokenClientOptions = {},
): TokenClients<Name> {
  if (registrations === null || typeof registrations !== 'object' || Array.isArray(registrations)) {
    throw new InvalidOptionError('registrations', 'tokenClients() needs an object of registrations');
  }
  if (shared === null || typeof shared !== 'object' || Array.isArray(shared)) {
    throw new InvalidOptionError('shared', 'the shared options of tokenClients() must be an object');
  }
  checkOptions<SharedTokenClientOptions>(shared, 'tokenClients()', SHARED_OPTION_NAMES);
  const names = Object.keys(registrations) as Name[];
  if (names.length === 0) throw new InvalidOptionError('registrations', 'tokenClients() needs at least one registration');
  const clients = new Map<string, TokenClient>();
  const discover = sharedDiscovery();
  for (const name of names) {
    if (name === 'get' || name === 'names') throw new InvalidOptionError(name, `a registration cannot be named ${name}`);
    const own = registrations[name] as TokenClientOptions;
    if (own === null || typeof own !== 'object' || Array.isArray(own)) {
      throw new InvalidOptionError(name, `registration ${JSON.stringify(name)} must be an object`);
    }
    const merged = { ...shared, ...own } as TokenClientOptions;
    // Exactly one endpoint: a registration's own tokenUrl or issuer replaces a shared one.
    if (own.tokenUrl !== undefined || own.issuer !== undefined) {
      delete merged.tokenUrl;
      delete merged.issuer;
      if (own.tokenUrl !== undefined) merged.tokenUrl = own.tokenUrl;
      if (own.issuer !== undefined) merged.issuer = own.issuer;
    }
    try {
      clients.set(name, createTokenClient(merged, discover));
    } catch (err) {
      const message = `registration ${JSON.stringify(name)}: ${(err as Error).message}`;
      if (!(err instanceof InvalidOptionError)) throw new TypeError(message, { cause: err });
      // The registration's name leads the path: `reports.timeout`, whether the value was its own or shared.
      throw new InvalidOptionError(`${name}.${err.option}`, message, err.code, { cause: err });
    }
  }
  const result = {
    get(name: string): TokenClient {
      const client = clients.get(name);
      if (client === undefined) throw new RegistrationNotFoundError(name);
      return client;
    },
    names: () => [...names],
  };
  for (const [name, client] of clients) Object.defineProperty(result, name, { value: client, enumerable: true });
  return result as TokenClients<Name>;
}
