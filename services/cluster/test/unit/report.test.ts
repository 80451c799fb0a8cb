import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { judge, k6Thresholds as claimThresholds, LIMITS, lossesPerVu, type JudgeInput, type LossEvent } from '../../../../loadtest/lib/claims.js';
import { percentile, readSeries } from '../../src/experiment/analyze.js';
import { k6Thresholds, spreadOf, summarizeRun, type RunSummary } from '../../src/experiment/report.js';
import type { K6Summary, RunOutcome } from '../../src/experiment/run.js';

// The experiment's judgement, percentiles and parsing on fixtures: no process is started. Each
// rule of loadtest/lib/claims.js is shown to fail a run that breaks it, starting from a run that
// holds every claim.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-report-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every threshold k6 would run for these settings, all passed. */
function passed(mode: 'shared' | 'sticky', kill: boolean, restart: boolean, vus: number) {
  const out: Record<string, Record<string, boolean>> = {};
  for (const [metric, sources] of Object.entries(claimThresholds({ mode, kill, restart, vus }))) out[metric] = Object.fromEntries(sources.map((s) => [s, true]));
  return out;
}

const VUS = 10;

/** A shared run that holds: SIGKILL at 6 s, ready again at 12 s; one write failed with 502 at the kill. */
function sharedRun(): JudgeInput {
  return {
    mode: 'shared',
    vus: VUS,
    requestsByKind: { read: 2000, write: 900, login: VUS },
    sessionsTotal: VUS,
    sessionsLost: 0,
    checkFailures: 0,
    failures: [{ t: 6.2, kind: 'write', status: '502', vu: '3' }],
    losses: [],
    killedNode: 'app-2',
    killedNodeSessions: null,
    killedNodeServedBeforeKill: 400,
    killAtS: 6,
    restartAtS: 9,
    readyAtS: 12,
    endS: 15,
    k6: { exitCode: 0, thresholds: passed('shared', true, true, VUS) },
  };
}

/** A sticky run that holds: app-1 held VUs 1-4; each lost once in the outage, and not again after the restart (re-pinned). */
function stickyRun(): JudgeInput {
  const during: LossEvent[] = ['1', '2', '3', '4'].map((vu, i) => ({ t: 6.1 + i * 0.01, node: 'app-1', answeredBy: i % 2 ? 'app-2' : 'app-3', answer: 'other', vu }));
  return {
    ...sharedRun(),
    mode: 'sticky',
    sessionsTotal: VUS + 4,
    sessionsLost: 4,
    losses: during,
    killedNode: 'app-1',
    killedNodeSessions: 4,
    readyAtS: 14,
    endS: 30,
    k6: { exitCode: 0, thresholds: passed('sticky', true, true, VUS) },
  };
}

const problems = (r: JudgeInput) => judge(r).problems.join('\n');

describe('judge (loadtest/lib/claims.js)', () => {
  it('holds the runs that show the claims', () => {
    expect(judge(sharedRun())).toMatchObject({ held: true, problems: [] });
    const sticky = judge(stickyRun());
    expect(sticky).toMatchObject({ held: true, problems: [] });
    expect(sticky.why).toMatch(/^4 lost during the outage \(app-1 held 4\), 0 after its restart/);
    const baseline = {
      ...sharedRun(),
      failures: [],
      killedNode: null,
      killedNodeServedBeforeKill: null,
      killAtS: null,
      restartAtS: null,
      readyAtS: null,
      k6: { exitCode: 0, thresholds: passed('shared', false, false, VUS) },
    };
    expect(judge(baseline)).toMatchObject({ held: true });
  });

  it('shared: a lost session, a second login, or a kill of a node that served nothing fails', () => {
    expect(problems({ ...sharedRun(), sessionsLost: 1, losses: [{ t: 6.1, node: 'app-2', answeredBy: 'app-1', answer: 'other', vu: '1' }] })).toMatch(/1 session\(s\) lost/);
    expect(problems({ ...sharedRun(), sessionsTotal: VUS + 1 })).toMatch(/11 login\(s\) for 10 VUs/);
    expect(problems({ ...sharedRun(), killedNodeServedBeforeKill: 0 })).toMatch(/served no request before the kill/);
  });

  it('node-term (SIGTERM: the node drains): not one request may fail, where a SIGKILL may fail a POST in flight', () => {
    const ran: Record<string, Record<string, boolean>> = {};
    for (const [metric, sources] of Object.entries(claimThresholds({ mode: 'shared', kill: true, restart: true, vus: VUS, fault: 'node-term' })))
      ran[metric] = Object.fromEntries(sources.map((src) => [src, true]));
    const drained: JudgeInput = { ...sharedRun(), fault: 'node-term', failures: [], k6: { exitCode: 0, thresholds: ran } };
    expect(judge(drained)).toMatchObject({ held: true, problems: [] });
    expect(judge(drained).expected).toMatch(/SIGTERM of app-2, which drains: .*no request failed/);
    // The one failed write a SIGKILL is allowed (sharedRun's) fails a drain.
    expect(judge(sharedRun())).toMatchObject({ held: true });
    expect(judge({ ...drained, failures: sharedRun().failures }).problems).toEqual(['1 request(s) failed while app-2 drained (a drain fails none)']);
    // A node-term run held to a SIGKILL's k6 thresholds (without failed_requests count==0) is not accepted.
    expect(judge({ ...drained, k6: sharedRun().k6 }).problems.join()).toMatch(/did not run the threshold\(s\) failed_requests: count==0/);
    // k6 holds the same (the docker and hand-run paths), and a node-kill run is not held to it.
    expect(claimThresholds({ mode: 'shared', kill: true, restart: true, vus: 7, fault: 'node-term' }).failed_requests).toEqual(['count==0']);
    expect(claimThresholds({ mode: 'shared', kill: true, restart: true, vus: 7, fault: 'node-kill' }).failed_requests).toBeUndefined();
  });

  it('failures: only network errors or 5xx, around the kill, at most one write per VU, reads within 0.1 %, no login', () => {
    const withFailures = (failures: JudgeInput['failures']) => problems({ ...sharedRun(), failures });
    expect(withFailures([{ t: 6.2, kind: 'write', status: '403', vu: '3' }])).toMatch(/4xx \(403\)/);
    expect(
      withFailures([
        { t: 6.2, kind: 'write', status: '0', vu: '3' },
        { t: 6.3, kind: 'write', status: '503', vu: '4' },
      ]),
    ).toBe('');
    expect(withFailures([{ t: 25, kind: 'write', status: '502', vu: '3' }])).toMatch(/away from the kill \(at 25\.0s/);
    expect(withFailures([{ t: 6 - LIMITS.killSlackS - 0.1, kind: 'write', status: '502', vu: '3' }])).toMatch(/away from the kill/);
    expect(
      withFailures([
        { t: 6.2, kind: 'write', status: '502', vu: '3' },
        { t: 6.4, kind: 'write', status: '502', vu: '3' },
      ]),
    ).toMatch(/VU\(s\) 3 \(2\) failed more than 1 write/);
    expect(withFailures([{ t: 6.2, kind: 'login', status: '502', vu: '3' }])).toMatch(/1 failed login/);
    // 2000 reads: 2 may fail (0.1 %), a third may not.
    const reads = (n: number) => Array.from({ length: n }, (_, i) => ({ t: 6.1, kind: 'read', status: '502', vu: String(i + 1) }));
    expect(withFailures(reads(2))).toBe('');
    expect(withFailures(reads(3))).toMatch(/3 failed read\(s\) > 2/);
  });

  it("k6's verdict counts: its exit code, every threshold run, every threshold passed", () => {
    expect(problems({ ...sharedRun(), k6: { ...sharedRun().k6, exitCode: 99 } })).toMatch(/k6 exited with 99 \(a threshold failed\)/);
    const failing = passed('shared', true, true, VUS);
    failing['sessions_started']!['count>=10'] = false;
    expect(problems({ ...sharedRun(), k6: { exitCode: 0, thresholds: failing } })).toMatch(/threshold\(s\) failed: sessions_started: count>=10/);
    // A run held to looser thresholds (e.g. an old script) is not accepted: each must have run.
    const loose = passed('shared', true, true, VUS);
    delete loose['checks{check:identity}'];
    expect(problems({ ...sharedRun(), k6: { exitCode: 0, thresholds: loose } })).toMatch(/did not run the threshold\(s\) checks\{check:identity\}: rate==1/);
    expect(problems({ ...sharedRun(), checkFailures: 1 })).toMatch(/1 identity\/counter check/);
  });

  it('sticky: the killed node held something, exactly that is lost in the outage, nothing elsewhere', () => {
    const r = stickyRun();
    expect(problems({ ...r, killedNodeSessions: null })).toMatch(/could not be read/);
    expect(problems({ ...r, killedNodeSessions: 0 })).toMatch(/held no session/);
    expect(problems({ ...r, killedNodeSessions: 5 })).toMatch(/4 session\(s\) lost during the outage, but app-1 held 5/);
    // One of the outage losses was a session of app-2 (a node that stayed up).
    const elsewhere = r.losses.map((l, i) => (i === 0 ? { ...l, node: 'app-2' } : l));
    expect(problems({ ...r, losses: elsewhere })).toMatch(/1 session\(s\) of other nodes lost during the outage \(app-2\)/);
    // A live node answering 401 for a session it held.
    const home = r.losses.map((l, i) => (i === 0 ? { ...l, answeredBy: 'app-1', answer: 'home' } : l));
    expect(problems({ ...r, losses: home })).toMatch(/from the node that held the session/);
    // Lost before the kill.
    expect(problems({ ...r, losses: [{ t: 3, node: 'app-3', answeredBy: 'app-3', answer: 'home', vu: '9' }, ...r.losses], sessionsLost: 9, sessionsTotal: VUS + 9 })).toMatch(
      /1 session\(s\) lost before the kill/,
    );
  });

  it('sticky: after the restart nobody is lost again (the route cookies were re-pinned)', () => {
    const r = stickyRun();
    // A user sent back to the restarted node, which does not have the session they re-created elsewhere.
    const back: LossEvent = { t: 19, node: 'app-2', answeredBy: 'app-1', answer: 'other', vu: '1' };
    expect(problems({ ...r, losses: [...r.losses, back], sessionsLost: 5, sessionsTotal: VUS + 5 })).toMatch(/1 session\(s\) lost after the restart \(a route cookie led back/);
    // Logins: one per VU and one after each loss.
    expect(problems({ ...r, sessionsTotal: VUS + 3 })).toMatch(/13 login\(s\)/);
    expect(problems({ ...r, sessionsTotal: VUS + 5 })).toMatch(/15 login\(s\)/);
  });

  it('k6 thresholds: all-or-nothing checks, every VU logs in, failures and losses bounded', () => {
    const none = claimThresholds({ mode: 'sticky', kill: false, restart: false, vus: 7 });
    expect(none).toMatchObject({
      'checks{check:identity}': ['rate==1'],
      sessions_started: ['count>=7'],
      failed_requests: ['count==0'],
      sessions_lost: ['count==0'],
      session_continuity: ['rate==1'],
    });
    const shared = claimThresholds({ mode: 'shared', kill: true, restart: true, vus: 7 });
    expect(shared).toMatchObject({
      sessions_lost: ['count==0'],
      'failed_requests{kind:write}': ['count<=7'],
      'failed_requests{class:4xx}': ['count==0'],
      'http_req_failed{kind:read}': ['rate<=0.001'],
    });
    const sticky = claimThresholds({ mode: 'sticky', kill: true, restart: true, vus: 7 });
    expect(sticky).toMatchObject({ sessions_lost: ['count>0', 'count<=7'], 'sessions_lost{answer:home}': ['count==0'], sessions_lost_beyond_share: ['count==0'] });
    expect(claimThresholds({ mode: 'sticky', kill: true, restart: false, vus: 7 }).sessions_lost).toEqual(['count>0', 'count<=7']);
    expect(lossesPerVu({ mode: 'shared', kill: true })).toBe(0);
    expect(lossesPerVu({ mode: 'sticky', kill: true })).toBe(1);
  });
});

describe('judge of a store fault (redis-restart, redis-primary-kill)', () => {
  /** Every threshold k6 runs for a store fault, all passed. */
  const passedFault = (fault: 'redis-restart' | 'redis-primary-kill') => {
    const out: Record<string, Record<string, boolean>> = {};
    for (const [metric, sources] of Object.entries(claimThresholds({ mode: 'shared', kill: true, restart: true, vus: VUS, fault })))
      out[metric] = Object.fromEntries(sources.map((s) => [s, true]));
    return out;
  };
  /** Redis SIGKILLed at 6 s, ready again at 14 s: session requests answered a node's 503 in between, nothing else failed. */
  function restartRun(): JudgeInput {
    return {
      ...sharedRun(),
      fault: 'redis-restart',
      killedNode: 'redis',
      killedNodeServedBeforeKill: null,
      requestsByKind: { read: 2000, write: 900, login: VUS, noSession: 300 },
      failures: [
        { t: 6.1, kind: 'read', status: '503', vu: '1' },
        { t: 13.9, kind: 'write', status: '503', vu: '2' },
      ],
      restartAtS: 14,
      readyAtS: 14.1,
      endS: 30,
      writeOutageS: 7.8,
      acknowledgedWritesLost: 0,
      k6: { exitCode: 0, thresholds: passedFault('redis-restart') },
    };
  }
  const primaryKillRun = (): JudgeInput => ({
    ...restartRun(),
    fault: 'redis-primary-kill',
    killedNode: 'redis-1',
    restartAtS: null,
    readyAtS: null,
    k6: { exitCode: 0, thresholds: passedFault('redis-primary-kill') },
  });

  it('holds the runs that show the claims', () => {
    expect(judge(restartRun())).toMatchObject({ held: true, problems: [] });
    expect(judge(primaryKillRun())).toMatchObject({ held: true, problems: [] });
  });

  // Each run below breaks one claim and nothing else: the judge must say which (one problem, naming it).
  const only = (r: JudgeInput) => {
    const v = judge(r);
    expect(v.held).toBe(false);
    expect(v.problems).toHaveLength(1);
    return v.problems[0];
  };

  it("a failure other than a node's JSON 503 (nginx's 502, a network error) fails it", () => {
    const withFailure = (status: string) => ({ ...restartRun(), failures: [...restartRun().failures, { t: 7, kind: 'read', status, vu: '5' }] });
    expect(only(withFailure('502'))).toMatch(/^1 failure\(s\) other than a node's 503 \(502\)$/);
    expect(only(withFailure('0'))).toMatch(/^1 failure\(s\) other than a node's 503 \(0\)$/);
    expect(only({ ...primaryKillRun(), failures: [{ t: 7, kind: 'write', status: '500', vu: '5' }] })).toMatch(/other than a node's 503 \(500\)/);
  });

  it('a request that needs no session failing, even with a 503, fails it', () => {
    expect(only({ ...restartRun(), failures: [...restartRun().failures, { t: 7, kind: 'noSession', status: '503', vu: '5' }] })).toMatch(
      /^1 request\(s\) that need no session failed$/,
    );
  });

  it('a failure before the fault or well after the store is back fails it', () => {
    expect(only({ ...restartRun(), failures: [{ t: 6 - LIMITS.killSlackS - 0.1, kind: 'read', status: '503', vu: '1' }] })).toMatch(
      /^1 failure\(s\) outside the outage \(first at 5\.4s\)$/,
    );
    expect(only({ ...restartRun(), failures: [{ t: 14.1 + LIMITS.killWindowS + 0.1, kind: 'read', status: '503', vu: '1' }] })).toMatch(/outside the outage/);
    // Without a readiness (a primary kill), the outage may last until the run's end, not after it.
    expect(only({ ...primaryKillRun(), failures: [{ t: 30 + LIMITS.killWindowS + 0.1, kind: 'read', status: '503', vu: '1' }] })).toMatch(/outside the outage/);
  });

  it('a session lost across a Redis restart (AOF) fails it', () => {
    expect(only({ ...restartRun(), sessionsLost: 2 })).toMatch(/^2 session\(s\) lost across the Redis restart$/);
  });

  it("k6's verdict counts as for a node fault: a failed or a missing store-fault threshold fails it", () => {
    const failing = passedFault('redis-restart');
    failing['failed_requests{status:502}']!['count==0'] = false;
    expect(only({ ...restartRun(), k6: { exitCode: 0, thresholds: failing } })).toMatch(/threshold\(s\) failed: failed_requests\{status:502\}: count==0/);
    const loose = passedFault('redis-primary-kill');
    delete loose['failed_requests{kind:noSession}'];
    expect(only({ ...primaryKillRun(), k6: { exitCode: 0, thresholds: loose } })).toMatch(/did not run the threshold\(s\) failed_requests\{kind:noSession\}: count==0/);
  });
});

describe('analysis', () => {
  it('percentile is nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 95)).toBe(95);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(percentile([], 50)).toBeNull();
  });

  const T0 = Date.parse('2026-11-22T06:00:00Z');
  const point = (ms: number, metric: string, value: number, tags: Record<string, string>) =>
    JSON.stringify({ metric, type: 'Point', data: { time: new Date(T0 + ms).toISOString(), value, tags: { scenario: 'survival', ...tags } } });

  /** k6 JSON lines as `--out json=FILE.gz` writes them: a Metric header line, then Points. */
  function fixture(): string {
    const lines = [JSON.stringify({ type: 'Metric', data: { name: 'http_reqs', type: 'counter' }, metric: 'http_reqs' })];
    // Second 0: 4 reads on app-1/app-2 (durations 1..4 ms); second 1: a failed write and a loss.
    for (let i = 0; i < 4; i++) {
      lines.push(point(i * 100, 'http_reqs', 1, { kind: 'read' }), point(i * 100, 'http_req_duration', i + 1, { kind: 'read' }));
      lines.push(point(i * 100, 'requests_by_node', 1, { node: i % 2 ? 'app-2' : 'app-1' }));
      lines.push(point(i * 100, 'sessions_lost', 0, {}), point(i * 100, 'failed_requests', 0, {}));
    }
    lines.push(point(1200, 'http_reqs', 1, { kind: 'write' }), point(1200, 'failed_requests', 1, { kind: 'write', status: '502', class: '5xx', vu: '4', waited: '0.70' }));
    lines.push(point(1300, 'http_reqs', 1, { kind: 'read' }), point(1300, 'sessions_lost', 1, { node: 'app-1', answered_by: 'app-2', answer: 'other', kind: 'read', vu: '2' }));
    lines.push(point(1400, 'sessions_started', 1, { node: 'app-2' }), point(1400, 'vus', 4, {}));
    return lines.join('\n') + '\n';
  }

  it('readSeries: per-second counts and percentiles, every failure and loss with its tags', async () => {
    const file = path.join(tmp, 'k6.json.gz');
    fs.writeFileSync(file, zlib.gzipSync(fixture()));
    const s = await readSeries(file);
    expect(s.origin).toBe(T0);
    expect(s.seconds.map((x) => x.requests)).toEqual([4, 2]);
    expect(s.seconds[0]).toMatchObject({ byNode: { 'app-1': 2, 'app-2': 2 }, p50: 2, p95: 4, failed: 0, lost: 0 });
    expect(s.seconds[1]).toMatchObject({ failed: 1, failedByKind: { write: 1 }, lost: 1 });
    expect(s.requestsByKind).toEqual({ read: 5, write: 1 });
    // Sent 0.7 s before it failed (its `waited` tag).
    expect(s.failures.map((f) => ({ ...f, sent: Math.round(f.sent! * 1000) / 1000 }))).toEqual([{ t: 1.2, sent: 0.5, kind: 'write', status: '502', vu: '4' }]);
    expect(s.losses).toEqual([{ t: 1.3, node: 'app-1', answeredBy: 'app-2', answer: 'other', vu: '2' }]);
    expect(s.logins).toEqual([{ t: 1.4, node: 'app-2' }]);
    // The plain (not gzipped) form reads the same.
    fs.writeFileSync(path.join(tmp, 'k6.json'), fixture());
    expect(await readSeries(path.join(tmp, 'k6.json'))).toEqual(s);
  });

  it("summarizeRun: k6's thresholds, the killed node's load and the claim from one run's outputs", async () => {
    const file = path.join(tmp, 'k6-run.json.gz');
    fs.writeFileSync(file, zlib.gzipSync(fixture()));
    const series = await readSeries(file);
    const thresholds = claimThresholds({ mode: 'shared', kill: true, restart: false, vus: 4 });
    const metrics: K6Summary['metrics'] = {
      http_reqs: { type: 'counter', contains: 'default', values: { count: 6 } },
      sessions_started: { type: 'counter', contains: 'default', values: { count: 4 } },
      sessions_lost: { type: 'counter', contains: 'default', values: { count: 1 } },
      failed_requests: { type: 'counter', contains: 'default', values: { count: 1 } },
      http_req_duration: { type: 'trend', contains: 'time', values: { med: 2.5, 'p(95)': 4, 'p(99)': 4 } },
      checks: { type: 'rate', contains: 'default', values: { fails: 0, passes: 5 } },
    };
    for (const [name, sources] of Object.entries(thresholds)) {
      metrics[name] ??= { type: 'counter', contains: 'default', values: {} };
      metrics[name].thresholds = Object.fromEntries(sources.map((s) => [s, { ok: name !== 'sessions_lost' }]));
    }
    expect(k6Thresholds({ metrics })['sessions_lost']).toEqual({ 'count==0': false });
    const outcome: RunOutcome = {
      mode: 'shared',
      target: 'local',
      fault: 'node-kill',
      hostsLost: [],
      lostNodes: [],
      recoveredWall: null,
      store: 'single',
      redisPersistence: 'aof',
      nodeSettings: {},
      redisArgs: [],
      label: 'shared',
      nodes: 2,
      nodeNames: ['app-1', 'app-2'],
      vus: 4,
      durationS: 2,
      killedNode: 'app-1',
      killWall: T0 + 1000,
      restartWall: null,
      readyWall: null,
      sessionsHeld: { 'app-1': null, 'app-2': null },
      k6Exit: { code: 99, signal: null },
      summary: { metrics },
      series,
      probe: { revokesStolenCredential: true, stateBytesPerRequest: 91, serverBytesPerSession: 136 },
      files: { html: '/x/k6-shared.html', json: file, summary: '/x/s.json', log: '/x/k6.log', logs: '/x/logs' },
    };
    const run = summarizeRun(outcome);
    expect(run).toMatchObject({
      requests: 6,
      killAtS: 1,
      killedNodeServedBeforeKill: 2,
      failedByKind: { write: 1, read: 0, login: 0 },
      sessionsLost: 1,
      sessionsLostDuringOutage: 1,
      endS: 2,
      restartToReadyS: null,
      // The failed write was sent at 0.5 s, before the kill at 1 s: writes sent after it did not fail.
      writesBackAfterS: 0,
      writesBackAfterRestoreS: null,
      revokesStolenCredential: true,
      stateBytesPerRequest: 91,
      serverBytesPerSession: 136,
    });
    expect(run.k6.thresholdsPassed).toBe(false);
    expect(run.claim.held).toBe(false);
    expect(run.claim.problems).toEqual(expect.arrayContaining(['1 session(s) lost', 'k6 exited with 99 (a threshold failed)', 'k6 threshold(s) failed: sessions_lost: count==0']));
  });

  it('spreadOf: the lowest and highest of each figure per mode, over repeated runs', () => {
    const run = (mode: 'shared' | 'sticky', requests: number, p95Ms: number, sessionsLost: number) =>
      ({ mode, requests, p50Ms: p95Ms / 2, p95Ms, p99Ms: p95Ms * 2, sessionsLost, failedRequests: 1 }) as RunSummary;
    const s = spreadOf([run('shared', 100, 5, 0), run('sticky', 90, 3, 10), run('shared', 120, 7.5, 0), run('sticky', 95, 4, 12), run('shared', 110, 6, 0)]);
    expect(s.shared).toEqual({ runs: 3, requests: [100, 120], p50Ms: [2.5, 3.75], p95Ms: [5, 7.5], p99Ms: [10, 15], sessionsLost: [0, 0], failedRequests: [1, 1] });
    expect(s.sticky).toMatchObject({ runs: 2, requests: [90, 95], p95Ms: [3, 4], sessionsLost: [10, 12] });
  });

  it("reads real k6 output: a sticky run's losses, failures and logins; the old routing's second loss is refused", async () => {
    // fixtures/k6-sticky.jsonl: the lines of `npm run experiment -- failover --repeat 3` (sticky, run 1:
    // 20 VUs, SIGKILL app-2 at 20.5 s, which held 10 sessions; ready again at 32 s) that the judge
    // reads: the first sample (second 0), every loss, every failure, every login. It was recorded
    // with the consistent hash on a fixed route cookie that nginx used before the cookie was
    // re-pinned (infra/nginx/render.sh): the same 10 users were lost again after the restart.
    const s = await readSeries(path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'k6-sticky.jsonl'));
    const killAtS = 20.5;
    const readyAtS = 32;
    const during = s.losses.filter((l) => l.t >= killAtS && l.t < readyAtS);
    const after = s.losses.filter((l) => l.t >= readyAtS);
    expect(s.losses.length).toBe(20);
    expect(during.length).toBe(10);
    expect(during.every((l) => l.node === 'app-2' && l.answeredBy !== 'app-2' && l.answer === 'other')).toBe(true);
    expect(after.every((l) => l.answeredBy === 'app-2' && l.node !== 'app-2')).toBe(true);
    expect(after.map((l) => l.vu).sort()).toEqual(during.map((l) => l.vu).sort());
    expect(s.failures.map((f) => [f.kind, f.status])).toEqual([
      ['write', '502'],
      ['write', '502'],
      ['write', '502'],
    ]);
    expect(s.logins.length).toBe(40);
    const run: JudgeInput = {
      mode: 'sticky',
      vus: 20,
      requestsByKind: { read: 9000, write: 4000, login: 40 },
      sessionsTotal: s.logins.length,
      sessionsLost: s.losses.length,
      checkFailures: 0,
      failures: s.failures,
      losses: s.losses,
      killedNode: 'app-2',
      killedNodeSessions: 10,
      killedNodeServedBeforeKill: 1000,
      killAtS,
      restartAtS: 30.4,
      readyAtS,
      endS: s.seconds.length,
      k6: { exitCode: 0, thresholds: passed('sticky', true, true, 20) },
    };
    // The outage alone holds the claim; the losses after the restart are what re-pinning removed.
    const outageOnly = { ...run, losses: during, sessionsLost: during.length, sessionsTotal: s.logins.length - after.length };
    expect(judge(outageOnly)).toMatchObject({ held: true, problems: [] });
    expect(judge(run).problems).toEqual(expect.arrayContaining(['10 session(s) lost after the restart (a route cookie led back to the restarted node)']));
    // Had app-2 said it held 11, the outage would not hold the claim either.
    expect(judge({ ...outageOnly, killedNodeSessions: 11 }).held).toBe(false);
  });
});
