import { describe, expect, it } from 'vitest';
import { ceiling, errorPct, mixCost, perCore, predictThroughput, unitsNeeded, type ClassCost } from '../../src/bench/capacity-model.js';
import { parsePacedSummary } from '../../src/bench/paced.js';
import { differs, judgeTargets, rangeAgainst, roundGapOf, spreadAgainstPct, spreadPct } from '../../src/bench/targets.js';
import { parseCoreTicks, parseProcStat, stealPct } from '../../src/lib/cpu.js';
import { parseGcPauses } from '../../src/lib/node-metrics.js';
import { pinnedCommand, pinPlan } from '../../src/lib/pin.js';

// The benchmark's pure arithmetic, on hand-made figures: no process is started.

describe('/proc/<pid>/stat', () => {
  it('reads state, ppid, utime and stime after a command name holding spaces and parentheses', () => {
    // Fields 14 and 15 of proc(5) are utime and stime; the name "(my (odd) name)" must not shift them.
    const line = '4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 300 0 0 0 1234 56 0 0 20 0 11 0 100 0 0';
    expect(parseProcStat(line)).toEqual({ state: 'S', ppid: 17, utimeTicks: 1234, stimeTicks: 56 });
  });
  it('refuses what is not a stat line', () => {
    expect(() => parseProcStat('garbage')).toThrow(/not a \/proc\/<pid>\/stat line/);
    expect(() => parseProcStat('1 (x) S')).toThrow(/not a \/proc\/<pid>\/stat line/);
  });
});

describe("/proc/stat steal of the node's core", () => {
  const at = (steal1: number, idle1: number) =>
    `cpu  900 0 300 5000 10 0 5 ${steal1 + 7} 0 0\ncpu0 500 0 200 2000 5 0 3 7 0 0\ncpu1 400 0 100 ${idle1} 5 0 2 ${steal1} 40 0\nintr 1 2 3\n`;
  it("reads steal from the named core only, and the core's ticks without guest time", () => {
    expect(parseCoreTicks(at(20, 3000), 1)).toEqual({ steal: 20, total: 400 + 100 + 3000 + 5 + 2 + 20 });
    expect(parseCoreTicks(at(20, 3000), 0).steal).toBe(7);
  });
  it("is the stolen share of the core's time between two readings", () => {
    // 60 ticks elapsed on cpu1: 20 idle, 10 more user, 30 stolen.
    expect(stealPct(parseCoreTicks(at(20, 3000), 1), { steal: 50, total: 3527 + 60 })).toBeCloseTo(50, 5);
    expect(stealPct({ steal: 5, total: 10 }, { steal: 5, total: 10 })).toBe(0);
  });
  it('refuses a core /proc/stat does not list', () => {
    expect(() => parseCoreTicks(at(1, 1), 7)).toThrow(/no line for cpu7/);
  });
});

describe('round-to-round spread', () => {
  it('is (highest − lowest) / median in percent', () => {
    expect(spreadPct([100, 105, 110])).toBeCloseTo(9.52, 2);
    expect(spreadPct([100, 120])).toBeCloseTo(18.18, 2);
    expect(spreadPct([500])).toBe(0);
    expect(spreadPct([])).toBeNaN();
  });
  it('a difference is claimed only when the ranges do not touch', () => {
    const raw = (a: [number, number], b: [number, number]) => differs({ raw: a, againstNginx: null }, { raw: b, againstNginx: null });
    expect(raw([1, 2], [3, 4])).toBe('less');
    expect(raw([3, 4], [1, 2])).toBe('more');
    expect(raw([1, 3], [3, 4])).toBeNull();
    expect(raw([1, 5], [2, 3])).toBeNull();
  });
  it('and, where both were read against nginx, only when those ranges lie apart the same way', () => {
    // One run's A/B: auto-pipelining measured while the machine ran slow, without it once it ran
    // fast. Raw ranges apart; against nginx in the same windows, overlapping.
    const on = { raw: [1067, 1161] as [number, number], againstNginx: [5.9, 6.4] as [number, number] };
    const off = { raw: [555, 706] as [number, number], againstNginx: [5.0, 6.0] as [number, number] };
    expect(differs(on, off)).toBeNull();
    expect(differs(on, { ...off, againstNginx: [4.8, 5.5] })).toBe('more');
    expect(differs(on, { ...off, againstNginx: [6.5, 7] })).toBeNull(); // apart, but the other way
    expect(differs(on, { ...off, againstNginx: null })).toBe('more');
  });
  it("each round's value over its reference: the rounds' lowest and highest", () => {
    expect(
      rangeAgainst([
        { value: 800, reference: 160 },
        { value: 1000, reference: 160 },
        { value: 600, reference: 150 },
      ]),
    ).toEqual([4, 6.25]);
    expect(rangeAgainst([{ value: 800, reference: null }])).toBeNull();
    expect(rangeAgainst([])).toBeNull();
  });
});

describe("a node's garbage-collector pauses", () => {
  // As a node's /metrics prints them (prom-client 15, default labels first): buckets are not sums.
  const text = [
    '# TYPE session_cluster_nodejs_gc_duration_seconds histogram',
    'session_cluster_nodejs_gc_duration_seconds_bucket{le="0.01",node="app-1",kind="minor"} 7',
    'session_cluster_nodejs_gc_duration_seconds_sum{node="app-1",kind="minor"} 0.012',
    'session_cluster_nodejs_gc_duration_seconds_count{node="app-1",kind="minor"} 7',
    'session_cluster_nodejs_gc_duration_seconds_bucket{le="+Inf",node="app-1",kind="major"} 2',
    'session_cluster_nodejs_gc_duration_seconds_sum{node="app-1",kind="major"} 0.02',
    'session_cluster_nodejs_gc_duration_seconds_count{node="app-1",kind="major"} 2',
    'session_cluster_nodejs_gc_duration_seconds_sum{node="app-1",kind="incremental"} 0.001',
    'session_cluster_nodejs_gc_duration_seconds_count{node="app-1",kind="incremental"} 3',
    'session_cluster_http_requests_total{node="app-1",route="/api/ping"} 40',
  ].join('\n');
  it("sums every kind's seconds and counts the major collections", () => {
    const gc = parseGcPauses(text);
    expect(gc.pauseSeconds).toBeCloseTo(0.033, 9);
    expect(gc.majors).toBe(2);
  });
  it('is nothing for a node that has not collected yet', () => {
    expect(parseGcPauses('session_cluster_http_requests_total{node="app-1"} 40\n')).toEqual({ pauseSeconds: 0, majors: 0 });
  });
});

describe('where a spread lives', () => {
  const round = (nodeCpuUs: number, mainThreadUs: number, gcPauseUs: number, majorGcs: number, stealPct: number, coreSpeedUs: number | null = null) => ({
    nodeCpuUs,
    mainThreadUs,
    otherThreadsUs: nodeCpuUs - mainThreadUs,
    gcPauseUs,
    majorGcs,
    stealPct,
    coreSpeedUs,
  });
  it('is the costliest round minus the cheapest, part by part, whatever their order', () => {
    // The middle round's parts must not enter: only the extremes of node CPU are compared.
    const rounds = [round(700, 600, 20, 1, 0.1, 150_000), round(900, 650, 90, 3, 0.04, 180_000), round(650, 640, 5, 0, 2, 160_000)];
    expect(roundGapOf(rounds)).toEqual({ nodeCpuUs: 250, mainThreadUs: 10, otherThreadsUs: 240, gcPauseUs: 85, majorGcs: 3, stealPct: -2, coreSlowerPct: 12.5 });
    expect(roundGapOf([...rounds].reverse())).toEqual(roundGapOf(rounds));
  });
  it('is 0 in every part for one round, and says nothing of the core without the probe', () => {
    expect(roundGapOf([round(700, 600, 20, 1, 0.5, 170_000)])).toEqual({
      nodeCpuUs: 0,
      mainThreadUs: 0,
      otherThreadsUs: 0,
      gcPauseUs: 0,
      majorGcs: 0,
      stealPct: 0,
      coreSlowerPct: 0,
    });
    expect(roundGapOf([round(700, 600, 20, 1, 0.5), round(800, 600, 20, 1, 0.5)]).coreSlowerPct).toBeNull();
  });
  it('against a reference in the same window: a round where both rose together no longer spreads', () => {
    // The machine ran 25 % slower in the second round and 25 % faster in the third: node and nginx alike.
    expect(
      spreadAgainstPct([
        { value: 800, reference: 160 },
        { value: 1000, reference: 200 },
        { value: 600, reference: 120 },
      ]),
    ).toBeCloseTo(0, 9);
    // The reference held still: the spread is the raw one.
    expect(
      spreadAgainstPct([
        { value: 800, reference: 160 },
        { value: 1000, reference: 160 },
        { value: 900, reference: 160 },
      ]),
    ).toBeCloseTo(spreadPct([800, 1000, 900]), 9);
    expect(spreadAgainstPct([{ value: 800, reference: null }])).toBeNull();
    expect(spreadAgainstPct([{ value: 800, reference: 0 }])).toBeNull();
  });
});

describe('the peer targets', () => {
  const at = (us: number, range: [number, number], p99Ms = 2, againstNginx: [number, number] | null = null) => ({
    nodeCpuUs: us,
    nodeCpuRange: range,
    nodeCpuAgainstNginxRange: againstNginx,
    p99Ms,
  });
  it('are met with the ratios inside their bounds and the textbook ranges apart', () => {
    const t = judgeTargets({ shared: at(400, [390, 410], 2), textbook: at(600, [590, 620]), sticky: at(380, [370, 390]), limit: at(300, [290, 310], 1.5) });
    expect(t.map((x) => x.met)).toEqual([true, true, true]);
    expect(t[0]!.ratio).toBeCloseTo(0.667, 3);
  });
  it('miss the textbook target when the ratio is ≤ 0.80 but the rounds overlap, and each bound alone', () => {
    const overlap = judgeTargets({ shared: at(400, [380, 560]), textbook: at(600, [550, 620]), sticky: at(400, [390, 410]), limit: at(300, [290, 310]) });
    expect(overlap[0]).toMatchObject({ met: false });
    expect(overlap[0]!.detail).toMatch(/ranges overlap/);
    const slow = judgeTargets({ shared: at(500, [490, 510], 4), textbook: at(600, [590, 620]), sticky: at(400, [390, 410]), limit: at(300, [290, 310], 2) });
    expect(slow.map((x) => x.met)).toEqual([false, false, false]);
    expect(slow[1]!.ratio).toBeCloseTo(1.25, 3);
    expect(slow[2]!.ratio).toBeCloseTo(2, 3);
  });
  it('miss the textbook target when the raw ranges are apart but, against nginx, overlap', () => {
    const drift = judgeTargets({
      shared: at(400, [390, 410], 2, [3.9, 4.2]),
      textbook: at(600, [590, 620], 2, [4.0, 4.4]),
      sticky: at(380, [370, 390]),
      limit: at(300, [290, 310], 1.5),
    });
    expect(drift[0]).toMatchObject({ met: false });
    expect(drift[0]!.detail).toMatch(/against nginx/);
  });
});

describe('the capacity model', () => {
  const cost = (node: number, redis = 0, nginx = 0, postgres = 0): ClassCost => ({ node, nginx, redis, postgres });
  it('one core serves 1e6 / µs per request', () => {
    expect(perCore(500)).toBe(2000);
    expect(perCore(0)).toBe(Infinity);
  });
  it('weights each operation by its share of the mix, and refuses a mix that does not sum to 1', () => {
    const mixed = mixCost({ read: cost(400, 20), me: cost(600, 60), login: cost(5000, 300) }, { read: 0.9, me: 0.09, login: 0.01 });
    expect(mixed.node).toBeCloseTo(0.9 * 400 + 0.09 * 600 + 0.01 * 5000, 6);
    expect(mixed.redis).toBeCloseTo(0.9 * 20 + 0.09 * 60 + 0.01 * 300, 6);
    expect(() => mixCost({ read: cost(1), me: cost(1), login: cost(1) }, { read: 0.5, me: 0.1, login: 0.1 })).toThrow(/sum to 1/);
  });
  it('sizes single-threaded units at 70 % CPU, rounding up, at least one where the class works at all', () => {
    // 10k req/s × 464 µs = 4.64 s of CPU per second; at 0.7 per unit: 6.63 → 7.
    expect(unitsNeeded(10_000, 464)).toBe(7);
    expect(unitsNeeded(1_000_000, 464)).toBe(663);
    expect(unitsNeeded(10, 1)).toBe(1);
    expect(unitsNeeded(10_000, 0)).toBe(0);
    // A Redis primary at 25 µs per request reaches 70 % at 28,000 req/s.
    expect(ceiling(25)).toBe(28_000);
  });
  it('predicts saturation throughput: bounded by the nodes, then by the machine', () => {
    // One node at 250 µs: 4000 req/s by its core; two cores for 250 + 150 µs of everything: 5000 req/s.
    expect(predictThroughput({ nodes: 1, cores: 2, nodeUs: 250, otherUs: 150 })).toBe(4000);
    expect(predictThroughput({ nodes: 2, cores: 2, nodeUs: 250, otherUs: 150 })).toBe(5000);
    expect(predictThroughput({ nodes: 3, cores: 2, nodeUs: 250, otherUs: 150 })).toBe(5000);
    expect(errorPct(5000, 4500)).toBe(-10);
  });
});

describe('k6 summary and pinning', () => {
  it('reads requests, latency, failures and dropped iterations; the rate is over the scenario, not the graceful stop', () => {
    const r = parsePacedSummary(
      {
        metrics: {
          http_reqs: { values: { count: 2000, rate: 380 } },
          http_req_duration: { values: { med: 1.2, 'p(99)': 4.5 } },
          http_req_failed: { values: { passes: 3, fails: 1997, rate: 0.0015 } },
          dropped_iterations: { values: { count: 7 } },
        },
      },
      5,
    );
    expect(r).toEqual({ requests: 2000, rps: 400, p50Ms: 1.2, p99Ms: 4.5, errors: 3, dropped: 7 });
    expect(() => parsePacedSummary({ metrics: {} }, 5)).toThrow(/no http_reqs/);
  });
  it('puts the node on the last core and the rest on the others, or pins nothing', () => {
    expect(pinPlan(2, true)).toEqual({ pinned: true, nodes: '1', rest: '0' });
    expect(pinPlan(4, true)).toEqual({ pinned: true, nodes: '3', rest: '0-2' });
    expect(pinPlan(1, true).pinned).toBe(false);
    expect(pinPlan(8, false).pinned).toBe(false);
    expect(pinnedCommand(pinPlan(2, true), '0', 'k6', ['run'])).toEqual(['taskset', ['-c', '0', 'k6', 'run']]);
    expect(pinnedCommand(pinPlan(1, true), '0', 'k6', ['run'])).toEqual(['k6', ['run']]);
  });
});
