/**
 * The vocabulary of client authentication (methods, failure reasons, outcomes), apart from the
 * passport strategies that produce it (client-auth.ts), so that the package's public types, which
 * name these in the issuer's events, do not import passport's declarations into users' programs.
 */
import type { AssertionFailure } from '../core/client-assertion.js';
import type { Client, TokenEndpointAuthMethod } from '../core/client.js';
import type { AuthenticationFailure } from '../core/store.js';

/** Client authentication methods: RFC 6749 §2.3.1 and RFC 7523 §2.2. */
export type ClientAuthMethod = TokenEndpointAuthMethod;

/**
 * Why a client failed to authenticate, including failures before any lookup. `method_not_allowed`:
 * the client was registered with another method.
 */
export type ClientAuthFailure = AuthenticationFailure | AssertionFailure | 'no_credentials' | 'unsupported_method';

/** Outcome of a client authentication; `detail` says more about a refused assertion. */
export type ClientAuthOutcome =
  | { ok: true; client: Client; method: ClientAuthMethod }
  | { ok: false; method: ClientAuthMethod | undefined; clientId: string | undefined; reason: ClientAuthFailure; detail?: string };
