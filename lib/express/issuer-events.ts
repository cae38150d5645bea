import { createTypedEmitter, type TypedEmitter, type TypedEvents } from '../core/events.js';
import type { ClientAuthFailure, ClientAuthMethod } from './client-auth-outcome.js';
import { recordIssuerEvent } from './issuer-observer.js';

/** Emitted after a token is issued. Holds no token. */
export interface TokenIssuedEvent {
  clientId: string;
  scopes: string[];
  audience: string[];
  expiresIn: number;
  jti: string;
  kid: string;
  method: ClientAuthMethod;
}

/**
 * Emitted when a client revokes one of its tokens through `POST /revoke` (RFC 7009), the first
 * time only. Holds the token's `jti`, never the token.
 */
export interface TokenRevokedEvent {
  clientId: string;
  jti: string;
  /** When the token would have expired. */
  expiresAt: Date;
}

/**
 * Emitted when client authentication fails. `clientId` is the id the request claimed (for an
 * assertion, its unverified `sub`), when it is well formed (1 to 128 printable ASCII characters).
 */
export interface AuthenticationFailedEvent {
  clientId: string | undefined;
  reason: ClientAuthFailure;
  method: ClientAuthMethod | undefined;
  address: string;
  /**
   * Why, in words, for a refused `private_key_jwt` assertion or a client registered with another
   * method: `the client assertion aud is neither the issuer nor its token endpoint`. Never holds
   * the assertion.
   */
  detail?: string;
}

/** Emitted when a request is refused with 429. */
export interface RateLimitedEvent {
  clientId: string | undefined;
  address: string;
  retryAfter: number;
}

/** Emitted when a request fails for a server-side reason (store down, hook threw). */
export interface InternalErrorEvent {
  error: unknown;
  endpoint: 'token' | 'jwks' | 'revoke' | 'introspect' | 'revocations';
}

/**
 * Emitted when the issuer loads published keys whose private key is stored in plain text (a store
 * without `keyEncryptionKey`), once per key: a database dump holds those keys usable. Seal them
 * with `express-m2m keys seal` and give the store a `keyEncryptionKey`.
 */
export interface PlaintextKeysEvent {
  kids: string[];
}

/** Every event of {@link AuthorizationServer.events}, by name. */
export interface AuthorizationServerEventMap {
  'token.issued': TokenIssuedEvent;
  'token.revoked': TokenRevokedEvent;
  'client.authentication_failed': AuthenticationFailedEvent;
  'rate_limited': RateLimitedEvent;
  'internal_error': InternalErrorEvent;
  'keys.plaintext': PlaintextKeysEvent;
}

/** A typed event emitter: events never carry secrets or tokens. */
export type AuthorizationServerEvents = TypedEvents<AuthorizationServerEventMap>;

/** The issuer's emitter: `emit` never lets a throwing listener reach the caller. */
export type IssuerEmitter = TypedEmitter<AuthorizationServerEventMap>;

/** The issuer's event emitter; each event is also recorded in the issuer's metrics ({@link recordIssuerEvent}). */
export function createIssuerEmitter(): IssuerEmitter {
  const typed = createTypedEmitter<AuthorizationServerEventMap>();
  return {
    events: typed.events,
    emit(name, payload) {
      recordIssuerEvent(name, payload);
      typed.emit(name, payload);
    },
    has: (name) => typed.has(name),
  };
}
