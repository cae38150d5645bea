// What the client commands share: reading scopes, audiences and claims from the options, finding
// the client, and turning the store's refusals into messages that name the flags.
import type { Client } from '../core/client.js';
import { InvalidOptionError } from '../core/options.js';
import { isResourceIndicator } from '../core/urls.js';
import { ClientNotFoundError } from '../errors.js';
import type { KnexStore } from '../storage/knex-store.js';
import type { Args } from './command.js';
import { CliError, UsageError, quote } from './errors.js';

/** `--scope "a b" --scope c` → `['a', 'b', 'c']`. */
export function splitScopes(values: readonly string[]): string[] {
  return values.flatMap((value) => value.split(/\s+/)).filter((scope) => scope !== '');
}

/**
 * The scopes of the repeatable option `name` ("a b" or repeated), at least one when it is given;
 * `none` ends the message when there is none.
 */
export function scopeOption(args: Args, name: string, none: string): string[] | undefined {
  if (!args.values.has(name)) return undefined;
  const scopes = splitScopes(args.strings(name));
  if (scopes.length === 0) throw new UsageError(`--${name} needs at least one scope${none}`, args.usage, 'ERR_M2M_INVALID_OPTION');
  return scopes;
}

/** The client `clientId`, or a {@link ClientNotFoundError}. */
export async function requireClient(store: KnexStore, clientId: string): Promise<Client> {
  const client = await store.clients.get(clientId);
  if (!client) throw new ClientNotFoundError(clientId);
  return client;
}

/**
 * Checks an audience as the token endpoint takes one in `resource` ({@link isResourceIndicator}).
 *
 * @throws {@link UsageError} naming `flag`.
 */
export function checkAudience(value: string, flag: string, usage: string): string {
  if (!isResourceIndicator(value)) {
    throw new UsageError(`${flag} must be an absolute URI without a fragment, such as https://reports.internal, got ${quote(value)}`,
      usage, 'ERR_M2M_INVALID_OPTION');
  }
  return value;
}

/** The values of the audience option `name`, each checked by {@link checkAudience}. */
export function audienceOption(args: Args, name: string): string[] {
  return args.strings(name).map((value) => checkAudience(value, `--${name}`, args.usage));
}

/** `--token-lifetime`: whole seconds from 1 to 86400 (the store's bounds), or undefined when not given. */
export function tokenLifetimeOption(args: Args): number | undefined {
  const value = args.seconds('token-lifetime');
  if (value !== undefined && (value < 1 || value > 86_400)) {
    throw new UsageError(`--token-lifetime must be from 1 to 86400 seconds, got ${value}`, args.usage, 'ERR_M2M_INVALID_OPTION');
  }
  return value;
}

/** `--claims JSON`: a JSON object, or undefined when not given. */
export function parseClaims(args: Args): Record<string, unknown> | undefined {
  const text = args.string('claims');
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError('--claims must be a JSON object, for example \'{"tenant":"acme"}\'', args.usage, 'ERR_M2M_INVALID_OPTION');
  }
  return parsed as Record<string, unknown>;
}

// The store's validation names registration fields; the user typed flags.
const FLAG_FOR_FIELD: Record<string, string> = {
  clientId: '--client-id', name: '--name', scopes: '--scope', defaultScopes: '--default-scope',
  audiences: '--audience', defaultAudience: '--default-audience', tokenLifetime: '--token-lifetime', claims: '--claims',
  jwks: '--jwks-file', jwksUri: '--jwks-uri', tokenEndpointAuthMethod: '--auth-method',
};

/**
 * `err` as the CLI reports it: a refusal of the store's validation (a TypeError naming a
 * registration field) becomes a {@link CliError} naming the flag; anything else is kept.
 */
export function storeRefusal(err: unknown): unknown {
  if (!(err instanceof TypeError)) return err;
  // The store refuses key options with an InvalidOptionError naming the field (`jwks.keys[0]`); other ones are kept.
  if (err instanceof InvalidOptionError && !Object.hasOwn(FLAG_FOR_FIELD, err.option.replace(/[.[].*$/, ''))) return err;
  const message = err.message.replace(/^\w+/, (word) => FLAG_FOR_FIELD[word] ?? word);
  return new CliError(message, 'ERR_M2M_INVALID_OPTION', { cause: err });
}
