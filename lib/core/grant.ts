import type { Client } from './client.js';
import { parseScope } from './scope.js';
import { isResourceIndicator } from './urls.js';
import { InvalidRequestError, InvalidScopeError, InvalidTargetError } from '../errors.js';

/** How the issuer answers a request for scopes beyond what the client may have. */
export type ScopePolicy = 'reject' | 'downscope';

/**
 * Decides the scopes of a token (RFC 6749 §3.3).
 *
 * - No `scope` parameter: the client's default scopes.
 * - Requested scopes all allowed: exactly those.
 * - Some not allowed: `invalid_scope` under the `reject` policy; the allowed part under `downscope`
 *   (and `invalid_scope` when nothing is left).
 *
 * @throws {@link InvalidScopeError}
 */
export function resolveScopes(client: Client, requested: string | undefined, policy: ScopePolicy): string[] {
  if (requested === undefined) {
    if (client.defaultScopes.length === 0) {
      throw new InvalidScopeError('no scope was requested and the client has no default scope');
    }
    // A copy: the caller's events and hooks must not reach the registry's own array.
    return [...client.defaultScopes];
  }
  const scopes = parseScope(requested);
  const allowed = scopes.filter((scope) => client.scopes.includes(scope));
  if (allowed.length === scopes.length) return scopes;
  if (policy === 'downscope' && allowed.length > 0) return allowed;
  throw new InvalidScopeError('the requested scope exceeds the scope granted to the client');
}

/**
 * Decides the audience of a token from RFC 8707 `resource` parameters (may repeat) or a single
 * `audience` parameter; with neither, the client's default audience.
 *
 * @throws {@link InvalidRequestError} when both parameters are given.
 * @throws {@link InvalidTargetError} for a malformed resource, an audience the client may not
 *   have, or no audience at all.
 */
export function resolveAudience(client: Client, resources: readonly string[], audience: string | undefined): string[] {
  if (resources.length > 0 && audience !== undefined) {
    throw new InvalidRequestError('use either resource or audience, not both');
  }
  let requested: string[];
  if (resources.length > 0) {
    if (resources.length > 10) throw new InvalidTargetError('at most 10 resource parameters are accepted');
    if (!resources.every(isResourceIndicator)) {
      throw new InvalidTargetError('resource must be an absolute URI without a fragment');
    }
    requested = [...new Set(resources)];
  } else if (audience !== undefined) {
    requested = [audience];
  } else {
    if (client.defaultAudience === null) {
      throw new InvalidTargetError('no resource or audience was requested and the client has no default audience');
    }
    return [client.defaultAudience];
  }
  if (!requested.every((value) => client.audiences.includes(value))) {
    throw new InvalidTargetError('the requested resource or audience is not allowed for this client');
  }
  return requested;
}
