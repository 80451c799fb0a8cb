import { describe, expect, it } from 'vitest';
import { judge, k6Thresholds, LIMITS, type JudgeInput } from '../../../../loadtest/lib/claims.js';

// The claims of a lost host on the swarm (claims.js judgeSwarmFault), on fixtures: a run that holds,
// then each rule shown to fail a run that breaks it. Times are seconds from the run's start; a
// failure's `sent` is when its request went out (a request sent at the fault to the lost host may
// wait out its 10 s timeout and fail long after it).

function passed(vus: number, fault: 'host-partition' | 'partial-partition' = 'host-partition') {
  const out: Record<string, Record<string, boolean>> = {};
  for (const [metric, sources] of Object.entries(k6Thresholds({ mode: 'shared', kill: true, restart: true, vus, fault })))
    out[metric] = Object.fromEntries(sources.map((s) => [s, true]));
  return out;
}

/** h3 cut off at 17.5 s, healed at 37.5 s; two writes failed at the cut, one of them after its 10 s timeout. */
function partitionRun(): JudgeInput {
  return {
    mode: 'shared',
    fault: 'host-partition',
    vus: 12,
    requestsByKind: { read: 4000, write: 2000, login: 12, noSession: 1000 },
    sessionsTotal: 12,
    sessionsLost: 0,
    checkFailures: 0,
    failures: [
      { t: 20.1, sent: 19.9, kind: 'write', status: '0', vu: '5' },
      { t: 27.6, sent: 17.6, kind: 'write', status: '0', vu: '9' },
      { t: 27.6, sent: 17.6, kind: 'noSession', status: '0', vu: '11' },
    ],
    losses: [],
    killedNode: 'h3',
    killedNodeSessions: null,
    killedNodeServedBeforeKill: 900,
    killAtS: 17.5,
    restartAtS: 37.5,
    readyAtS: 57,
    endS: 60,
    hostsLost: ['h3'],
    lostNodes: ['app-1'],
    swarmRecoveryS: 18.4,
    writesBackAfterS: 2.4,
    writesBackAfterRestoreS: 0,
    k6: { exitCode: 0, thresholds: passed(12) },
  };
}

const problems = (r: JudgeInput) => judge(r).problems.join('; ');

describe('a lost host on the swarm, shared mode', () => {
  it('holds: requests sent at the fault may fail, and writes work again within the limit', () => {
    expect(judge(partitionRun())).toMatchObject({ held: true, problems: [] });
  });

  it('a write sent after the limit that still failed fails it', () => {
    expect(problems({ ...partitionRun(), writesBackAfterS: LIMITS.writesBackWithinS + 0.1 })).toMatch(/session write sent 10\.1 s after the fault still failed/);
  });

  it('a request that needs no session, sent after the first seconds, failing fails it', () => {
    const late = { t: 24, sent: 17.5 + LIMITS.hostRetryS + 0.5, kind: 'noSession', status: '502', vu: '2' };
    expect(problems({ ...partitionRun(), failures: [...partitionRun().failures, late] })).toMatch(
      /1 request\(s\) that need no session, sent more than 5 s after the fault, failed/,
    );
    // Without `sent` (an older recording), when it failed is all there is.
    const { sent: _, ...unsent } = partitionRun().failures[2]!;
    expect(problems({ ...partitionRun(), failures: [unsent] })).toMatch(/need no session/);
  });

  it('a lost session, or a host that ran no app replica, fails it', () => {
    expect(problems({ ...partitionRun(), sessionsLost: 1 })).toMatch(/1 session\(s\) lost/);
    expect(problems({ ...partitionRun(), lostNodes: [] })).toMatch(/ran no app replica/);
  });

  it('writes that fail after the host came back are reported with the run, apart from the claim', () => {
    const v = judge({ ...partitionRun(), writesBackAfterRestoreS: 20.3 });
    expect(v.held).toBe(true);
    expect(v.why).toMatch(/when h3 came back, writes failed for 20\.3 s more/);
  });
});

describe("a partial partition of the primary's host", () => {
  const guard = ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '4'];
  const run = (lost: number, wait: string | null, redisArgs: string[]): JudgeInput => ({
    ...partitionRun(),
    fault: 'partial-partition',
    killedNode: 'h1',
    lostNodes: [],
    acknowledgedWritesLost: lost,
    nodeSettings: wait ? { REDIS_WAIT_REPLICAS: wait } : {},
    redisArgs,
    k6: { exitCode: 0, thresholds: passed(12, 'partial-partition') },
  });

  it('with both guards (WAIT and min-replicas-to-write), an acknowledged write missing fails it', () => {
    expect(judge(run(0, '1', guard))).toMatchObject({ held: true });
    expect(problems(run(3, '1', guard))).toMatch(/3 acknowledged write\(s\) missing with REDIS_WAIT_REPLICAS=1 and min-replicas-to-write 1/);
  });

  it('with either guard alone, or none, what is missing is measured and reported', () => {
    for (const [wait, args] of [
      ['1', []],
      [null, guard],
      [null, []],
    ] as const) {
      const v = judge(run(400, wait, [...args]));
      expect(v.held, `${wait} ${args.join(' ')}`).toBe(true);
      expect(v.why).toMatch(/400 acknowledged write\(s\) missing/);
    }
  });
});

describe('a lost host on the swarm, sticky mode', () => {
  // h1 (the Redis primary, app-1 holding 3 sessions) powered off at 17.5 s: those 3 are lost, and
  // their VUs' logins answer 503 until a replica is promoted (the login budgets are in Redis).
  const run = (loginSentAt: number): JudgeInput => ({
    ...partitionRun(),
    mode: 'sticky',
    fault: 'host-kill',
    killedNode: 'h1',
    sessionsTotal: 15,
    sessionsLost: 3,
    killedNodeSessions: 3,
    losses: ['1', '2', '3'].map((vu) => ({ t: 18, node: 'app-1', answeredBy: 'app-2', answer: 'other', vu })),
    failures: [{ t: loginSentAt, sent: loginSentAt, kind: 'login', status: '503', vu: '1' }],
    writesBackAfterS: Math.max(0, loginSentAt - 17.5),
    k6: { exitCode: 0, thresholds: {} },
  });
  const thresholds = k6Thresholds({ mode: 'sticky', kill: true, restart: true, vus: 12, fault: 'host-kill' });

  it('k6 holds no login threshold: logins fail while the primary is promoted, and the judge bounds that', () => {
    expect(Object.keys(thresholds)).not.toContain('failed_requests{kind:login}');
    const held = (r: JudgeInput) =>
      judge({ ...r, k6: { exitCode: 0, thresholds: Object.fromEntries(Object.entries(thresholds).map(([m, s]) => [m, Object.fromEntries(s.map((x) => [x, true]))])) } });
    expect(held(run(19))).toMatchObject({ held: true });
    expect(held(run(17.5 + LIMITS.writesBackWithinS + 1)).problems.join('; ')).toMatch(/session write sent 11 s after the fault still failed/);
  });
});
