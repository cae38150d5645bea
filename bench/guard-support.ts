// Shared by bench/guard.ts (the parent) and bench/guard-server.ts (one child per guard under test):
// what a child is told to start and what it reports. The process protocol itself (CPU usage, the
// verification counter, profiles, stop) is bench/support.ts's, as for the issuers.
import { forkChild, type ChildHandle } from './support.js';

/** The guards under test, and the bare route. */
export type GuardKind = 'ceiling' | 'express-m2m' | 'express-oauth2-jwt-bearer' | 'express-jwt' | 'passport-jwt';

/** The signing algorithms the benchmark compares. */
export type GuardAlgorithm = 'RS256' | 'ES256';

/** The scope every route requires and every token grants, and the audience every token is for (as in bench/issuer.ts). */
export { AUDIENCE, SCOPE } from './support.js';
/** The `iss` of every token. */
export const ISSUER = 'https://auth.bench.internal/oauth';
/** What every route answers, with res.json. */
export const REPORT = { reports: [{ id: 1, name: 'nightly' }] };

/** What the parent tells a child to start: JSON in argv[2]. */
export interface GuardSpec {
  kind: GuardKind;
  alg: GuardAlgorithm;
  jwksUri: string;
  /** Install an OpenTelemetry SDK (bench/otel-sdk.ts) before the guard: what recording costs. */
  otel?: boolean;
  /** The revocation list's URL: the guard then runs with the `revocations` option. */
  revocations?: string;
}

/** What a guard child reports once it listens: the guarded route's URL. */
export interface GuardInfo {
  url: string;
}

/** A guard running in a child process, seen from the parent; its counter is express-m2m's signature verifications. */
export type GuardChild = ChildHandle<GuardSpec, GuardInfo>;

/** Forks bench/guard-server.ts for `spec` and waits for it to listen. */
export function startGuardChild(spec: GuardSpec, label: string): Promise<GuardChild> {
  return forkChild<GuardSpec, GuardInfo>('guard-server.ts', spec, label);
}
