/**
 * Giving a token back ({@link revokeCurrent}): the client's current token is dropped here and from
 * the shared cache, then posted to the issuer's revocation endpoint (RFC 7009), authenticated as
 * the token requests are.
 */
import { TokenRequestError } from '../errors.js';
import type { ClientContext } from './client-context.js';
import { addClientAuthentication, formHeaders, parseJsonObject, refusal, send, type TokenRequestConfig } from './token-request.js';
import { requestConfig } from './token-retries.js';
import type { TokenSource } from './token-source.js';

/**
 * One revocation request (RFC 7009 §2.1): `token` with `token_type_hint=access_token`, the
 * client's authentication, one attempt within the timeout. 200 is success whatever the body.
 *
 * @throws TokenRequestError for any other answer or no answer, never holding the token or the credential.
 */
export async function requestRevocation(config: TokenRequestConfig, token: string): Promise<void> {
  const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
  const headers = formHeaders();
  const assertion = addClientAuthentication(config, form, headers);
  const { res, text } = await send(config, headers, form);
  if (res.status !== 200) throw refusal(config, res, parseJsonObject(text), [assertion, token]);
}

/**
 * Revokes the client's current token, if it holds one: dropped first (here and from the shared
 * cache, so that no caller is handed it again whatever the issuer answers), then revoked at the
 * revocation endpoint unless it has expired already. A later call gets a new token.
 *
 * @throws TokenRequestError when no revocation endpoint is known (`discovery_failed`), or the
 *   request fails; the token is dropped all the same.
 */
export async function revokeCurrent(ctx: ClientContext, source: TokenSource): Promise<void> {
  const { opts, clientId } = ctx;
  const entry = ctx.slot.current;
  if (entry === undefined) return;
  const token = entry.token.accessToken;
  await source.invalidate(token);
  if (opts.clock() >= entry.token.expiresAt) return;
  const url = await ctx.tokenUrl.revocation();
  if (url === undefined) {
    throw new TokenRequestError('no revocation endpoint is known: give revocationUrl, or an issuer whose metadata names one', {
      reason: 'discovery_failed', tokenUrl: ctx.tokenUrl.known() ?? opts.issuer ?? '', clientId, retryable: false,
    });
  }
  // The assertion of private_key_jwt names the token endpoint, as RFC 7523 §3 asks, wherever it is sent.
  const assertionAudience = opts.assertionAudience ?? await ctx.tokenUrl.resolve();
  await requestRevocation({ ...requestConfig(opts, url), endpoint: 'revocation', assertionAudience }, token);
}
