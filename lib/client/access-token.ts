/**
 * The token the caller hands out ({@link AccessToken}): its value is readable, but kept out of
 * JSON and `util.inspect`, so that logging what `getToken()` returns never logs a token.
 */
import { inspect } from 'node:util';

/**
 * An access token as {@link TokenClient.getToken} returns it. `accessToken` is readable but kept
 * out of `JSON.stringify` and `util.inspect`, so that logging the object does not log the token.
 */
export class AccessToken {
  readonly #value: string;
  /** Always `Bearer`: the client accepts no other token type. */
  readonly tokenType = 'Bearer';
  /** The granted scope (RFC 6749 §5.1: the requested scope when the server named none). */
  readonly scope: string;
  /** When the token expires, by the server's `expires_in` counted from when the request was sent. */
  readonly expiresAt: Date;

  /** @internal */
  constructor(value: string, scope: string, expiresAt: number) {
    this.#value = value;
    this.scope = scope;
    this.expiresAt = new Date(expiresAt);
  }

  /** The token itself, for an `Authorization: Bearer` header. */
  get accessToken(): string {
    return this.#value;
  }

  /** What JSON holds of the token: everything but the token. */
  toJSON(): { tokenType: 'Bearer'; scope: string; expiresAt: string } {
    return { tokenType: this.tokenType, scope: this.scope, expiresAt: this.expiresAt.toISOString() };
  }

  /** @internal */
  [inspect.custom](): string {
    return `AccessToken { tokenType: 'Bearer', scope: ${JSON.stringify(this.scope)}, expiresAt: ${this.expiresAt.toISOString()}, accessToken: [redacted] }`;
  }
}
