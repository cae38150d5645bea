import type { Request } from 'express';
import { Strategy as PassportStrategy } from 'passport-strategy';
import {
  CLIENT_ASSERTION_TYPE, createAssertionVerifier, type AssertionFailure, type AssertionOutcome,
} from '../core/client-assertion.js';
import type { Client } from '../core/client.js';
import { createClientKeys } from '../core/client-keys.js';
import type { IssuerSettings } from './issuer-options.js';

/** Why the strategy failed: the verifier's reason, or an assertion of another type. */
export interface AssertionFailureInfo {
  reason: AssertionFailure | 'unsupported_method';
  detail: string;
}

/** Checks one assertion: the token endpoint's verifier (see `createAssertionVerifier`). */
export type VerifyAssertion = (assertion: string) => Promise<AssertionOutcome>;

/**
 * Passport strategy for `private_key_jwt` client authentication (RFC 7523 §2.2): reads
 * `client_assertion_type` and `client_assertion` from the parsed form (`req.body`), as
 * passport-oauth2-client-password reads `client_secret`, and hands the assertion to `verify`.
 * Every refusal is a `fail` with status 401 and its reason; a verifier that rejects (the store
 * or the client's `jwks_uri` is down) is an `error`.
 *
 * The token endpoint has already refused requests that repeat a parameter, mix the assertion with
 * another method, or send a `client_id` other than the assertion's `sub`.
 */
export class PrivateKeyJwtStrategy extends PassportStrategy {
  name = 'private_key_jwt';
  constructor(private readonly verify: VerifyAssertion) {
    super();
  }
  override authenticate(req: Request): void {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (body.client_assertion_type !== CLIENT_ASSERTION_TYPE) {
      this.fail({ reason: 'unsupported_method', detail: 'client_assertion_type is not jwt-bearer' } satisfies AssertionFailureInfo, 401);
      return;
    }
    const assertion = body.client_assertion;
    if (typeof assertion !== 'string') {
      this.fail({ reason: 'malformed_credentials', detail: 'the client assertion is missing' } satisfies AssertionFailureInfo, 401);
      return;
    }
    this.verify(assertion).then(
      (outcome) => {
        if (outcome.ok) this.success(outcome.client satisfies Client);
        else this.fail({ reason: outcome.reason, detail: outcome.detail } satisfies AssertionFailureInfo, 401);
      },
      (err: unknown) => this.error(err as Error),
    );
  }
}

/**
 * The issuer's assertion verifier, from its settings: assertions addressed to the issuer or its
 * token endpoint, clients found through the store's in-memory registry (`lookup`) when it has one,
 * used `jti`s in `store.usedAssertions`. Undefined when the store keeps no used assertions: the
 * issuer then offers no `private_key_jwt`.
 */
export function createAssertionCheck(settings: IssuerSettings): VerifyAssertion | undefined {
  const { issuer, store, clock, clientAssertion: rules } = settings;
  const { usedAssertions, clients } = store;
  if (usedAssertions === undefined) return undefined;
  const keys = createClientKeys({
    timeout: rules.jwksTimeout * 1000, cacheMaxAge: rules.jwksCacheMaxAge * 1000, cooldown: rules.jwksCooldown * 1000,
    fetch: rules.fetch, clock,
  });
  return createAssertionVerifier({
    ...rules,
    audiences: [issuer, `${issuer}/token`],
    findClient: (clientId) => (clients.lookup ? clients.lookup(clientId) : clients.get(clientId)),
    usedAssertions,
    keys,
    clock,
  });
}
