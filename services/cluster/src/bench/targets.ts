import { median } from '../lib/stats.js';

/**
 * The pure arithmetic of the benchmark's judgement: how much a figure moved from round to round,
 * whether two configurations' rounds overlap, and the targets of issue #25 computed from one run.
 */

/** Round-to-round spread: (highest − lowest) / median, in percent (0 for a single round). */
export function spreadPct(values: number[]): number {
  if (!values.length) return NaN;
  const mid = median(values);
  return mid === 0 ? 0 : ((Math.max(...values) - Math.min(...values)) / mid) * 100;
}

/** One round's node figures, part by part (µs per request; major collections; steal in percent of the node's core; the core-speed probe's µs, null without it). */
export interface RoundFigures {
  nodeCpuUs: number;
  mainThreadUs: number;
  otherThreadsUs: number;
  gcPauseUs: number;
  majorGcs: number;
  stealPct: number;
  coreSpeedUs: number | null;
}

/** The costliest round minus the cheapest, part by part; and how much longer the core-speed probe took in the costliest, in percent (null without it). */
export type RoundGap = Omit<RoundFigures, 'coreSpeedUs'> & { coreSlowerPct: number | null };

/**
 * Where a round-to-round spread lives: the round whose node CPU per request was highest minus the
 * lowest, part by part (all 0 for a single round).
 */
export function roundGapOf(rounds: RoundFigures[]): RoundGap {
  const byCpu = [...rounds].sort((a, b) => a.nodeCpuUs - b.nodeCpuUs);
  const [lo, hi] = [byCpu[0]!, byCpu.at(-1)!];
  const gap = (k: Exclude<keyof RoundFigures, 'coreSpeedUs'>, digits = 0) => Math.round((hi[k] - lo[k]) * 10 ** digits) / 10 ** digits;
  return {
    nodeCpuUs: gap('nodeCpuUs'),
    mainThreadUs: gap('mainThreadUs'),
    otherThreadsUs: gap('otherThreadsUs'),
    gcPauseUs: gap('gcPauseUs'),
    majorGcs: gap('majorGcs'),
    stealPct: gap('stealPct', 1),
    coreSlowerPct: hi.coreSpeedUs === null || lo.coreSpeedUs === null ? null : Math.round((hi.coreSpeedUs / lo.coreSpeedUs - 1) * 1000) / 10,
  };
}

/** One round: a figure, and a reference read in the same window (null: none was read). */
export type AgainstReference = { value: number; reference: number | null };

/** Each round's value over its reference; null when a round has no reference. */
function ratios(rounds: AgainstReference[]): number[] | null {
  if (!rounds.length || rounds.some((r) => r.reference === null || r.reference <= 0)) return null;
  return rounds.map((r) => r.value / r.reference!);
}

/**
 * The round-to-round spread of a figure measured against a reference read in the same window: the
 * spread of the rounds' ratios (spreadPct does not depend on their scale). A machine that runs
 * every process slower for a while moves both, and the ratio cancels that part (not nginx's own
 * noise: a cell can spread more against nginx than raw). Null when a round has no reference.
 */
export function spreadAgainstPct(rounds: AgainstReference[]): number | null {
  const r = ratios(rounds);
  return r && spreadPct(r);
}

/**
 * Each round's value over its reference from the same window (the node's CPU per request over
 * nginx's run time per request): the rounds' [lowest, highest], to 2 decimals. Null as above.
 */
export function rangeAgainst(rounds: AgainstReference[]): [number, number] | null {
  const r = ratios(rounds)?.map((x) => Math.round(x * 100) / 100);
  return r ? [Math.min(...r), Math.max(...r)] : null;
}

/**
 * Whether `a` costs more or less than `b` in every round, or neither: the raw ranges apart, and
 * where both carry them, the ranges against nginx apart the same way. Configurations run one after
 * another, and the machine's speed can drift between them (in one run the same fixed work took
 * 244 ms on the node's core at the start and 135 ms later): raw ranges alone then set apart two
 * configurations that cost the same.
 */
export function differs(
  a: { raw: [number, number]; againstNginx: [number, number] | null },
  b: { raw: [number, number]; againstNginx: [number, number] | null },
): 'more' | 'less' | null {
  // Ranges [lowest, highest] apart: a difference that survived every round.
  const side = (x: [number, number], y: [number, number]) => (x[0] > y[1] ? 'more' : x[1] < y[0] ? 'less' : null);
  const raw = side(a.raw, b.raw);
  if (raw === null || a.againstNginx === null || b.againstNginx === null) return raw;
  return side(a.againstNginx, b.againstNginx) === raw ? raw : null;
}

/** The figures a target reads: one configuration's node CPU per request and p99 at the fixed offered rate. */
export interface TargetInput {
  nodeCpuUs: number;
  nodeCpuRange: [number, number];
  /** The rounds' node CPU per request over nginx's in the same window (rangeAgainst); null if not read. */
  nodeCpuAgainstNginxRange: [number, number] | null;
  p99Ms: number;
}

export interface TargetOutcome {
  name: string;
  met: boolean;
  /** The measured ratio (medians), and the bound it is held to. */
  ratio: number;
  bound: number;
  /** The figures, as a sentence: what was compared with what. */
  detail: string;
}

const r2 = (n: number) => n.toFixed(2);
const range = (r: [number, number]) => `${Math.round(r[0])}–${Math.round(r[1])}`;

/** Two configurations' rounds against nginx (rangeAgainst), as a clause: `; against nginx 5.6–6.1<joiner>5.8–6.2` ('' unless both were read). */
export function bothAgainstNginx(a: [number, number] | null, b: [number, number] | null, joiner: string): string {
  return a && b ? `; against nginx ${a.join('–')}${joiner}${b.join('–')}` : '';
}

/**
 * Issue #25's targets for a shared read against its peers, all at the same fixed offered rate:
 * node CPU ≤ 0.80× the textbook's with the rounds' ranges apart (raw and against nginx: differs); node CPU within 1.10× sticky's;
 * p99 ≤ 1.5× the no-session route's.
 */
export function judgeTargets(x: { shared: TargetInput; textbook: TargetInput; sticky: TargetInput; limit: TargetInput }): TargetOutcome[] {
  const { shared, textbook, sticky, limit } = x;
  const vsTextbook = shared.nodeCpuUs / textbook.nodeCpuUs;
  const apart =
    differs({ raw: shared.nodeCpuRange, againstNginx: shared.nodeCpuAgainstNginxRange }, { raw: textbook.nodeCpuRange, againstNginx: textbook.nodeCpuAgainstNginxRange }) ===
    'less';
  const vsSticky = shared.nodeCpuUs / sticky.nodeCpuUs;
  const p99 = shared.p99Ms / limit.p99Ms;
  return [
    {
      name: 'shared read: node CPU ≤ 0.80× textbook, ranges apart',
      met: vsTextbook <= 0.8 && apart,
      ratio: vsTextbook,
      bound: 0.8,
      detail: `${r2(vsTextbook)}× (shared ${Math.round(shared.nodeCpuUs)} µs, rounds ${range(shared.nodeCpuRange)}; textbook ${Math.round(textbook.nodeCpuUs)} µs, rounds ${range(textbook.nodeCpuRange)}${bothAgainstNginx(shared.nodeCpuAgainstNginxRange, textbook.nodeCpuAgainstNginxRange, ' and ')}; ranges ${apart ? 'apart' : 'overlap'})`,
    },
    {
      name: 'shared read: node CPU ≤ 1.10× sticky',
      met: vsSticky <= 1.1,
      ratio: vsSticky,
      bound: 1.1,
      detail: `${r2(vsSticky)}× (shared ${Math.round(shared.nodeCpuUs)} µs, rounds ${range(shared.nodeCpuRange)}; sticky ${Math.round(sticky.nodeCpuUs)} µs, rounds ${range(sticky.nodeCpuRange)})`,
    },
    {
      name: 'shared read: p99 ≤ 1.5× the no-session route',
      met: p99 <= 1.5,
      ratio: p99,
      bound: 1.5,
      detail: `${r2(p99)}× (shared ${r2(shared.p99Ms)} ms, no session ${r2(limit.p99Ms)} ms)`,
    },
  ];
}
