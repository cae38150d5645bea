import { expect } from 'chai';
import { itLeavesNothingBehind, readSummary, runScript, type ScriptRun } from '../support/scripts.js';
import { requiresServers } from '../support/servers.js';

interface Summary {
  ok: boolean;
  tablePrefix: string;
  redisPrefix: string;
  c: {
    callers: number; callsPerCaller: number; ok: number; distinctTokens: number; tokensIssued: number;
    issuedBy: Record<string, number>; tokenSources: Record<string, string[]>;
  };
  d: {
    stopped: string; exitCode: number; callerCalls: number; callerFailures: number; callerCallsAfterInvalidation: number;
    newTokenIssuedBy: Record<string, number>; distinctNewTokens: number; probeRequests: number; probeRequestsAfterStop: number;
    probeFailures: number; balancerFailures: number; reroutedToIssuer2: number; servedBy: Record<string, number>;
  };
  e: { interval: number; bound: number; revokedTokenRefusedAfter: number; disabledClientRefusedAfter: number };
}

const FP = '[0-9a-f]{12}';
const KID = '[A-Za-z0-9_-]{12}';

describe('the cluster demo (npm run demo:cluster)', function () {
  requiresServers(this, 'postgres', 'redis');
  this.timeout(60_000);
  let run: ScriptRun;
  let summary: Summary;
  let checks: string[];

  before(async function () {
    this.timeout(60_000);
    run = await runScript(['example/cluster/main.ts']);
    summary = readSummary<Summary>(run);
    checks = run.stdout.split('\n').filter((l) => /^ {2}[✓✗] /.test(l));
  });

  it('exits 0 after every step passed, printing ✓ for each and ✗ for none', () => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).to.equal(0);
    expect(run.stdout).not.to.include('✗');
    expect(run.stdout).to.match(/\n✓ All checks passed in \d+\.\d s\.\n$/);
    expect(summary.ok).to.equal(true);

    const b = String(/load balancer on http:\/\/127\.0\.0\.1:(\d+):/.exec(run.stdout)?.[1]);
    const issuer = `http://127\\.0\\.0\\.1:${b}/oauth`;
    const k1 = String(new RegExp(`first signing key (${KID}),`).exec(run.stdout)?.[1]);
    const k2 = String(new RegExp(`keys rotate --activate-after 3: key (${KID}),`).exec(run.stdout)?.[1]);
    const expected = [
      `database migrated \\(as a deploy step would\\), first signing key ${k1}, clients nightly-report, cluster-probe, cluster-api-lister, cluster-retired`,
      `load balancer on http://127\\.0\\.0\\.1:${b}: round robin, a request that cannot reach one instance goes to the other`,
      `issuer-1 on :\\d+ and issuer-2 on :\\d+, both with issuer ${issuer} \\(keyCacheTtl 1 s\\)`,
      `api-1 on :\\d+ and api-2 on :\\d+, trusting ${issuer} \\(JWKS discovered through the balancer\\)`,
      // (a)
      `issuer-1 issued token ${FP} \\(kid ${k1}, iss ${issuer}\\): api-1 200, api-2 200`,
      `issuer-2 issued token ${FP} \\(kid ${k1}, iss ${issuer}\\): api-1 200, api-2 200`,
      `both instances publish the same JWKS: ${k1}`,
      // (b)
      `express-m2m keys rotate --activate-after 3: key ${k2}, pending, signs from \\S+`,
      `both instances publish ${k2} \\(JWKS: (${k1}, ${k2}|${k2}, ${k1})\\)`,
      `after activation issuer-1 signs with ${k2}: token ${FP} accepted, api-1 200, api-2 200`,
      `after activation issuer-2 signs with ${k2}: token ${FP} accepted, api-1 200, api-2 200`,
      `token ${FP}, signed by ${k1} before the rotation, is still accepted: api-1 200, api-2 200`,
      // (c)
      'caller-1 and caller-2 ready \\(separate processes\\); the go goes to both at once',
      'caller-1: 50/50 calls answered 200 \\(api-1 25, api-2 25\\); its token came from the (token endpoint|Redis cache)',
      'caller-2: 50/50 calls answered 200 \\(api-1 25, api-2 25\\); its token came from the (token endpoint|Redis cache)',
      `the APIs saw one token from both callers: ${FP} \\(kid ${k2}\\)`,
      'token\\.issued to nightly-report across both issuer instances: 1 \\(issuer-1 [01], issuer-2 [01]\\)',
      // (d)
      'steady traffic: caller-1 and caller-2 calling the APIs, and token/JWKS/metadata requests through the balancer .*',
      'issuer-1 stopped with SIGTERM mid-stream \\(exit 0\\); issuer-2 is the only instance left',
      `callers' tokens invalidated; the new token ${FP} was issued by issuer-2 \\(token\\.issued 1\\), fetched once for both callers .*`,
      'caller-1: (\\d+)/\\1 calls answered 200, [1-9]\\d* of them after the invalidation with the new token',
      'caller-2: (\\d+)/\\1 calls answered 200, [1-9]\\d* of them after the invalidation with the new token',
      'balancer: (\\d+)/\\1 token, JWKS and metadata requests answered 200, [1-9]\\d+ of them after the stop',
      'balancer: [1-9]\\d* requests sent on to issuer-2 after a connection error from issuer-1 .*',
      // (e)
      'a token of cluster-probe is accepted by api-1 and api-2',
      'cluster-probe revoked it through the balancer: POST /revoke answered 200',
      'both APIs refuse the revoked token \\d+\\.\\d s after the revocation \\(at most 3 s: refreshInterval 2 \\+ 1\\)',
      'a token of cluster-retired is accepted by both APIs',
      'express-m2m clients disable cluster-retired, on the shared database \\(timed from when it returned\\)',
      'both APIs refuse cluster-retired\'s live token \\d+\\.\\d s after the disable \\(at most 3 s\\), long before it expires',
      // cleanup
      `stopped 6 processes, dropped \\d+ tables ${summary.tablePrefix}\\*, deleted \\d+ Redis keys? ${summary.redisPrefix}\\*`,
    ];
    expect(checks).to.have.length(expected.length);
    expected.forEach((pattern, i) => expect(checks[i]).to.match(new RegExp(`^ {2}✓ ${pattern}$`)));
    expect(k1).not.to.equal(k2);
  });

  it('(c) fetches one token for two caller processes sharing Redis: one token.issued across both issuers', () => {
    const { c } = summary;
    expect([c.callers, c.callsPerCaller, c.ok, c.distinctTokens, c.tokensIssued]).to.deep.equal([2, 50, 100, 1, 1]);
    expect(Object.values(c.issuedBy).reduce((a, n) => a + n, 0)).to.equal(1);
    expect(Object.values(c.tokenSources).map((s) => s.join(' ')).sort()).to.deep.equal(['cache', 'endpoint']);
    // The printed steps agree with the summary: one fingerprint for both callers, other than (d)'s.
    const seen = new RegExp(`the APIs saw one token from both callers: (${FP})`).exec(run.stdout)?.[1];
    const renewed = new RegExp(`the new token (${FP}) was issued by issuer-2`).exec(run.stdout)?.[1];
    expect(seen).to.be.a('string');
    expect(renewed).to.be.a('string').and.not.equal(seen);
  });

  it('(d) fails no request while one issuer instance stops: every call served, through issuer-2 after the stop', () => {
    const { d } = summary;
    expect([d.stopped, d.exitCode, d.callerFailures, d.probeFailures, d.balancerFailures]).to.deep.equal(['issuer-1', 0, 0, 0, 0]);
    expect(d.newTokenIssuedBy).to.deep.equal({ 'issuer-2': 1 });
    expect(d.distinctNewTokens).to.equal(1);
    expect(d.callerCalls).to.be.greaterThan(d.callerCallsAfterInvalidation);
    expect(d.callerCallsAfterInvalidation).to.be.at.least(2);
    expect(d.probeRequestsAfterStop).to.be.at.least(20);
    expect(d.probeRequests).to.be.greaterThan(d.probeRequestsAfterStop);
    expect(d.reroutedToIssuer2).to.be.at.least(1);
    expect(d.servedBy['issuer-1']).to.be.at.least(5);
    expect(d.servedBy['issuer-2']).to.be.at.least(d.probeRequestsAfterStop);
  });

  it('(e) has a revoked token and a disabled client\'s live token refused by both APIs within the refresh interval plus a second', () => {
    const { e } = summary;
    expect([e.interval, e.bound]).to.deep.equal([2, 3]);
    expect(e.revokedTokenRefusedAfter).to.be.within(0, 3);
    expect(e.disabledClientRefusedAfter).to.be.within(0, 3);
  });

  itLeavesNothingBehind(() => ({ run, tablePrefix: summary.tablePrefix, redisPrefix: summary.redisPrefix }));
});
