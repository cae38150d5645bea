/**
 * Step (e) of the cluster demo: a token revoked at one issuer instance (RFC 7009 `/revoke`), and
 * a client disabled with the CLI, are refused by both API instances, whose guards keep a copy of
 * the issuer's revocation list (`revocations`, read every REVOCATION_INTERVAL seconds by a client
 * of their own). Prints how long each took, and checks it against the bound.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from './shared.js';

/** How often the demo's APIs read the revocation list, in seconds. */
export const REVOCATION_INTERVAL = 2;
/** The client the APIs read the list as, and the client the demo disables. */
export const LISTER_CLIENT = 'cluster-api-lister';
export const DISABLED_CLIENT = 'cluster-retired';

/** What the step needs of the demo. */
export interface RevocationStepParts {
  /** The issuer through the balancer. */
  issuerUrl: string;
  /** The API instances' ports, by name. */
  apis: { name: string; port: number }[];
  /** A token for `clientId` (Basic authentication with `secret`) through the balancer. */
  tokenFor(clientId: string, secret: string): Promise<string>;
  /** Runs `express-m2m clients disable ID` against the shared database. */
  disableWithCli(clientId: string): Promise<void>;
  check(ok: boolean, text: string, detail?: string): void;
  pass(text: string): void;
}

/** The figures of the step, in seconds. */
export interface RevocationFigures {
  interval: number;
  bound: number;
  revokedTokenRefusedAfter: number;
  disabledClientRefusedAfter: number;
}

async function status(port: number, token: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/reports`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

/** Seconds from `since` until every API answers 401 to `token` (polled every 50 ms), or the deadline. */
async function refusedByAll(apis: RevocationStepParts['apis'], token: string, since: number, deadlineSeconds: number): Promise<number | undefined> {
  for (;;) {
    const statuses = await Promise.all(apis.map((api) => status(api.port, token)));
    const elapsed = (performance.now() - since) / 1000;
    if (statuses.every((s) => s === 401)) return elapsed;
    if (elapsed > deadlineSeconds) return undefined;
    await sleep(50);
  }
}

/** Runs the step with the probe client (which revokes its own token) and the client to disable. */
export async function revocationStep(
  parts: RevocationStepParts, probe: { clientId: string; secret: string }, retired: { secret: string },
): Promise<RevocationFigures> {
  const { apis, check } = parts;
  const bound = REVOCATION_INTERVAL + 1;
  const accepted = async (token: string) => (await Promise.all(apis.map((api) => status(api.port, token)))).every((s) => s === 200);

  const token = await parts.tokenFor(probe.clientId, probe.secret);
  check(await accepted(token), `a token of ${probe.clientId} is accepted by ${apis.map((a) => a.name).join(' and ')}`);
  const revokedAt = performance.now();
  const res = await fetch(`${parts.issuerUrl}/revoke`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${probe.clientId}:${probe.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  check(res.status === 200, `${probe.clientId} revoked it through the balancer: POST /revoke answered ${res.status}`);
  const afterRevoke = await refusedByAll(apis, token, revokedAt, bound + 5);
  check(afterRevoke !== undefined && afterRevoke <= bound,
    `both APIs refuse the revoked token ${afterRevoke?.toFixed(1) ?? 'never'} s after the revocation (at most ${bound} s: refreshInterval ${REVOCATION_INTERVAL} + 1)`);

  const retiredToken = await parts.tokenFor(DISABLED_CLIENT, retired.secret);
  check(await accepted(retiredToken), `a token of ${DISABLED_CLIENT} is accepted by both APIs`);
  await parts.disableWithCli(DISABLED_CLIENT);
  const disabledAt = performance.now();
  parts.pass(`express-m2m clients disable ${DISABLED_CLIENT}, on the shared database (timed from when it returned)`);
  const afterDisable = await refusedByAll(apis, retiredToken, disabledAt, bound + 5);
  check(afterDisable !== undefined && afterDisable <= bound,
    `both APIs refuse ${DISABLED_CLIENT}'s live token ${afterDisable?.toFixed(1) ?? 'never'} s after the disable (at most ${bound} s), `
    + 'long before it expires');
  return { interval: REVOCATION_INTERVAL, bound, revokedTokenRefusedAfter: Number(afterRevoke?.toFixed(2)), disabledClientRefusedAfter: Number(afterDisable?.toFixed(2)) };
}
