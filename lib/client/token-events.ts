/**
 * The events of a {@link TokenClient}: their payloads, the typed emitter the host subscribes to, and
 * {@link createEmit}, which calls listeners so that a throwing one never breaks token handling.
 * No payload carries a secret, a key, an assertion or a token.
 */
import type { EventEmitter } from 'node:events';
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
export interface TokenClientEvents {
  on<K extends keyof TokenClientEventMap>(event: K, listener: (payload: TokenClientEventMap[K]) => void): this;
  once<K extends keyof TokenClientEventMap>(event: K, listener: (payload: TokenClientEventMap[K]) => void): this;
  off<K extends keyof TokenClientEventMap>(event: K, listener: (payload: TokenClientEventMap[K]) => void): this;
}

/** Sends one event to its listeners. */
export type Emit = <K extends keyof TokenClientEventMap>(event: K, payload: TokenClientEventMap[K]) => void;

/** An {@link Emit} on `emitter` that calls each listener in turn, ignoring any that throws. */
export function createEmit(emitter: EventEmitter): Emit {
  return (event, payload) => {
    for (const listener of emitter.listeners(event)) {
      try {
        (listener as (p: typeof payload) => void)(payload);
      } catch {
        // A host's listener must not break token handling.
      }
    }
  };
}
