// One guarded Express 5 app in its own process: GET /reports behind the guard named in the spec,
// requiring the scope reports:read, answering the same JSON. Started by bench/guard.ts through
// fork(); never imported.
import { createServer } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { expressjwt } from 'express-jwt';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';
import jwksRsa from 'jwks-rsa';
import { Passport } from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import type * as M2M from '../lib/index.js';
import { AUDIENCE, ISSUER, REPORT, SCOPE, type GuardInfo, type GuardSpec } from './guard-support.js';
import { installOtelSdk } from './otel-sdk.js';
import { closeServer, listenOnLoopback, serveProcess, type StartedProcess } from './support.js';

// The compiled package (npm run build), as users run it.
const { createResourceServer } = (await import(new URL('../dist/lib/index.js', import.meta.url).href)) as typeof M2M;

/** The scope check express-jwt and passport-jwt leave to the host: whole scope tokens from `scope`. */
function scopeCheck(read: (req: Request) => unknown): RequestHandler {
  return function checkScope(req: Request, res: Response, next: NextFunction): void {
    const scope = (read(req) as { scope?: unknown } | undefined)?.scope;
    if (typeof scope === 'string' && scope.split(' ').includes(SCOPE)) next();
    else res.status(403).json({ error: 'insufficient_scope' });
  };
}

/** Renders the peers' errors (they call next(err) with a status) without a stack trace. */
const renderError = (err: { status?: number }, _req: Request, res: Response, _next: NextFunction): void => {
  res.status(err.status ?? 500).json({ error: 'unauthorized' });
};

/** jwks-rsa as its README configures it for express-jwt and passport-jwt. */
const jwksOptions = (spec: GuardSpec) => ({ jwksUri: spec.jwksUri, cache: true, rateLimit: true, jwksRequestsPerMinute: 10 });

function guardFor(spec: GuardSpec): { handlers: RequestHandler[]; verifications?: () => number } {
  switch (spec.kind) {
    case 'ceiling':
      return { handlers: [] };
    case 'express-m2m': {
      // Default options. The claims check only counts signature verifications (it runs for a
      // token that misses the verified-token cache, never for a hit), so the parent can report them.
      let verified = 0;
      const rs = createResourceServer({
        issuer: ISSUER, audience: AUDIENCE, jwksUri: spec.jwksUri,
        claims: { jti: () => { verified++; return true; } },
        ...(spec.revocations === undefined ? {} : { revocations: { uri: spec.revocations } }),
      });
      return { handlers: [rs.requireScope(SCOPE)], verifications: () => verified };
    }
    case 'express-oauth2-jwt-bearer':
      return {
        handlers: [auth({ issuer: ISSUER, audience: AUDIENCE, jwksUri: spec.jwksUri, tokenSigningAlg: spec.alg }), requiredScopes(SCOPE)],
      };
    case 'express-jwt':
      return {
        handlers: [
          expressjwt({
            secret: jwksRsa.expressJwtSecret(jwksOptions(spec)) as never, algorithms: [spec.alg], issuer: ISSUER, audience: AUDIENCE,
          }),
          scopeCheck((req) => (req as Request & { auth?: unknown }).auth),
        ],
      };
    case 'passport-jwt': {
      const passport = new Passport();
      passport.use(new JwtStrategy({
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        secretOrKeyProvider: jwksRsa.passportJwtSecret(jwksOptions(spec)),
        issuer: ISSUER, audience: AUDIENCE, algorithms: [spec.alg],
      }, (payload: unknown, done: (err: unknown, user?: unknown) => void) => done(null, payload)));
      return {
        handlers: [passport.initialize(), passport.authenticate('jwt', { session: false }), scopeCheck((req) => req.user)],
      };
    }
  }
}

serveProcess(async (spec: GuardSpec): Promise<StartedProcess<GuardInfo>> => {
  if (spec.otel) installOtelSdk();
  const app = express();
  const guard = guardFor(spec);
  app.get('/reports', ...guard.handlers, (_req: Request, res: Response) => { res.json(REPORT); });
  app.use(renderError);
  const server = createServer(app);
  const port = await listenOnLoopback(server);
  return {
    info: { url: `http://127.0.0.1:${port}/reports` },
    ...(guard.verifications ? { count: guard.verifications } : {}),
    close: () => closeServer(server),
  };
});
