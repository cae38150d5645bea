import type { KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';

/**
 * A key registered for JWT work, with the jsonwebtoken options it is always used with: `sign`
 * for an issuer's signing key, `verify` for a guard's public key.
 */
export interface JwtKeyEntry {
  key: KeyObject;
  sign?: jwt.SignOptions;
  verify?: jwt.VerifyOptions;
}

/** What to do with a key: sign a claim set, or verify a compact JWT. */
export const SIGN = 0;
export const VERIFY = 1;
export type JobKind = typeof SIGN | typeof VERIFY;

/** An error thrown by jsonwebtoken, in a form that crosses threads. */
export interface JwtErrorRecord {
  name: string;
  message: string;
  /** `expiredAt` of a TokenExpiredError or `date` of a NotBeforeError, in milliseconds. */
  at?: number;
}

/** A signed JWT (sign), null for a valid token (verify), or the error jsonwebtoken threw. */
export type JobAnswer = string | null | JwtErrorRecord;

function record(err: unknown): JwtErrorRecord {
  const error = err instanceof Error ? err : new Error(String(err));
  const at = (error as { expiredAt?: unknown; date?: unknown }).expiredAt ?? (error as { date?: unknown }).date;
  return { name: error.name, message: error.message, ...(at instanceof Date ? { at: at.getTime() } : {}) };
}

/**
 * Runs one job with jsonwebtoken's public API: `jwt.sign(claims, key, entry.sign)` or
 * `jwt.verify(token, key, { ...entry.verify, clockTimestamp })`. The same function runs in the
 * worker thread and, where worker threads are refused, on the event loop.
 *
 * @param now - The verifier's clock, in milliseconds, for `clockTimestamp`.
 */
export function runJob(entry: JwtKeyEntry | undefined, kind: JobKind, data: unknown, now: number): JobAnswer {
  try {
    if (entry === undefined) throw new Error('the key is not registered');
    if (kind === SIGN) {
      if (entry.sign === undefined) throw new Error('the key is not registered for signing');
      return jwt.sign(data as object, entry.key, entry.sign);
    }
    if (entry.verify === undefined) throw new Error('the key is not registered for verification');
    jwt.verify(data as string, entry.key, { ...entry.verify, clockTimestamp: Math.floor(now / 1000) });
    return null;
  } catch (err) {
    return record(err);
  }
}

/** The jsonwebtoken error that a {@link JwtErrorRecord} stands for, so that the cause keeps its class. */
export function reviveError(record: JwtErrorRecord): Error {
  const at = new Date(record.at ?? 0);
  switch (record.name) {
    case 'TokenExpiredError': return new jwt.TokenExpiredError(record.message, at);
    case 'NotBeforeError': return new jwt.NotBeforeError(record.message, at);
    case 'JsonWebTokenError': return new jwt.JsonWebTokenError(record.message);
    default: {
      const error = new Error(record.message);
      error.name = record.name;
      return error;
    }
  }
}
