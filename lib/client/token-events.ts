/**
 * The events of a {@link TokenClient}: their payloads and the typed emitter the host subscribes to
 * (lib/core/events.ts, where a throwing listener never breaks token handling).
 * No payload carries a secret, a key, an assertion or a token.
 */
import type { EmitFunction, TypedEvents } from '../core/events.js';
import type { TokenRequestError } from '../errors.js';

/** Payload of `token.fetched`: a token was obtained from the endpoint or taken from a shared cache. */
export interface TokenFetchedEvent {
  clientId: string;
  tokenUrl: string | undefined;
  scope: string;
  expiresAt: Date;
  /** `endpoint`: a token request; `cache`: a token another process (or client) had stored. */
  source: 'endpoint' | 'cache';
  /** True when it replaced a token that was still valid (a refresh ahead of expiry). */
  refresh: boolean;
  /** Token requests made, retries included (0 from the cache). */
  attempts: number;
  /** Time from the first request to the answer, in milliseconds (0 from the cache). */
  durationMs: number;
}

/** Payload of `token.refresh_failed`: a background refresh failed; the current token is still served. */
export interface RefreshFailedEvent {
  clientId: string;
  tokenUrl: string | undefined;
  error: TokenRequestError;
  /** Expiry of the token still being served. */
  expiresAt: Date;
  /** When the next refresh may start. */
  nextAttemptAt: Date;
}

/** Payload of `token.retry_scheduled`: a token request failed in a retryable way and will be made again. */
export interface RetryScheduledEvent {
  clientId: string;
  tokenUrl: string | undefined;
  error: TokenRequestError;
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
}

/** Payload of `token.rejected`: an API answered 401 `invalid_token`; the token was dropped. */
export interface TokenRejectedEvent {
  clientId: string;
  /** The request's origin and path (no query: it may hold identifiers). */
  url: string;
  method: string;
  /** Whether the request was sent again with a new token. */
  replayed: boolean;
}

/** Payload of `cache.error`: the shared cache failed; the client went on without it. */
export interface CacheErrorEvent {
  clientId: string;
  operation: 'get' | 'set' | 'delete' | 'lock' | 'unlock';
  error: unknown;
}

/** Events of a {@link TokenClient}, by name. None carries a secret, a key, an assertion or a token. */
export interface TokenClientEventMap {
  'token.fetched': TokenFetchedEvent;
  'token.refresh_failed': RefreshFailedEvent;
  'token.retry_scheduled': RetryScheduledEvent;
  'token.rejected': TokenRejectedEvent;
  'cache.error': CacheErrorEvent;
}

/** A typed event emitter. A listener that throws is ignored: it never breaks a call. */
export type TokenClientEvents = TypedEvents<TokenClientEventMap>;

/** Sends one event to its listeners. */
export type Emit = EmitFunction<TokenClientEventMap>;
