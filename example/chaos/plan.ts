/**
 * The chaos run's plan: its command line, and the faults' schedule and the settings, scaled to the
 * run's duration. At the default 60 s: an issuer killed at 4 s and started again at 8 s, the
 * signing key rotated at 12 s, a client disabled at 16 s, the database cut from 20 s to 30 s, the
 * JWKS failing from 34 s to 44 s, and 16 s to recover. The rotation follows the documented rule
 * (a key signs only after every verifier can have fetched it) and comes well before the JWKS
 * failure, so that the APIs know the new key when their JWKS stops answering. Shorter runs shrink every time and the token
 * lifetime with them (never below 5 s); nothing overlaps.
 */
import { parseArgs } from 'node:util';

/** The faults, by the name `--skip` takes. */
export const FAULTS = ['kill', 'rotate', 'disable', 'jwks', 'db'] as const;
/** One fault's name. */
export type Fault = (typeof FAULTS)[number];

/** Settings of the issuers the plan relies on: the store's and guard's defaults, and the cluster issuer's. */
export const CLIENT_CACHE_TTL = 1;
/** The guard's default `clockTolerance` (s), which the APIs keep. */
export const CLOCK_TOLERANCE = 5;
/** How often (s) the APIs read the issuers' revocation list (the guard's `revocations` option). */
export const REVOCATION_INTERVAL = 2;

/** Times are seconds since the load started. */
export interface Plan {
  duration: number;
  skip: ReadonlySet<Fault>;
  /** Length of the JWKS failure and of the database cut. */
  faultSeconds: number;
  kill: { at: number; restartAt: number };
  rotate: { at: number; activateAfter: number };
  disable: { at: number };
  jwks: { at: number; until: number };
  db: { at: number; until: number };
  /** Lifetime of every client's tokens. */
  tokenLifetime: number;
  /** The APIs' `jwksCooldown`, `jwksCacheMaxAge` and `jwksServeStale`. */
  jwksCooldown: number;
  jwksCacheMaxAge: number;
  jwksServeStale: number;
  clients: number;
  callerProcesses: number;
  /** Calls per second of each tokenClient. */
  rate: number;
  /** Seconds a call may take before it counts as failed. */
  callTimeout: number;
  /** Seconds between the first calls of two clients: their tokens' refreshes are spread over a lifetime. */
  stagger: number;
  /** Forged tokens per second sent to each API while the JWKS fails. */
  forgedRate: number;
  /**
   * Most seconds from the disable until both APIs refuse the client's tokens: its token lifetime
   * (a token issued just before is valid that long), the issuer's registry copy (`clientCacheTtl`:
   * a token may be issued that long after), the APIs' clock tolerance, and 1 s of measurement.
   */
  refusalBound: number;
  /** Most JWKS requests one API may send while the JWKS fails: one per cooldown, plus the one at its start. */
  jwksRequestBound: number;
  /** Most seconds after the disable the issuers may still issue the client a token (`clientCacheTtl` plus 1 s). */
  issueBound: number;
  /** Width of one line of the timeline. */
  window: number;
}

const round = (seconds: number): number => Math.round(seconds * 10) / 10;
/** The issuers' keyCacheTtl, in seconds (example/cluster/issuer-node.ts). */
const ISSUER_KEY_CACHE_TTL = 1;

/** The plan for a run of `duration` seconds without the faults in `skip`. */
export function makePlan(duration: number, skip: ReadonlySet<Fault> = new Set()): Plan {
  const scale = duration / 60;
  const faultSeconds = round(10 * scale);
  const tokenLifetime = Math.max(5, Math.round(15 * scale));
  const jwksCooldown = Math.max(1, Math.round(5 * scale));
  return {
    duration,
    skip,
    faultSeconds,
    kill: { at: round(4 * scale), restartAt: round(8 * scale) },
    // Longer than the issuers' keyCacheTtl (1 s) plus the APIs' key-set max-age, with a second to
    // spare: every API has the key before a token carries its kid (the README's rotation rule).
    rotate: { at: round(12 * scale), activateAfter: ISSUER_KEY_CACHE_TTL + jwksCooldown + 1 },
    disable: { at: round(16 * scale) },
    db: { at: round(20 * scale), until: round(20 * scale + faultSeconds) },
    jwks: { at: round(34 * scale), until: round(34 * scale + faultSeconds) },
    tokenLifetime,
    jwksCooldown,
    // The key set expires every cooldown, so that the APIs need the JWKS while it fails; the last
    // set is served meanwhile, for three fault lengths.
    jwksCacheMaxAge: jwksCooldown,
    jwksServeStale: Math.max(2 * jwksCooldown, Math.round(3 * faultSeconds)),
    clients: 5,
    callerProcesses: 4,
    rate: 5,
    callTimeout: 5,
    // Tokens are refreshed at about two thirds of their lifetime: the clients' first tokens are
    // spread over that, so that whenever a fault strikes, some token is due.
    stagger: round((0.65 * tokenLifetime) / 5),
    forgedRate: 10,
    refusalBound: tokenLifetime + CLIENT_CACHE_TTL + CLOCK_TOLERANCE + 1,
    jwksRequestBound: Math.ceil(faultSeconds / jwksCooldown) + 1,
    issueBound: CLIENT_CACHE_TTL + 1,
    window: Math.max(1, Math.round(5 * scale)),
  };
}

export const USAGE = `Usage: npm run chaos -- [--duration SECONDS] [--skip FAULT[,FAULT...]]

  --duration SECONDS  length of the load, 20 to 3600 (default 60); the faults' schedule scales with it
  --skip FAULTS       leave out faults: ${FAULTS.join(', ')}
  -h, --help          this help

Needs PostgreSQL and Redis (bash .ci/services), or DATABASE_URL and REDIS_URL.`;

/** The plan the command line asks for, help, or a usage error. */
export function parseArguments(argv: string[]): { plan: Plan } | { help: true } | { error: string } {
  let values: { duration?: string | undefined; skip?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { duration: { type: 'string' }, skip: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
  if (values.help === true) return { help: true };
  const duration = values.duration === undefined ? 60 : Number(values.duration);
  if (!Number.isInteger(duration) || duration < 20 || duration > 3600) {
    return { error: `--duration must be a whole number of seconds from 20 to 3600, not ${JSON.stringify(values.duration)}` };
  }
  const skip = new Set<Fault>();
  for (const name of values.skip?.split(',').filter((s) => s !== '') ?? []) {
    if (!(FAULTS as readonly string[]).includes(name)) return { error: `--skip: unknown fault ${JSON.stringify(name)} (${FAULTS.join(', ')})` };
    skip.add(name as Fault);
  }
  return { plan: makePlan(duration, skip) };
}
