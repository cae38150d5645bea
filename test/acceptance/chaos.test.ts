import { expect } from 'chai';
import { itLeavesNothingBehind, readSummary, runScript, type ScriptRun } from '../support/scripts.js';
import { makePlan, parseArguments } from '../../example/chaos/plan.js';
import { requiresServers } from '../support/servers.js';

/** The short version of the run, as CI runs it (`npm run chaos -- --duration 20`). */
const DURATION = 20;

interface Summary {
  ok: boolean;
  tablePrefix: string;
  redisPrefix: string;
  duration: number;
  skipped: string[];
  plan: { faultSeconds: number; tokenLifetime: number; jwksCooldown: number; callers: number };
  calls: { made: number; ok: number; failedEnabled: number; failedDisabledClient: number; byCause: Record<string, { enabled: number; withdrawn: number }> };
  unhandledRejections: { total: number; byProcess: Record<string, number> };
  unexpectedExits: unknown[];
  jwks: { failureSeconds: number; cooldownSeconds: number; upstreamDuringFailure: Record<string, number> };
  disabled: { clientId: string; tokenLifetime: number; refusedByBothAfter: number | null; lastIssuedAfter: number; callsAfterDisable: number };
  kill: { killedAt: number; listeningAt: number; balancer: { failed: number } };
  rotation: { kid: string; callsWithNewKey: number };
  memory: Record<string, { startMb: number | null; endMb: number | null }>;
  checks: { text: string; ok: boolean }[];
}

/**
 * What bounds the disabled client's refusal beyond its token lifetime: the issuers' registry copy
 * (clientCacheTtl 1 s: a token may still be issued that long after the disable), the APIs' clock
 * tolerance (5 s, the guard's default: an expired token is accepted that long), and 1 s of
 * measurement (the run probes every 0.25 s, the callers report every second).
 */
const REFUSAL_SLACK = 1 + 5 + 1;

describe('the chaos run\'s plan', () => {
  it('schedules the faults of the default 60 s run one after the other, 10 s each, with 15 s tokens', () => {
    const plan = makePlan(60);
    expect([plan.kill, plan.rotate, plan.disable, plan.jwks, plan.db]).to.deep.equal([
      { at: 4, restartAt: 8 }, { at: 12, activateAfter: 7 }, { at: 16 }, { at: 34, until: 44 }, { at: 20, until: 30 },
    ]);
    expect([plan.tokenLifetime, plan.jwksCooldown, plan.jwksCacheMaxAge, plan.jwksServeStale]).to.deep.equal([15, 5, 5, 30]);
    expect([plan.refusalBound, plan.jwksRequestBound, plan.clients * plan.callerProcesses]).to.deep.equal([22, 3, 20]);
  });

  for (const duration of [20, 30, 60, 120]) {
    it(`shrinks or stretches the schedule to ${duration} s without overlaps, leaving time to see the disabled client refused`, () => {
      const plan = makePlan(duration);
      const times = [plan.kill.at, plan.kill.restartAt, plan.rotate.at, plan.disable.at, plan.db.at, plan.db.until, plan.jwks.at, plan.jwks.until];
      expect([...times].sort((a, b) => a - b)).to.deep.equal(times);
      // The APIs have had two chances to fetch the new key before their JWKS fails, and it signs before that.
      expect(plan.rotate.at + 1 + 2 * plan.jwksCacheMaxAge).to.be.at.most(plan.jwks.at);
      expect(plan.rotate.at + plan.rotate.activateAfter).to.be.at.most(plan.jwks.at);
      expect(plan.disable.at + plan.refusalBound).to.be.below(duration);
      expect(plan.jwks.until).to.be.below(duration);
      expect(plan.jwksCacheMaxAge).to.be.below(plan.faultSeconds);
      expect(plan.jwksServeStale).to.be.greaterThan(plan.faultSeconds + plan.jwksCacheMaxAge);
    });
  }

  it('reads --duration and --skip, and refuses what it cannot run', () => {
    const parsed = parseArguments(['--duration', '20', '--skip', 'disable,db']);
    expect('plan' in parsed && [parsed.plan.duration, [...parsed.plan.skip]]).to.deep.equal([20, ['disable', 'db']]);
    expect(parseArguments([])).to.have.nested.property('plan.duration', 60);
    expect(parseArguments(['--help'])).to.deep.equal({ help: true });
    expect(parseArguments(['--duration', '10'])).to.have.property('error').that.matches(/--duration must be a whole number of seconds from 20/);
    expect(parseArguments(['--skip', 'jwks,power'])).to.have.property('error').that.matches(/unknown fault "power"/);
    expect(parseArguments(['--durtion', '20'])).to.have.property('error');
  });
});

describe('the chaos run (npm run chaos -- --duration 20)', function () {
  requiresServers(this, 'postgres', 'redis');
  this.timeout(120_000);
  let run: ScriptRun;
  let summary: Summary;

  before(async function () {
    this.timeout(120_000);
    run = await runScript(['example/chaos/main.ts', '--duration', String(DURATION)]);
    summary = readSummary<Summary>(run);
  });

  it('injects every fault and exits 0 with every check passed', () => {
    const failed = summary.checks.filter((c) => !c.ok).map((c) => c.text);
    expect(failed, run.stdout).to.deep.equal([]);
    expect(run.code, `${run.stdout}\n${run.stderr}`).to.equal(0);
    expect(summary.ok).to.equal(true);
    expect(summary.duration).to.equal(DURATION);
    expect(summary.skipped).to.deep.equal([]);
    expect(run.stdout).to.match(/\n✓ Every check passed \(\d+\.\d s\)\.\n$/);
    for (const pattern of [
      /issuer-1 killed \(SIGKILL\)/, /issuer-1 started again at t=\d/, /signing key rotated: \S+ published now/,
      /chaos-client-5 disabled/, /JWKS failing \(500\)/, /JWKS back/, /database cut: \d+ live connections? reset/, /database back/,
    ]) expect(run.stdout).to.match(pattern);
  });

  it('makes calls, and fails none of the clients that were not disabled', () => {
    expect(summary.plan.callers).to.equal(20);
    expect(summary.calls.made).to.be.greaterThan(0);
    expect(summary.calls.failedEnabled, JSON.stringify(summary.calls.byCause)).to.equal(0);
  });

  it('leaves no rejection unhandled and no process dead that was not killed on purpose', () => {
    expect(summary.unhandledRejections.total, JSON.stringify(summary.unhandledRejections.byProcess)).to.equal(0);
    expect(Object.keys(summary.unhandledRejections.byProcess)).to.have.length.at.least(9);
    expect(summary.unexpectedExits).to.deep.equal([]);
  });

  it('sends a failing JWKS at most one request per jwksCooldown from each API, and at least one', () => {
    const { failureSeconds, cooldownSeconds, upstreamDuringFailure } = summary.jwks;
    const bound = Math.ceil(failureSeconds / cooldownSeconds) + 1;
    expect(Object.keys(upstreamDuringFailure)).to.deep.equal(['api-1', 'api-2']);
    for (const count of Object.values(upstreamDuringFailure)) expect(count).to.be.within(1, bound);
  });

  it('has the disabled client refused by both APIs within its token lifetime plus the stated slack, and by the issuers at once', () => {
    const { refusedByBothAfter, tokenLifetime, lastIssuedAfter, callsAfterDisable } = summary.disabled;
    expect(refusedByBothAfter).to.be.a('number');
    expect(refusedByBothAfter).to.be.at.most(tokenLifetime + REFUSAL_SLACK);
    expect(lastIssuedAfter).to.be.at.most(2);
    expect(callsAfterDisable).to.be.greaterThan(0);
  });

  it('goes through the issuer kill and the key rotation: the new key is used, no request is left unanswered', () => {
    expect(summary.kill.listeningAt).to.be.greaterThan(summary.kill.killedAt);
    expect(summary.kill.balancer.failed).to.equal(0);
    expect(summary.rotation.callsWithNewKey).to.be.greaterThan(0);
  });

  it('reports the memory of every issuer and API at the start and at the end', () => {
    for (const name of ['issuer-1', 'issuer-1 (restarted)', 'issuer-2', 'api-1', 'api-2']) {
      expect(summary.memory[name]?.startMb, name).to.be.greaterThan(0);
      expect(summary.memory[name]?.endMb, name).to.be.greaterThan(0);
    }
  });

  itLeavesNothingBehind(() => ({ run, tablePrefix: summary.tablePrefix, redisPrefix: summary.redisPrefix }));
});
