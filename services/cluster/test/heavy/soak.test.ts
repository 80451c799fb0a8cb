import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/cluster.js';
import { judge, type Sample, type SoakReport } from '../../src/soak/run.js';

// A short `npm run soak`: real cluster (Redis, 2 nodes, nginx), 20 s of churn with 4 s / 10 s
// lifetimes, 20 s quiet. The full soak (8 min per mode) is `npm run soak`, not part of npm test.
const CLI = path.join(REPO_ROOT, 'services/cluster/dist/soak/cli.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
}

it('shared: churn leaves sessions and index entries while it runs, and nothing after the quiet period', { timeout: 180_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-soak-test-'));
  const r = await run([
    '--mode',
    'shared',
    '--nodes',
    '2',
    '--duration',
    '20s',
    '--quiet',
    '20s',
    '--idle',
    '4s',
    '--absolute',
    '10s',
    '--users',
    '6',
    '--pool',
    '100',
    '--every',
    '10s',
    '--warmup',
    '5s',
    '--out',
    out,
  ]);
  if (r.code !== 0) console.log(r.stdout, r.stderr);
  expect(r.stdout).toMatch(/t=\d+s +churn req \d+ err 0 p95 [\d.]+ms/);
  expect(r.stdout).toMatch(/redis s:\d+ idx:\d+ \(members \d+ live, \d+ dead\) rl:\d+ mem [\d.]+MB/);
  expect(r.stdout).toMatch(/app-1 rss [\d.]+MB heap [\d.]+MB fds \d+ sess \d+/);
  expect(r.stdout).toMatch(/everything came back down/);
  expect(r.code).toBe(0);

  const report = JSON.parse(fs.readFileSync(path.join(out, 'soak-shared.json'), 'utf8')) as SoakReport;
  // The churn did what it says: logins, logouts and abandoned sessions, no errors.
  expect(report.totals.logins).toBeGreaterThan(20);
  expect(report.totals.logouts).toBeGreaterThan(5);
  expect(report.totals.abandoned).toBeGreaterThan(5);
  expect(report.totals.errors).toBe(0);
  // While it ran there was state to come back down: live sessions and index members in Redis.
  const churn = report.samples.filter((s) => s.phase === 'churn');
  expect(Math.max(...churn.map((s) => s.liveSessions ?? 0))).toBeGreaterThan(0);
  expect(Math.max(...churn.map((s) => s.redis?.indexMembers ?? 0))).toBeGreaterThan(0);
  expect(churn.every((s) => Object.values(s.nodes).every((n) => n.up && n.rssBytes! > 0 && n.heapUsedBytes! > 0))).toBe(true);
  // And after the quiet period none.
  const end = report.samples.at(-1)!;
  expect(end.phase).toBe('end');
  expect(end.liveSessions).toBe(0);
  expect(end.redis).toMatchObject({ sessionKeys: 0, indexKeys: 0, indexMembers: 0 });
  expect(report.checks.map((c) => c.what)).toEqual([
    'every session gone',
    'every index entry gone',
    'app-1 heap back within 20 % of its start',
    'app-2 heap back within 20 % of its start',
    'no request failed',
  ]);
  expect(report.passed).toBe(true);
  fs.rmSync(out, { recursive: true, force: true });
});

describe('the verdict', () => {
  const node = (heap: number, extra: Partial<Sample['nodes'][string]> = {}) => ({
    up: true,
    rssBytes: 1,
    heapUsedBytes: heap,
    openFds: 1,
    sessionsActive: 0,
    indexSessions: null,
    indexUsers: null,
    ...extra,
  });
  const sample = (over: Partial<Sample>): Sample => ({
    atS: 0,
    phase: 'end',
    requests: 0,
    errors: 0,
    errorKinds: {},
    p95Ms: null,
    logins: 0,
    logouts: 0,
    abandoned: 0,
    liveSessions: 0,
    redis: null,
    nodes: { 'app-1': node(10e6) },
    ...over,
  });
  const totals = { requests: 100, errors: 0, errorKinds: {}, p95Ms: 1, logins: 10, logouts: 5, abandoned: 5, distinctUsersPossible: 10 };
  const redis = { sessionKeys: 0, indexKeys: 0, limiterKeys: 0, otherKeys: 0, indexMembers: 0, indexMembersDead: 0, usedMemoryBytes: 1 };

  it('fails for a session left, an index entry left, a heap 30 % up, a failed request', () => {
    const end = sample({ liveSessions: 3, redis: { ...redis, sessionKeys: 3, indexKeys: 2, indexMembers: 5, indexMembersDead: 5 } });
    const checks = judge({ mode: 'shared', heapTolerance: 0.2 }, end, { 'app-1': 10e6 }, { 'app-1': 13e6 }, { ...totals, errors: 1 });
    expect(checks.map((c) => [c.what, c.held])).toEqual([
      ['every session gone', false],
      ['every index entry gone', false],
      ['app-1 heap back within 20 % of its start', false],
      ['no request failed', false],
    ]);
    expect(checks[1]!.detail).toBe('2 idx:* key(s) with 5 member(s) (5 dead)');
  });

  it('holds when everything came back down (heap 15 % up is within 20 %)', () => {
    const checks = judge({ mode: 'shared', heapTolerance: 0.2 }, sample({ redis }), { 'app-1': 10e6 }, { 'app-1': 11.5e6 }, totals);
    expect(checks.every((c) => c.held)).toBe(true);
  });

  it('sticky: the in-memory index is judged from the node gauges, and a node without them fails the check', () => {
    const without = judge({ mode: 'sticky', heapTolerance: 0.2 }, sample({}), { 'app-1': 10e6 }, { 'app-1': 10e6 }, totals);
    expect(without[1]).toMatchObject({ what: 'every index entry gone', held: false });
    expect(without[1]!.detail).toMatch(/cannot be checked: app-1 export no session_cluster_user_index_sessions/);
    const left = judge(
      { mode: 'sticky', heapTolerance: 0.2 },
      sample({ nodes: { 'app-1': node(10e6, { indexSessions: 0, indexUsers: 4 }) } }),
      { 'app-1': 10e6 },
      { 'app-1': 10e6 },
      totals,
    );
    expect(left[1]).toMatchObject({ held: false, detail: 'app-1: 0 id(s), 4 user map(s)' });
    const gone = judge(
      { mode: 'sticky', heapTolerance: 0.2 },
      sample({ nodes: { 'app-1': node(10e6, { indexSessions: 0, indexUsers: 0 }) } }),
      { 'app-1': 10e6 },
      { 'app-1': 10e6 },
      totals,
    );
    expect(gone[1]!.held).toBe(true);
  });
});
