import type { Request } from 'express';
import type { VerifiedAccessToken } from '../core/verify.js';

/**
 * What the resource-server middleware adds to a request: `auth`, the verified access token, set
 * once `requireScope()` or `authenticate()` has let the request through.
 */
export interface AuthenticatedRequestFields {
  auth?: VerifiedAccessToken;
}

/** An Express request that has passed `requireScope()` or `authenticate()` (without `optional`). */
export type AuthenticatedRequest = Request & { auth: VerifiedAccessToken };

// `auth` reaches Express.Request through `extends`, not as a member of its own: other libraries
// (express-oauth2-jwt-bearer) declare an `auth` member on Express.Request too, and two member
// declarations of different types are a compile error (TS2717) in whichever file TypeScript reads
// second. A member declared directly wins over an inherited one, so with such a library present
// `req.auth` takes its type (a subset of ours at run time) and nothing fails to compile.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface Request extends AuthenticatedRequestFields {}
  }
}

/** Sets `req.auth` whatever type another library's declaration gives it. */
export function setRequestAuth(req: Request, auth: VerifiedAccessToken): void {
  (req as unknown as AuthenticatedRequestFields).auth = auth;
}
