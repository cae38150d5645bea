/**
 * The events of a resource server (`createResourceServer(...).events`): tokens accepted and
 * refused, key sets fetched and unavailable. No payload carries a token.
 */
import type { Request } from 'express';
import { createTypedEmitter, type TypedEmitter, type TypedEvents } from '../core/events.js';
import type { KeyFetchOutcome } from '../core/jwks.js';
import type { RevocationReadOutcome } from '../core/revocation-view.js';
import type { VerifiedAccessToken } from '../core/verify.js';
import {
  InsufficientScopeError, InvalidRequestError, InvalidTokenError, OAuthError, TokenRequiredError,
} from '../errors.js';

/** Why a request was refused: the RFC 6750 §3 error, `no_token` for none at all, `unavailable` for 503. */
export type GuardRefusalReason = 'no_token' | 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'unavailable';

/** Where a checked token came from: an Express request (`method` and `path` set) or `verify()`. */
interface RequestFields {
  /** The request's method; absent for `verify()`. */
  method: string | undefined;
  /** The request's path without the query string; absent for `verify()`. */
  path: string | undefined;
}

/** Payload of `token.accepted`: a token passed every check, the route's scopes included. */
export interface TokenAcceptedEvent extends RequestFields {
  clientId: string | undefined;
  scopes: readonly string[];
  /** True when the token was answered from the verified-token cache. */
  cached: boolean;
}

/** Payload of `token.refused`: a request or a `verify()` call was refused. Never holds the token. */
export interface TokenRefusedEvent extends RequestFields {
  reason: GuardRefusalReason;
  /** The HTTP status the refusal is answered with. */
  status: number;
  /** The error description (never the token, nor a claim value). */
  description: string;
  /** The token's client, when it was verified but lacked a scope. */
  clientId: string | undefined;
  /** The scopes the route requires, for `insufficient_scope`. */
  requiredScopes: readonly string[] | undefined;
}

/** Payload of `keys.fetched`: a JWKS was fetched and its keys imported. */
export interface KeysFetchedEvent {
  jwksUri: string;
  kids: string[];
  durationMs: number;
}

/** Payload of `keys.unavailable`: a JWKS or the issuer's metadata could not be fetched; tokens needing it get 503. */
export interface KeysUnavailableEvent {
  /** The JWKS URI, or the issuer whose metadata could not be read. */
  url: string;
  error: unknown;
  durationMs: number;
}

/** Payload of `revocations.fetched`: the revocation list was read; `entries` is what the guard now holds. */
export interface RevocationsFetchedEvent {
  uri: string;
  entries: number;
  durationMs: number;
}

/** Payload of `revocations.unavailable`: the revocation list could not be read (past `maxStale`, tokens get 503). */
export interface RevocationsUnavailableEvent {
  uri: string;
  error: unknown;
  durationMs: number;
}

/** Every event of {@link ResourceServer.events}, by name. */
export interface ResourceServerEventMap {
  'token.accepted': TokenAcceptedEvent;
  'token.refused': TokenRefusedEvent;
  'keys.fetched': KeysFetchedEvent;
  'keys.unavailable': KeysUnavailableEvent;
  'revocations.fetched': RevocationsFetchedEvent;
  'revocations.unavailable': RevocationsUnavailableEvent;
}

/** A typed event emitter; a listener that throws never breaks a request. */
export type ResourceServerEvents = TypedEvents<ResourceServerEventMap>;

/** The resource server's emitter, with the helpers that build its payloads. */
export interface GuardEmitter extends TypedEmitter<ResourceServerEventMap> {
  accepted(auth: VerifiedAccessToken, req: Request | undefined, cached: boolean): void;
  refused(err: unknown, req: Request | undefined, clientId?: string): void;
  /** For the key source's `onFetch`. */
  fetched(outcome: KeyFetchOutcome): void;
  /** For the revocation views' `onRefresh`. */
  revocationsRead(outcome: RevocationReadOutcome): void;
}

/** The refusal reason and HTTP status of a guard error. */
export function refusalOf(err: unknown): { reason: GuardRefusalReason; status: number } {
  if (err instanceof TokenRequiredError) return { reason: 'no_token', status: 401 };
  if (err instanceof InsufficientScopeError) return { reason: 'insufficient_scope', status: 403 };
  if (err instanceof InvalidTokenError) return { reason: 'invalid_token', status: 401 };
  if (err instanceof InvalidRequestError) return { reason: 'invalid_request', status: 400 };
  return { reason: 'unavailable', status: 503 };
}

const requestFields = (req: Request | undefined): RequestFields =>
  req === undefined ? { method: undefined, path: undefined } : { method: req.method, path: req.baseUrl + req.path };

/** The emitter of one resource server. Payloads are built only when the event has a listener. */
export function createGuardEmitter(): GuardEmitter {
  const typed = createTypedEmitter<ResourceServerEventMap>();
  const { emit, has } = typed;
  return {
    ...typed,
    accepted(auth, req, cached) {
      if (has('token.accepted')) emit('token.accepted', { clientId: auth.clientId, scopes: auth.scopes, cached, ...requestFields(req) });
    },
    refused(err, req, clientId) {
      if (!has('token.refused')) return;
      const description = err instanceof OAuthError ? err.description : 'the token could not be checked';
      const requiredScopes = err instanceof InsufficientScopeError ? err.scopes : undefined;
      emit('token.refused', { ...refusalOf(err), description, clientId, requiredScopes, ...requestFields(req) });
    },
    fetched(outcome) {
      if (outcome.ok) emit('keys.fetched', { jwksUri: outcome.url, kids: outcome.kids, durationMs: outcome.durationMs });
      else emit('keys.unavailable', { url: outcome.url, error: outcome.error, durationMs: outcome.durationMs });
    },
    revocationsRead(outcome) {
      if (outcome.ok) emit('revocations.fetched', { uri: outcome.uri, entries: outcome.entries, durationMs: outcome.durationMs });
      else emit('revocations.unavailable', { uri: outcome.uri, error: outcome.error, durationMs: outcome.durationMs });
    },
  };
}
