import { InvalidScopeError } from '../errors.js';

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Longest scope string accepted from a request, in characters. */
export const MAX_SCOPE_LENGTH = 1024;
/** Longest single scope token accepted, in characters. */
export const MAX_SCOPE_TOKEN_LENGTH = 128;

/**
 * True when `value` is one RFC 6749 §3.3 scope token (no spaces, quotes or backslashes, printable
 * ASCII only) of at most {@link MAX_SCOPE_TOKEN_LENGTH} characters.
 *
 * @param value - The candidate token.
 */
export function isScopeToken(value: string): boolean {
  return value.length <= MAX_SCOPE_TOKEN_LENGTH && SCOPE_TOKEN.test(value);
}

/**
 * Parses a space-delimited scope string (RFC 6749 §3.3) into unique tokens, in first-seen order.
 *
 * @param value - The scope parameter as received.
 * @returns The scope tokens.
 * @throws {@link InvalidScopeError} when a token holds a forbidden character, the string is longer
 *   than {@link MAX_SCOPE_LENGTH}, or it holds no token at all.
 */
export function parseScope(value: string): string[] {
  if (value.length > MAX_SCOPE_LENGTH) {
    throw new InvalidScopeError(`scope is longer than ${MAX_SCOPE_LENGTH} characters`);
  }
  const tokens = value.split(' ').filter((token) => token !== '');
  if (tokens.length === 0) throw new InvalidScopeError('scope is empty');
  for (const token of tokens) {
    if (!isScopeToken(token)) throw new InvalidScopeError('scope holds a malformed scope token');
  }
  return [...new Set(tokens)];
}

/**
 * Validates a list of scope tokens given by configuration (client registration, CLI), returning
 * them deduplicated.
 *
 * @param scopes - Scope tokens.
 * @param what - Name used in the error message.
 * @throws TypeError naming the first malformed token.
 */
export function normalizeScopes(scopes: readonly string[], what: string): string[] {
  if (!Array.isArray(scopes)) throw new TypeError(`${what} must be an array of scope tokens`);
  for (const scope of scopes) {
    if (typeof scope !== 'string' || !isScopeToken(scope)) {
      throw new TypeError(`${what} holds a malformed scope token: ${JSON.stringify(String(scope).slice(0, 40))}`);
    }
  }
  return [...new Set(scopes)];
}

/** Joins scope tokens into the space-delimited wire form. */
export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

/**
 * Reads the granted scopes from a claim value: a space-delimited string (RFC 8693 §4.2, RFC 9068
 * §2.2.3) or an array of strings (`scp` at Okta, `roles` at Entra ID, `permissions` at Auth0).
 * An absent claim grants nothing.
 *
 * @returns The scopes, or undefined when the claim is neither form.
 */
export function readScopes(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value as string[];
  return undefined;
}

/** `all`: every required scope must be granted. `any`: at least one must be. */
export type ScopeMatch = 'all' | 'any';

/**
 * True when `granted` satisfies `required`: every scope (`all`) or at least one (`any`). Scopes
 * compare as whole strings, never as substrings or prefixes (RFC 6749 §3.3).
 */
export function hasScopes(granted: readonly string[], required: readonly string[], match: ScopeMatch): boolean {
  return match === 'all' ? required.every((s) => granted.includes(s)) : required.some((s) => granted.includes(s));
}

/**
 * Checks a list of required scopes given by configuration: one scope, a space-delimited list or
 * an array, returned deduplicated.
 *
 * @throws TypeError naming `what` for an empty list or a malformed scope token (RFC 6749 §3.3).
 */
export function checkRequiredScopes(value: unknown, what: string): string[] {
  const list = typeof value === 'string' ? value.split(' ').filter((s) => s !== '') : value;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${what} must be a scope or a non-empty array of scopes`);
  return normalizeScopes(list as string[], what);
}
