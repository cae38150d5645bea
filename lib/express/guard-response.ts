import type { NextFunction, Response } from 'express';
import {
  InsufficientScopeError, InvalidRequestError, InvalidTokenError, OAuthError, TokenRequiredError,
} from '../errors.js';
import { NO_STORE_HEADERS, sendOAuthError } from './render.js';
import { unavailable } from '../core/unavailable.js';

/**
 * How a resource server refuses a request (RFC 6750 §3): the error with its challenge, answered
 * as JSON (`errors: 'respond'`) or handed to the host's error handler (`errors: 'next'`).
 */
export function createRefusal(realm: string, errorMode: 'respond' | 'next'): (res: Response, next: NextFunction, err: unknown) => void {
  /** RFC 6750 §3: `Bearer realm="...", error="...", error_description="...", scope="..."`. */
  function challenge(error?: OAuthError, scopes?: readonly string[]): string {
    let value = `Bearer realm="${realm}"`;
    if (error) value += `, error="${error.code}", error_description="${error.description}"`;
    if (scopes) value += `, scope="${scopes.join(' ')}"`;
    return value;
  }

  /** The error with the headers its response needs: a challenge for 400, 401 and 403 (RFC 6750 §3). */
  function toResponseError(err: unknown): OAuthError {
    if (err instanceof TokenRequiredError) {
      return new TokenRequiredError(err.description, { headers: { 'WWW-Authenticate': challenge() } });
    }
    if (err instanceof InsufficientScopeError) {
      return new InsufficientScopeError(err.description, err.scopes, { headers: { 'WWW-Authenticate': challenge(err, err.scopes) } });
    }
    if (err instanceof InvalidTokenError || err instanceof InvalidRequestError) {
      const Class = err instanceof InvalidTokenError ? InvalidTokenError : InvalidRequestError;
      return new Class(err.description, { cause: err.cause, headers: { ...err.headers, 'WWW-Authenticate': challenge(err) } });
    }
    if (err instanceof OAuthError) return err;
    // Nothing else should reach here; if it does, it is ours, not the caller's: 503, never 500.
    return unavailable('the token could not be checked', err);
  }

  function fail(res: Response, next: NextFunction, err: unknown): void {
    const error = toResponseError(err);
    if (errorMode === 'next') {
      next(error);
    } else if (error instanceof TokenRequiredError) {
      res.status(401).set(NO_STORE_HEADERS).set(error.headers).end();
    } else {
      sendOAuthError(res, error);
    }
  }

  return fail;
}
