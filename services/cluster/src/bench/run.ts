import type { SessionData } from 'express-session';
import { createCodec, SESSION_PREFIX } from '@session-cluster/app/session';
import { MODE_DESCRIPTORS, SESSION_MODES, type SessionMode } from '@session-cluster/app/modes';
import { SESSIONS_PER_USER_MAX_DEFAULT } from '@session-cluster/app/config';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { down, removeRun, up, type ClusterState } from '../cluster.js';
import { coreTicks, cpuSplitSnapshot, mainThreadSplitMicros, runMicros, stealPct, withDescendants } from '../lib/cpu.js';
import { freePort, waitFor } from '../lib/ports.js';
import { median } from '../lib/stats.js';
import { coreSpeedUs } from '../lib/core-speed.js';
import { nodeLoad, parseGcPauses } from '../lib/node-metrics.js';
import { cpusAllowed, pin, pinPlan, unpin, type PinPlan } from '../lib/pin.js';
import { measureConcurrentWrites, type ConcurrentWrites } from './concurrent.js';
import { measureBytesPerSession, type BytesPerSession } from './memory.js';
import { runPaced } from './paced.js';
import { profilePair, type PairProfile, type ProfileSubject } from './profile.js';
import { differs, rangeAgainst, roundGapOf, spreadAgainstPct, spreadPct, judgeTargets, type RoundGap, type TargetOutcome } from './targets.js';
import { loginEach, runWrk, requireWrk, writeCredentials, type WrkResult } from './wrk.js';
import { resolveK6 } from '../experiment/k6.js';

/**
 * `npm run bench`: every configuration measured the same way, one at a time (no other cluster
 * running beside it): a cluster of one node behind nginx, the node pinned to a core of its own and
 * everything else (nginx, the store, the load generator, this process) to the other (lib/pin.ts).
 * Each operation is driven at a fixed offered rate (k6, paced.ts; the same rate for every
 * configuration, below the slowest one's saturation) for `rounds` rounds, the operations of a
 * cluster interleaved round by round, and then once at saturation (wrk). CPU per request is read
 * from /proc per class of process, user and system apart; each figure is the median over the
 * rounds, and the round-to-round spread of the node's CPU per request is reported beside it.
 */
export type ConfigName = 'limit' | 'textbook' | ModeConfig | VariantConfig;
/** Every session mode (modes.ts), on the same nodes, the same wrk settings, in the same rounds. */
const MODE_CONFIGS = SESSION_MODES;
type ModeConfig = SessionMode;

/**
 * Shared-mode clusters beside the modes, each differing from one of them in one thing: a setting,
 * or the store's topology. Measured in the same interleaved rounds as everything else.
 */
export const VARIANTS = {
  'shared-no-pipelining': { store: 'single', env: { REDIS_AUTO_PIPELINING: 'false' } },
  'shared-sentinel': { store: 'sentinel', env: {} },
  'shared-sentinel-wait': { store: 'sentinel', env: { REDIS_WAIT_REPLICAS: '1' } },
} as const;
type VariantConfig = keyof typeof VARIANTS;

/**
 * The A/B rows of docs/benchmarks.md: what one change buys or costs, as two clusters identical but
 * for it (`on` has it, `off` has not). `me` writes the session (its counter), `read` does not.
 */
export const AB: ReadonlyArray<{ change: string; on: ConfigName; off: ConfigName }> = [
  { change: 'ioredis auto-pipelining', on: 'shared', off: 'shared-no-pipelining' },
  { change: 'WAIT for 1 replica after each session write (`REDIS_WAIT_REPLICAS=1`, Sentinel store)', on: 'shared-sentinel-wait', off: 'shared-sentinel' },
];
export type Operation = 'read' | 'me' | 'login';

export interface Result {
  config: ConfigName;
  operation: Operation;
  rps: number;
  ratioToLimit: number;
  p50Ms: number;
  p99Ms: number;
  /** Redis commands *executed* per request (INFO commandstats: a script's inner commands count too), median over rounds. */
  redisCommandsPerRequest: number | null;
  /** The same by name (lower case). */
  redisCommandsByName: Record<string, number> | null;
  /** Redis commands the nodes *sent* per request (each node's redis_commands_total: a script call is one EVALSHA), by name. */
  redisCommandsSentByName: Record<string, number> | null;
  redisCommandsSentPerRequest: number | null;
  /** Statements the nodes sent to PostgreSQL per request (database mode; their db_queries_total), by name, and in all. */
  dbQueriesByName: Record<string, number> | null;
  dbQueriesPerRequest: number | null;
  /** The lowest and highest req/s of the rounds. */
  rpsMin: number;
  rpsMax: number;
  /**
   * CPU time per request of each class of process, in microseconds (utime + stime from /proc over
   * the measured window, divided by the requests served; median over rounds; 0 where the class is
   * not used): the physical cost, which moves far less with a noisy machine than req/s does.
   */
  nodeCpuUsPerRequest: number;
  nginxCpuUsPerRequest: number;
  redisCpuUsPerRequest: number;
  loadGeneratorCpuUsPerRequest: number;
  /**
   * The lowest and highest of the rounds: req/s, p99, each CPU figure, and the ratios to the limit
   * measured in the same round (req/s; node CPU per request).
   */
  spread: {
    rps: [number, number];
    ratioToLimit: [number, number];
    p99Ms: [number, number];
    nodeCpuUs: [number, number];
    nodeCpuRatioToLimit: [number, number];
    nginxCpuUs: [number, number];
    redisCpuUs: [number, number];
    nodeMainThreadCpuUs: [number, number];
    nodeOtherThreadsCpuUs: [number, number];
    nodeGcPauseUs: [number, number];
  };
  errors: number;
  /** The node's CPU per request split into user and system time (median over the rounds; their sum is ~nodeCpuUsPerRequest). */
  nodeUserCpuUsPerRequest: number;
  nodeSystemCpuUsPerRequest: number;
  /** PostgreSQL's CPU per request (database mode: the postmaster and its backends), median over the rounds. */
  postgresCpuUsPerRequest: number;
  /** Requests per second offered at a fixed rate (k6 constant-arrival-rate); null for the saturation run (wrk). */
  offeredRate: number | null;
  /** Whether the node ran on a core of its own and everything else on the other(s). */
  pinned: boolean;
  /** Round-to-round spread of the node's CPU per request: (highest − lowest) / median, percent. */
  nodeCpuSpreadPct: number;
  /** Requests k6 could not start on time over the rounds (the offered rate was not held when > 0); 0 at saturation. */
  dropped: number;
  /**
   * Percent of the node's core's time that the host gave another guest (steal, /proc/stat) during
   * each window: median and the rounds' range; null when nothing was pinned. On a shared host the
   * node's CPU per request rises with it.
   */
  nodeCoreStealPct: number | null;
  nodeCoreStealPctRange: [number, number] | null;
  /** Windows measured again because the node's core lost more than STEAL_LIMIT_PCT to steal (0 at saturation). */
  roundsMeasuredAgain: number;
  /**
   * The node's CPU per request in its main thread, and in its other threads (V8's compiler and
   * garbage collector helpers, libuv's pool), medians over the rounds.
   */
  nodeMainThreadCpuUsPerRequest: number;
  nodeOtherThreadsCpuUsPerRequest: number;
  /** Time the garbage collector paused the node's main thread, µs per request (median over the rounds; one decimal). */
  nodeGcPauseUsPerRequest: number;
  /** Major (mark-compact) collections in a round: the rounds' fewest and most. */
  majorGcsPerRound: [number, number];
  /**
   * Where the round-to-round spread lives: the round whose node CPU per request was highest minus
   * the lowest, part by part (µs per request; major collections; steal in points). All 0 with one round.
   */
  roundGap: RoundGap;
  /**
   * The core-speed probe (lib/core-speed.ts: CPU µs of a fixed piece of work on the node's core,
   * read before and after each window): median and the rounds' range; null at saturation or unpinned.
   */
  coreSpeedUs: number | null;
  coreSpeedUsRange: [number, number] | null;
  /**
   * The round-to-round spread of the node's CPU per request set against nginx's run time per
   * request in the same window (spreadAgainstPct; nginx's to the nanosecond, lib/cpu.ts runMicros):
   * nginx proxies the same request in every round of a configuration, on the other core, so what
   * moves both is the machine. Judged beside the raw spread (spreadTarget.metAgainstNginx); null if
   * nginx did not run in a window.
   */
  nodeCpuSpreadPctAgainstNginx: number | null;
  /** The rounds' node CPU per request over nginx's run time per request in the same window, [lowest, highest] (rangeAgainst); null as above. */
  nodeCpuAgainstNginxRange: [number, number] | null;
  /**
   * The round-to-round spread of nginx's own run time per request (spreadPct): the same requests
   * proxied in every round, so what it shows is the machine's noise in those rounds (on the other
   * core); null if nginx did not run in a window.
   */
  nginxRunSpreadPct: number | null;
}

export interface BenchReport {
  generatedAt: string;
  command: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string };
  settings: {
    rounds: number;
    seconds: number;
    saturationSeconds: number;
    connections: number;
    threads: number;
    nodes: number;
    /** The fixed offered rates, req/s: reads (read, me) and logins. */
    rate: number;
    loginRate: number;
    pinned: boolean;
    /** Which cores ran what (taskset lists), or why nothing was pinned. */
    cpuLayout: string;
    /** Wall time of the whole run, seconds. */
    wallSeconds: number;
  };
  /** Issue #25's targets, judged from this run's fixed-rate results. */
  targets: TargetOutcome[];
  /** The round-to-round spread target: node CPU per request at the fixed rate, ≤ 10 % for every configuration. */
  spreadTarget: {
    boundPct: number;
    met: boolean;
    worst: { config: string; operation: string; spreadPct: number } | null;
    /** The same bound held by the node's CPU per request set against nginx's in the same window (nodeCpuSpreadPctAgainstNginx), and its largest. */
    metAgainstNginx: boolean;
    worstAgainstNginx: { config: string; operation: string; spreadPct: number } | null;
    /** The cell where nginx's own run time per request spread the most (nginxRunSpreadPct): the machine's noise in this run. */
    worstNginx: { config: string; operation: string; spreadPct: number } | null;
  };
  /**
   * Each A/B row at the fixed rate: whether the node CPU per request differs in every round, raw and
   * set against nginx's in the same window (targets.ts differs): the ranges, and the verdict.
   */
  abClaims: Array<{
    change: string;
    operation: Operation;
    onUs: [number, number];
    offUs: [number, number];
    onAgainstNginx: [number, number] | null;
    offAgainstNginx: [number, number] | null;
    holds: boolean;
    direction: 'costs' | 'saves' | 'none';
  }>;
  /**
   * For each missed target: the two configurations profiled (node --cpu-prof) alternately at the
   * fixed rate, round by round, self time per request by package group: which holds the difference.
   */
  targetProfiles: Array<{ target: string } & PairProfile>;
  /** The scaling runs' CPU per request by class (saturation, unpinned), for the capacity check, and the cores their processes were allowed (taskset lists, one per distinct set). */
  scalingCpu: Record<'1' | '2' | '3', { node: number; nginx: number; redis: number; loadGenerator: number; cpus: string[] }>;
  results: Result[];
  redisBytesPerSession: BytesPerSession;
  /** One session, simultaneous writes through nginx: acknowledged vs kept, per configuration (medians over the rounds). */
  concurrentWrites: Array<{ config: Exclude<ConfigName, 'limit'> } & ConcurrentWrites>;
  scaling: Record<'1' | '2' | '3', number>;
  /**
   * A read at each number of stored sessions: its Redis commands (per request, by name), and the
   * commands one scrape of every node's /metrics cost (the active-session gauge is DBSIZE, never a SCAN).
   */
  storedSessions: Array<{
    stored: number;
    keys: number;
    /** Median over the rounds, and the rounds' lowest and highest. */
    rps: number;
    rpsMin: number;
    rpsMax: number;
    redisCommandsPerRequest: number;
    redisCommandsByName: Record<string, number>;
    scrapeCommands: Record<string, number>;
  }>;
}

export interface BenchOptions {
  rounds: number;
  /** Length of each round at the fixed rate. */
  seconds: number;
  /** Length of each run at saturation (wrk), and of the scaling runs. */
  saturationSeconds: number;
  connections: number;
  threads: number;
  memorySessions: number;
  storedLevels: number[];
  /** Fixed offered rates, req/s: reads and logins. */
  rate: number;
  loginRate: number;
  /** 'capacity': only what the capacity model needs (the modes and the limit, and the scaling runs). */
  scope?: 'all' | 'capacity';
  /** Only these configurations' clusters (by name: shared (with the limit), textbook, sticky, …, the variants), and nothing else (no scaling, stored sessions, writes kept or memory). */
  only?: string[];
  /** Profile each missed target's pair (default true); false: the targets are judged, not profiled. */
  profileMisses?: boolean;
  onProgress: (line: string) => void;
}

/** Demo users: user1..SESSIONS hold the sessions that reads use; logins use the others, so the
 *  per-user session cap (SESSIONS_PER_USER_MAX) never evicts a session a read depends on. */
const USERS = 200;
const SESSIONS = 100;
const LOGIN_USERS = { first: SESSIONS + 1, count: USERS - SESSIONS };

interface Target {
  state: ClusterState;
  redis: Redis | null;
  /** One line per logged-in session: the header that carries its credential (`Cookie: …` or `Authorization: Bearer …`). */
  cookieFile: string;
}

/** The processes of each class in a target (nginx: master and workers). */
function processClasses(t: Target): Record<CpuClass, number[]> {
  const of = (kind: string) => t.state.parts.filter((p) => p.kind === kind).map((p) => p.pid);
  return { node: of('app'), nginx: of('nginx').flatMap(withDescendants), redis: of('redis'), postgres: of('postgres').flatMap(withDescendants) };
}
type CpuClass = 'node' | 'nginx' | 'redis' | 'postgres';

/** The node(s) on their own core, every other process of the cluster on the rest (new PostgreSQL backends inherit the postmaster's). */
function pinTarget(t: Target, plan: PinPlan): void {
  if (!plan.pinned) return;
  pin(
    t.state.parts.filter((p) => p.kind === 'app').map((p) => p.pid),
    plan.nodes,
  );
  pin(
    t.state.parts.filter((p) => p.kind !== 'app').flatMap((p) => withDescendants(p.pid)),
    plan.rest,
  );
}

async function startTarget(
  name: string,
  nodes: number,
  mode: ModeConfig,
  profile: 'tuned' | 'textbook',
  work: string,
  env: Record<string, string> = {},
  store: 'single' | 'sentinel' = 'single',
  credentials = true,
): Promise<Target> {
  const dir = path.join(work, name);
  const { state } = await up({
    dir,
    nodes,
    mode,
    store,
    port: await freePort(),
    monitoring: false,
    demoUsers: USERS,
    // One node takes every login of a saturation run (wrk's connections at once): a hash queue that
    // holds them all, so that the run measures the hashing rather than the shedding (503) of a full queue.
    nodeEnv: { SESSION_PROFILE: profile, LOGIN_MAX_FAILURES_PER_CLIENT: '100000', LOGIN_HASH_QUEUE: '256', ...env },
  });
  const redisPart = state.parts.find((p) => p.kind === 'redis'); // with Sentinel: redis-1, the primary (no fault during a bench)
  const redis = redisPart ? new Redis({ host: '127.0.0.1', port: redisPart.port, lazyConnect: false }) : null;
  if (!credentials) return { state, redis, cookieFile: '' };
  // Log in SESSIONS users through nginx; keep each one's credential (in sticky mode with the route cookie).
  const cookieFile = await writeCredentials(state.url, SESSIONS, path.join(dir, 'cookies.txt')).catch(async (err: Error) => {
    redis?.disconnect();
    await down(dir);
    throw new Error(`${name}: ${err.message}`);
  });
  return { state, redis, cookieFile };
}

/** Commands Redis has executed by name, from INFO commandstats (without the INFO calls themselves). */
export async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') out[m[1]!] = Number(m[2]);
  return out;
}

/**
 * What every node of a cluster has sent to its store, by name (from their metrics): Redis commands,
 * PostgreSQL statements; and the garbage collector's pauses of their main threads (parseGcPauses).
 */
async function sentStats(state: ClusterState): Promise<{ redis: Record<string, number>; db: Record<string, number>; gc: { pauseSeconds: number; majors: number } }> {
  const out = { redis: {} as Record<string, number>, db: {} as Record<string, number>, gc: { pauseSeconds: 0, majors: 0 } };
  for (const p of state.parts.filter((x) => x.kind === 'app')) {
    const text = await (await fetch(`http://127.0.0.1:${p.ports!.metrics!}/metrics`)).text();
    for (const m of text.matchAll(/^session_cluster_redis_commands_total\{[^}]*command="([^"]+)"[^}]*\} (\S+)$/gm)) out.redis[m[1]!] = (out.redis[m[1]!] ?? 0) + Number(m[2]);
    for (const m of text.matchAll(/^session_cluster_db_queries_total\{[^}]*statement="([^"]+)"[^}]*\} (\S+)$/gm)) out.db[m[1]!] = (out.db[m[1]!] ?? 0) + Number(m[2]);
    const gc = parseGcPauses(text);
    out.gc.pauseSeconds += gc.pauseSeconds;
    out.gc.majors += gc.majors;
  }
  return out;
}

/** Commands executed between two snapshots, by name (only those that ran), each divided by `per`. */
function commandsBetween(before: Record<string, number>, after: Record<string, number>, per = 1): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0);
    if (d > 0) out[name] = Math.round((d / per) * 1000) / 1000;
  }
  return out;
}

const total = (byName: Record<string, number>) => Object.values(byName).reduce((a, b) => a + b, 0);

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Fills a shared cluster's Redis with filler sessions up to `total` keys (pipelined SETs). */
async function fillTo(redis: Redis, total: number): Promise<void> {
  // Written by the node's own codec (a logged-in session as the store would write it), not by hand.
  const codec = createCodec({ path: '/', httpOnly: true, secure: false, sameSite: 'lax' });
  const payload = codec.stringify({ cookie: codec.defaultCookie(), user: 'filler', loginAt: Date.now(), node: 'app-1', requests: 0, cart: [] } as unknown as SessionData);
  let have = await redis.dbsize();
  while (have < total) {
    const batch = Math.min(10_000, total - have);
    const p = redis.pipeline();
    for (let i = 0; i < batch; i++) p.set(`${SESSION_PREFIX}fill${have + i}${Math.random().toString(36).slice(2, 12)}`, payload, 'EX', 3600);
    await p.exec();
    have = await redis.dbsize();
  }
}

/** One benchmark as it goes: its options, its work folder, how it pins, and the clusters it has up (to tear down). */
interface Bench {
  opts: BenchOptions;
  work: string;
  say: (line: string) => void;
  pin: PinPlan;
  live: Set<Target>;
}

/** One measured configuration and operation at one offered rate (null: saturation), on its cluster. */
interface Cell {
  config: ConfigName;
  operation: Operation;
  offeredRate: number | null;
  target: Target;
  /** The core the node is pinned to (its steal is read over each window), or null. */
  nodeCore: number | null;
  /** `seconds`: a shorter run (a warm-up) than the measurement's. */
  run: (seconds?: number) => Promise<WrkResult & { dropped?: number }>;
}

type Sample = WrkResult & {
  commands: number | null;
  byName: Record<string, number> | null;
  sentByName: Record<string, number> | null;
  dbByName: Record<string, number> | null;
  cpu: Record<CpuClass, number>;
  nodeUser: number;
  nodeSystem: number;
  /** The node's CPU per request in its main thread; the rest of cpu.node is its other threads' (otherThreads). */
  nodeMainThread: number;
  /** The node's main thread paused by the garbage collector, µs per request, and the major collections in the window. */
  gcPauseUs: number;
  majorGcs: number;
  /** The core-speed probe on the node's core (lib/core-speed.ts), mean of its readings before and after the window; null at saturation or unpinned. */
  coreSpeedUs: number | null;
  /** Percent of the node's core's time its host gave another guest during the window (null: not pinned). */
  nodeCoreStealPct: number | null;
  /** nginx's run time per request to the nanosecond (lib/cpu.ts, runMicros): the reference the node's CPU is set against. */
  nginxRunUs: number;
  dropped: number;
  round: number;
  /** How many windows of this round were discarded for steal before this one (measureRound). */
  measuredAgain: number;
};

/** Each configuration: its cluster, and which operations it is measured on (the limit rides on shared's cluster). */
interface ConfigPlan {
  name: string;
  mode: ModeConfig;
  profile: 'tuned' | 'textbook';
  env?: Record<string, string>;
  store?: 'single' | 'sentinel';
  cells: Array<{ config: ConfigName; operation: Operation }>;
}

const READ_PATHS: Record<Exclude<Operation, 'login'>, string> = { read: '/api/cart', me: '/api/me' };

function configPlans(scope: 'all' | 'capacity'): ConfigPlan[] {
  const ops = (config: ConfigName, withLogin = true) => (['read', 'me', ...(withLogin ? (['login'] as const) : [])] as Operation[]).map((operation) => ({ config, operation }));
  const plans: ConfigPlan[] = [
    { name: 'shared', mode: 'shared', profile: 'tuned', cells: [{ config: 'limit', operation: 'read' }, ...ops('shared')] },
    ...(scope === 'all' ? [{ name: 'textbook', mode: 'shared' as const, profile: 'textbook' as const, cells: ops('textbook') }] : []),
    ...MODE_CONFIGS.filter((m) => m !== 'shared').map((mode) => ({ name: mode, mode, profile: 'tuned' as const, cells: ops(mode) })),
  ];
  if (scope === 'all')
    for (const [name, v] of Object.entries(VARIANTS) as Array<[VariantConfig, (typeof VARIANTS)[VariantConfig]]>)
      plans.push({ name, mode: 'shared', profile: 'tuned', env: v.env, store: v.store, cells: ops(name, false) });
  return plans;
}

/** The configurations' cluster names, as `--only` takes them. */
export const CONFIG_NAMES: readonly string[] = configPlans('all').map((c) => c.name);

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  requireWrk();
  resolveK6();
  const started = Date.now();
  const scope = opts.scope ?? 'all';
  const plan = pinPlan();
  const bench: Bench = { opts, work: fs.mkdtempSync(path.join(os.tmpdir(), 'sc-bench-')), say: opts.onProgress, pin: plan, live: new Set() };
  // The shared cluster always runs: the limit, every result's denominator, rides on it.
  const plans = configPlans(scope).filter((c) => !opts.only || c.name === 'shared' || opts.only.includes(c.name));
  const matrixOnly = opts.only !== undefined;
  // Interrupted (Ctrl-C, SIGTERM): the clusters are detached processes; take down those up before leaving.
  const interrupted = (sig: NodeJS.Signals) => {
    bench.say(`${sig}: stopping the clusters that are up`);
    void Promise.allSettled([...bench.live].map((t) => down(t.state.dir))).then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  // This process (scrapes, INFO, bookkeeping) stays off the node's core too.
  if (plan.pinned) pin([process.pid], plan.rest);
  bench.say(plan.pinned ? `pinned: node(s) on cpu ${plan.nodes}; nginx, the store, the load generator and the bench on cpu ${plan.rest}` : 'not pinned (one core, or no taskset)');
  try {
    const samples = new Map<string, Sample[]>();
    for (const c of plans) await measureConfig(bench, c, samples);
    const results = resultsOf(samples, plan.pinned);
    const { scaling, scalingCpu } = matrixOnly ? { scaling: { '1': 0, '2': 0, '3': 0 }, scalingCpu: {} as BenchReport['scalingCpu'] } : await measureScaling(bench);
    const concurrentWrites = scope === 'all' && !matrixOnly ? await measureWritesKept(bench) : [];
    const storedSessions = scope === 'all' && !matrixOnly ? await measureStoredSessions(bench) : [];
    let redisBytesPerSession = { count: 0, textbook: 0, shared: 0, ratio: 0, memoryUsageKey: { textbook: 0, shared: 0 } } as BytesPerSession;
    if (scope === 'all' && !matrixOnly) {
      bench.say(`Redis memory per session: ${opts.memorySessions.toLocaleString('en')} sessions through each store`);
      redisBytesPerSession = await measureBytesPerSession(opts.memorySessions);
    }
    const targetProfiles = scope === 'all' && opts.profileMisses !== false ? await profileMissedTargets(bench, judgementOf(results).targets) : [];
    return reportOf(opts, plan, (Date.now() - started) / 1000, { results, redisBytesPerSession, concurrentWrites, scaling, scalingCpu, storedSessions, targetProfiles });
  } finally {
    for (const t of bench.live) await stopTarget(bench, t);
    // Each configuration's run folder, with what it links to outside the work folder (PostgreSQL's data: parts.ts).
    for (const run of fs.existsSync(bench.work) ? fs.readdirSync(bench.work) : []) removeRun(path.join(bench.work, run));
    fs.rmSync(bench.work, { recursive: true, force: true });
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
  }
}

async function startLive(b: Bench, ...args: Parameters<typeof startTarget>): Promise<Target> {
  const t = await startTarget(...args);
  b.live.add(t);
  return t;
}

async function stopTarget(b: Bench, t: Target): Promise<void> {
  t.redis?.disconnect();
  await down(t.state.dir);
  b.live.delete(t);
}

/**
 * One configuration alone: its cluster started and pinned, warmed up, its reads at the fixed rate
 * round by round (interleaved within the round), its logins' rounds, then each operation once at
 * saturation; then stopped.
 */
async function measureConfig(b: Bench, c: ConfigPlan, samples: Map<string, Sample[]>): Promise<void> {
  b.say(`${c.name}: starting (1 node behind nginx)`);
  const t = await startLive(b, c.name, 1, c.mode, c.profile, b.work, c.env ?? {}, c.store ?? 'single');
  try {
    pinTarget(t, b.pin);
    const cells = c.cells.flatMap(({ config, operation }) => [
      cellOf(b, t, config, operation, operation === 'login' ? b.opts.loginRate : b.opts.rate),
      cellOf(b, t, config, operation, null),
    ]);
    // Warm-up at saturation: the JIT compiles each request's path before any round is measured.
    for (const cell of cells.filter((x) => x.offeredRate === null)) await wrkOn(b, t, cell.operation === 'login' ? 'login' : 'get', pathOf(cell), cell.config !== 'limit', 2);
    if (c.cells.some((x) => x.operation === 'login')) await fillSessionIndexes(t, c);
    await quiesce(t);
    // And at the fixed rate, unmeasured: from saturation to a low rate V8 collects the warm-up's
    // garbage (seen: the first round's node CPU per request 40-70 % above the next two on a quiet machine).
    for (const cell of cells.filter((x) => x.offeredRate !== null)) await cell.run(Math.min(PACED_WARM_UP_S, b.opts.seconds));
    await quiesce(t);
    // Reads interleaved round by round, then the logins' rounds: a read's window never follows a
    // login's (whose last settlements could land in it), and the saturation runs last, the same way.
    const paced = cells.filter((x) => x.offeredRate !== null);
    for (const group of [paced.filter((x) => x.operation !== 'login'), paced.filter((x) => x.operation === 'login')])
      for (let r = 1; r <= b.opts.rounds; r++) for (const cell of group) record(b, samples, cell, await measureRound(b, cell, r));
    await quiesce(t);
    for (const cell of cells.filter((x) => x.offeredRate === null)) {
      record(b, samples, cell, await measureCell(cell, 1));
      await quiesce(t);
    }
  } finally {
    await stopTarget(b, t);
  }
}

/**
 * Waits until the nodes have finished everything sent to them: wrk stops with requests in flight,
 * and logins queued for their hash (up to LOGIN_HASH_QUEUE) finish afterwards, sending their store
 * commands into whatever window is measured next (seen: 0.02-0.6 Redis commands per request in the
 * round after a login warm-up). A login whose client has gone is counted as a request when the
 * connection closes, but as a login only when its work is done: done when neither count grows.
 */
async function quiesce(t: Target): Promise<void> {
  const answered = async () => {
    const load = await clusterLoad(t);
    let sum = load.requests + load.logins;
    // And the store's executed commands (but the DBSIZE each scrape above runs): seen still growing after both counts had stopped.
    if (t.redis) {
      const { dbsize: _scrapes, ...commands } = await commandStats(t.redis);
      sum += total(commands);
    }
    return sum;
  };
  let last = await answered();
  await waitFor(
    'the nodes to answer every request in flight',
    async () => {
      const now = await answered();
      const still = now === last;
      last = now;
      return still;
    },
    60_000,
    500,
  );
}

/**
 * Unmeasured seconds of each operation at the fixed rate before the rounds (at most a round's). Seen with 3 s: the
 * first round's node CPU per request 20-45 % above the next two (limit 707 vs 520/481 µs).
 */
const PACED_WARM_UP_S = 10;

/** The requests answered and the logins finished by every node of the cluster, summed. */
async function clusterLoad(t: Target): Promise<{ requests: number; logins: number }> {
  const sum = { requests: 0, logins: 0 };
  for (const p of t.state.parts.filter((x) => x.kind === 'app')) {
    const load = await nodeLoad(p.ports!.metrics!);
    sum.requests += load.requests;
    sum.logins += load.logins;
  }
  return sum;
}

/**
 * Logs each login user in as many times as the node allows sessions per user
 * (SESSIONS_PER_USER_MAX), so that every measured login finds the same state: a full index whose
 * oldest session it ends. Without it the per-user index grew through the rounds, and with it a
 * login's work (seen: 29, 37 and 45 Redis commands executed per login in rounds 1-3; node CPU
 * 5.7, 6.1 and 7.2 ms). Each user exactly so many times (loginEach): filled by wrk until the
 * logins added up, some users stayed a session short, and 0.66-0.73 measured logins in 1 ended one.
 */
async function fillSessionIndexes(t: Target, c: ConfigPlan): Promise<void> {
  await loginEach(t.state.url, LOGIN_USERS, Number(c.env?.SESSIONS_PER_USER_MAX ?? SESSIONS_PER_USER_MAX_DEFAULT));
}

const keyOf = (config: ConfigName, operation: Operation, offeredRate: number | null) => `${config}/${operation}/${offeredRate ?? 'max'}`;

function record(b: Bench, samples: Map<string, Sample[]>, cell: Cell, s: Sample): void {
  const key = keyOf(cell.config, cell.operation, cell.offeredRate);
  samples.set(key, [...(samples.get(key) ?? []), s]);
  const at = cell.offeredRate === null ? 'saturation' : `${cell.offeredRate}/s`;
  b.say(
    `${cell.offeredRate === null ? 'saturation' : `round ${s.round}/${b.opts.rounds}`}  ${`${cell.config}/${cell.operation}`.padEnd(26)} at ${at.padEnd(10)} ${s.rps.toFixed(0).padStart(6)} req/s  p99 ${s.p99Ms.toFixed(2)} ms  CPU µs/req node ${s.cpu.node.toFixed(0)} (user ${s.nodeUser.toFixed(0)}, system ${s.nodeSystem.toFixed(0)}; main thread ${s.nodeMainThread.toFixed(0)}, others ${otherThreads(s).toFixed(0)}; GC pauses ${s.gcPauseUs.toFixed(1)}, ${s.majorGcs} major)${s.coreSpeedUs === null ? '' : ` core probe ${(s.coreSpeedUs / 1000).toFixed(1)} ms`} nginx ${s.cpu.nginx.toFixed(0)} redis ${s.cpu.redis.toFixed(0)}${s.cpu.postgres ? ` postgres ${s.cpu.postgres.toFixed(0)}` : ''}${s.commands === null ? '' : `  ${s.commands.toFixed(2)} Redis cmd/req`}${s.errors ? `  errors ${s.errors}` : ''}${s.dropped ? `  dropped ${s.dropped}` : ''}${s.nodeCoreStealPct ? `  node's core stolen ${s.nodeCoreStealPct.toFixed(1)} %` : ''}`,
  );
}

/** jwt keeps no cart (501): its authenticated read is GET /api/me, which writes nothing there. */
function pathOf(cell: { config: ConfigName; operation: Operation }): string | undefined {
  if (cell.operation === 'login') return undefined;
  if (cell.config === 'limit') return '/api/ping';
  return cell.config === 'jwt' ? '/api/me' : READ_PATHS[cell.operation];
}

function cellOf(b: Bench, t: Target, config: ConfigName, operation: Operation, offeredRate: number | null): Cell {
  const kind = operation === 'login' ? 'login' : 'get';
  const p = pathOf({ config, operation });
  const cookies = config !== 'limit';
  const run =
    offeredRate === null
      ? () => wrkOn(b, t, kind, p, cookies)
      : (seconds = b.opts.seconds) =>
          runPaced({
            url: t.state.url,
            kind,
            path: p,
            cookieFile: cookies && kind === 'get' ? t.cookieFile : undefined,
            users: LOGIN_USERS,
            rate: offeredRate,
            seconds,
            workDir: b.work,
            pin: b.pin,
          });
  return { config, operation, offeredRate, target: t, nodeCore: b.pin.pinned ? Number(b.pin.nodes) : null, run };
}

function wrkOn(b: Bench, t: Target, kind: 'get' | 'login', p?: string, cookies = true, seconds = b.opts.saturationSeconds): Promise<WrkResult> {
  return runWrk({
    url: t.state.url,
    kind,
    path: p,
    cookieFile: cookies ? t.cookieFile : undefined,
    users: LOGIN_USERS,
    seconds,
    connections: b.opts.connections,
    threads: b.opts.threads,
    workDir: b.work,
    pin: b.pin,
  });
}

/**
 * A round at the fixed rate whose window lost more than STEAL_LIMIT_PCT of the node's core to
 * steal is measured again, at most STEAL_RETRIES times, and keeps its least-stolen window. In the
 * run of 2026-12-03 (20 s rounds), every cell whose rounds all lost <= 1 % held its round-to-round
 * spread within 10 %, and 11 of the 12 cells that missed had a round that lost 2.5-19 %.
 */
export const STEAL_LIMIT_PCT = 1;
const STEAL_RETRIES = 2;

async function measureRound(b: Bench, cell: Cell, round: number): Promise<Sample> {
  let kept = await measureCell(cell, round);
  for (let again = 1; again <= STEAL_RETRIES && (kept.nodeCoreStealPct ?? 0) > STEAL_LIMIT_PCT; again++) {
    b.say(`round ${round}/${b.opts.rounds}  ${cell.config}/${cell.operation}: the node's core lost ${kept.nodeCoreStealPct!.toFixed(1)} % to steal; measured again`);
    const next = { ...(await measureCell(cell, round)), measuredAgain: again };
    if (next.nodeCoreStealPct! < kept.nodeCoreStealPct!) kept = next;
    else kept = { ...kept, measuredAgain: again };
  }
  return kept;
}

async function measureCell(m: Cell, round: number): Promise<Sample> {
  // The probe runs on the node's core while the node idles, outside the window (fixed rate only: a
  // saturation run is one window, compared with nothing).
  const probe = m.nodeCore === null || m.offeredRate === null ? null : () => coreSpeedUs(m.nodeCore!);
  const speedBefore = probe && (await probe());
  // Scraping the nodes' metrics runs DBSIZE (the active-session gauge): outside the commandstats window.
  const sentBefore = await sentStats(m.target.state);
  const before = m.target.redis ? await commandStats(m.target.redis) : null;
  const classes = processClasses(m.target);
  const core = m.nodeCore === null ? null : coreTicks(m.nodeCore);
  const mainThreads = () => classes.node.reduce((sum, pid) => sum + total(mainThreadSplitMicros(pid)), 0);
  const cpuBefore = cpuSplitSnapshot(classes);
  const mainBefore = mainThreads();
  const nginxBefore = runMicros(classes.nginx);
  const res = await m.run();
  const nginxAfter = runMicros(classes.nginx);
  const cpuAfter = cpuSplitSnapshot(classes);
  const mainAfter = mainThreads();
  const stolen = core === null ? null : stealPct(core, coreTicks(m.nodeCore!));
  const after = m.target.redis ? await commandStats(m.target.redis) : null;
  const used = (c: string, part: 'user' | 'system') => (cpuAfter[c]![part] - cpuBefore[c]![part]) / res.requests;
  const cpu = Object.fromEntries(Object.keys(classes).map((c) => [c, used(c, 'user') + used(c, 'system')])) as Record<CpuClass, number>;
  const sentAfter = await sentStats(m.target.state);
  const byName = before === null || after === null ? null : commandsBetween(before, after, res.requests);
  const sentByName = m.target.redis ? commandsBetween(sentBefore.redis, sentAfter.redis, res.requests) : null;
  const dbByName = m.target.state.parts.some((p) => p.kind === 'postgres') ? commandsBetween(sentBefore.db, sentAfter.db, res.requests) : null;
  const speedAfter = probe && (await probe());
  const commands = byName === null ? null : total(byName);
  const nodeMainThread = (mainAfter - mainBefore) / res.requests;
  return {
    ...res,
    commands,
    byName,
    sentByName,
    dbByName,
    cpu,
    nodeUser: used('node', 'user'),
    nodeSystem: used('node', 'system'),
    nodeMainThread,
    gcPauseUs: ((sentAfter.gc.pauseSeconds - sentBefore.gc.pauseSeconds) * 1e6) / res.requests,
    majorGcs: sentAfter.gc.majors - sentBefore.gc.majors,
    coreSpeedUs: speedBefore && speedAfter ? (speedBefore + speedAfter) / 2 : null,
    nodeCoreStealPct: stolen,
    nginxRunUs: (nginxAfter - nginxBefore) / res.requests,
    dropped: res.dropped ?? 0,
    round,
    measuredAgain: 0,
  };
}

/**
 * Each cell's medians over the rounds, and the rounds' spread. The limit (at the same offered rate,
 * or at saturation) is the denominator of every operation.
 */
function resultsOf(samples: Map<string, Sample[]>, pinned: boolean): Result[] {
  const results: Result[] = [];
  for (const [key, xs] of samples) {
    const [config, operation, rate] = key.split('/') as [ConfigName, Operation, string];
    const offeredRate = rate === 'max' ? null : Number(rate);
    // The limit is measured at the read rate: logins compare against it as the other operations do.
    const limits = samples.get(
      keyOf(
        'limit',
        'read',
        offeredRate === null
          ? null
          : samples.has(keyOf('limit', 'read', offeredRate))
            ? offeredRate
            : Number([...samples.keys()].find((k) => k.startsWith('limit/read/') && !k.endsWith('/max'))!.split('/')[2]),
      ),
    )!;
    const limitRps = median(limits.map((s) => s.rps));
    const rps = median(xs.map((s) => s.rps));
    const cmds = xs[0]!.commands === null ? null : round2(median(xs.map((s) => s.commands!)));
    const medianByName = (pick: (s: Sample) => Record<string, number> | null) => {
      if (!pick(xs[0]!)) return null;
      const out: Record<string, number> = {};
      for (const name of new Set(xs.flatMap((s) => Object.keys(pick(s)!)))) out[name] = round2(median(xs.map((s) => pick(s)![name] ?? 0)));
      return out;
    };
    const byName = medianByName((s) => s.byName);
    const sentByName = medianByName((s) => s.sentByName);
    const dbByName = medianByName((s) => s.dbByName);
    // Each round's ratios against the limit measured in the same round: the spread of the result.
    const limitOf = (s: Sample) => limits.find((l) => l.round === s.round) ?? limits[0]!;
    const ratios = xs.map((s) => s.rps / limitOf(s).rps);
    const range = (vs: number[], r: (n: number) => number = Math.round): [number, number] => [r(Math.min(...vs)), r(Math.max(...vs))];
    const cpu = (c: CpuClass) => xs.map((s) => s.cpu[c]);
    const spread = {
      rps: range(xs.map((s) => s.rps)),
      ratioToLimit: range(ratios, round2),
      p99Ms: range(
        xs.map((s) => s.p99Ms),
        round2,
      ),
      nodeCpuUs: range(cpu('node')),
      nodeCpuRatioToLimit: range(
        xs.map((s) => s.cpu.node / limitOf(s).cpu.node),
        round2,
      ),
      nginxCpuUs: range(cpu('nginx')),
      redisCpuUs: range(cpu('redis')),
      nodeMainThreadCpuUs: range(xs.map((s) => s.nodeMainThread)),
      nodeOtherThreadsCpuUs: range(xs.map(otherThreads)),
      nodeGcPauseUs: range(
        xs.map((s) => s.gcPauseUs),
        (n) => Math.round(n * 10) / 10,
      ),
    };
    // The node's CPU per request against nginx's run time per request, round by round.
    const againstNginx = xs.map((x) => ({ value: x.cpu.node, reference: x.nginxRunUs }));
    results.push({
      config,
      operation,
      rps: Math.round(rps),
      ratioToLimit: round2(rps / limitRps),
      p50Ms: round2(median(xs.map((s) => s.p50Ms))),
      p99Ms: round2(median(xs.map((s) => s.p99Ms))),
      redisCommandsPerRequest: cmds,
      redisCommandsByName: byName,
      redisCommandsSentByName: sentByName,
      redisCommandsSentPerRequest: sentByName ? round2(total(sentByName)) : null,
      dbQueriesByName: dbByName,
      dbQueriesPerRequest: dbByName ? round2(total(dbByName)) : null,
      rpsMin: spread.rps[0],
      rpsMax: spread.rps[1],
      nodeCpuUsPerRequest: Math.round(median(cpu('node'))),
      nginxCpuUsPerRequest: Math.round(median(cpu('nginx'))),
      redisCpuUsPerRequest: Math.round(median(cpu('redis'))),
      loadGeneratorCpuUsPerRequest: Math.round(median(xs.map((s) => s.cpuUs / s.requests))),
      spread,
      errors: xs.reduce((a, s) => a + s.errors, 0),
      nodeUserCpuUsPerRequest: Math.round(median(xs.map((s) => s.nodeUser))),
      nodeSystemCpuUsPerRequest: Math.round(median(xs.map((s) => s.nodeSystem))),
      postgresCpuUsPerRequest: Math.round(median(cpu('postgres'))),
      offeredRate,
      pinned,
      nodeCpuSpreadPct: Math.round(spreadPct(cpu('node')) * 10) / 10,
      dropped: xs.reduce((a, s) => a + s.dropped, 0),
      ...stealOf(xs),
      roundsMeasuredAgain: xs.reduce((a, s) => a + s.measuredAgain, 0),
      nodeMainThreadCpuUsPerRequest: Math.round(median(xs.map((s) => s.nodeMainThread))),
      nodeOtherThreadsCpuUsPerRequest: Math.round(median(xs.map(otherThreads))),
      nodeGcPauseUsPerRequest: Math.round(median(xs.map((s) => s.gcPauseUs)) * 10) / 10,
      majorGcsPerRound: range(xs.map((s) => s.majorGcs)),
      roundGap: roundGapOf(
        xs.map((x) => ({
          nodeCpuUs: x.cpu.node,
          mainThreadUs: x.nodeMainThread,
          otherThreadsUs: otherThreads(x),
          gcPauseUs: x.gcPauseUs,
          majorGcs: x.majorGcs,
          stealPct: x.nodeCoreStealPct ?? 0,
          coreSpeedUs: x.coreSpeedUs,
        })),
      ),
      ...coreSpeedOf(xs),
      nodeCpuSpreadPctAgainstNginx: round1(spreadAgainstPct(againstNginx)),
      nodeCpuAgainstNginxRange: rangeAgainst(againstNginx),
      nginxRunSpreadPct: xs.every((x) => x.nginxRunUs > 0) ? round1(spreadPct(xs.map((x) => x.nginxRunUs))) : null,
    });
  }
  // The limit is the denominator for every operation: the same row under each (isLimitCopy).
  for (const limit of results.filter((r) => r.config === 'limit' && r.operation === 'read')) results.push({ ...limit, operation: 'login' }, { ...limit, operation: 'me' });
  return results;
}

/** The node's CPU per request outside its main thread (V8's compiler and GC helpers, libuv's pool). */
const otherThreads = (s: Sample) => s.cpu.node - s.nodeMainThread;

const round1 = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

function coreSpeedOf(xs: Sample[]): Pick<Result, 'coreSpeedUs' | 'coreSpeedUsRange'> {
  if (xs.some((x) => x.coreSpeedUs === null)) return { coreSpeedUs: null, coreSpeedUsRange: null };
  const speeds = xs.map((x) => x.coreSpeedUs!);
  return { coreSpeedUs: Math.round(median(speeds)), coreSpeedUsRange: [Math.round(Math.min(...speeds)), Math.round(Math.max(...speeds))] };
}

/** The limit's rows under `me` and `login`: copies of its read row (resultsOf), not measurements of their own. */
export const isLimitCopy = (r: Pick<Result, 'config' | 'operation'>): boolean => r.config === 'limit' && r.operation !== 'read';

function stealOf(xs: Sample[]): Pick<Result, 'nodeCoreStealPct' | 'nodeCoreStealPctRange'> {
  const pcts = xs.map((s) => s.nodeCoreStealPct).filter((p): p is number => p !== null);
  if (!pcts.length) return { nodeCoreStealPct: null, nodeCoreStealPctRange: null };
  const r1 = (n: number) => Math.round(n * 10) / 10;
  return { nodeCoreStealPct: r1(median(pcts)), nodeCoreStealPctRange: [r1(Math.min(...pcts)), r1(Math.max(...pcts))] };
}

/** One session, simultaneous writes through nginx: how many acknowledged writes each store keeps (3 nodes, each configuration alone). */
async function measureWritesKept(b: Bench): Promise<BenchReport['concurrentWrites']> {
  b.say('concurrent writes kept: 100 simultaneous GET /api/me and 40 cart adds on one session, 3 nodes, one configuration at a time');
  const concurrentWrites: BenchReport['concurrentWrites'] = [];
  // Every configuration whose sessions keep a counter and a cart (jwt keeps neither).
  for (const config of ['textbook', ...MODE_CONFIGS.filter((m) => MODE_DESCRIPTORS[m].capabilities.state)] as const) {
    const t = await startLive(b, `writes-${config}`, 3, config === 'textbook' ? 'shared' : config, config === 'textbook' ? 'textbook' : 'tuned', b.work, {}, 'single', false);
    const runs: ConcurrentWrites[] = [];
    try {
      // Logins use the login users (never a read session); each round a fresh session.
      for (let r = 0; r < b.opts.rounds; r++) runs.push(await measureConcurrentWrites(t.state.url, LOGIN_USERS.first + r));
    } finally {
      await stopTarget(b, t);
    }
    const med = (f: (w: ConcurrentWrites) => number) => Math.round(median(runs.map(f)));
    const kept = {
      config,
      counter: { acknowledged: med((w) => w.counter.acknowledged), kept: med((w) => w.counter.kept) },
      cartLines: { acknowledged: med((w) => w.cartLines.acknowledged), kept: med((w) => w.cartLines.kept) },
    };
    concurrentWrites.push(kept);
    b.say(`  ${config.padEnd(9)} counter kept ${kept.counter.kept}/${kept.counter.acknowledged}, cart lines kept ${kept.cartLines.kept}/${kept.cartLines.acknowledged}`);
  }
  return concurrentWrites;
}

/**
 * Shared-mode reads at saturation with 1, 2 and 3 nodes, each cluster alone and unpinned (the
 * nodes compete with nginx, Redis and wrk for the machine's cores): the measurement the capacity
 * model's prediction is checked against.
 */
async function measureScaling(b: Bench): Promise<Pick<BenchReport, 'scaling' | 'scalingCpu'>> {
  b.say('scaling: shared-mode reads at saturation with 1, 2 and 3 nodes (unpinned, one cluster at a time)');
  const scaling = {} as BenchReport['scaling'];
  const scalingCpu = {} as BenchReport['scalingCpu'];
  const unpinned = { ...b, pin: { pinned: false, nodes: '', rest: '' } };
  for (const n of ['1', '2', '3'] as const) {
    // Every core for the bench before the cluster starts: its processes inherit the bench's
    // affinity, and the bench runs on the rest's cores (until 2026-12-04 the scaling clusters ran
    // on cpu 0 alone, wrk beside them, and the capacity check measured one core).
    if (b.pin.pinned) unpin([process.pid]);
    const t = await startLive(b, `scaling-${n}`, Number(n), 'shared', 'tuned', b.work);
    try {
      const parts = t.state.parts.flatMap((p) => withDescendants(p.pid));
      if (b.pin.pinned) unpin(parts);
      await wrkOn(unpinned, t, 'get', '/api/cart', true, 2);
      const rps: number[] = [];
      const cpus: Array<Omit<BenchReport['scalingCpu']['1'], 'cpus'>> = [];
      for (let r = 1; r <= b.opts.rounds; r++) {
        const cell: Cell = { config: 'shared', operation: 'read', offeredRate: null, target: t, nodeCore: null, run: () => wrkOn(unpinned, t, 'get', '/api/cart') };
        const s = await measureCell(cell, r);
        rps.push(s.rps);
        cpus.push({ node: s.cpu.node, nginx: s.cpu.nginx, redis: s.cpu.redis, loadGenerator: s.cpuUs / s.requests });
      }
      scaling[n] = Math.round(median(rps));
      const med = (k: keyof (typeof cpus)[number]) => Math.round(median(cpus.map((c) => c[k])));
      scalingCpu[n] = { node: med('node'), nginx: med('nginx'), redis: med('redis'), loadGenerator: med('loadGenerator'), cpus: cpusAllowed(parts) };
      b.say(
        `  ${n} node(s): ${scaling[n]} req/s (rounds ${rps.map((x) => x.toFixed(0)).join(', ')}); CPU µs/req node ${scalingCpu[n].node} nginx ${scalingCpu[n].nginx} redis ${scalingCpu[n].redis} wrk ${scalingCpu[n].loadGenerator}`,
      );
    } finally {
      if (b.pin.pinned) pin([process.pid], b.pin.rest);
      await stopTarget(b, t);
    }
  }
  return { scaling, scalingCpu };
}

/**
 * A read at each stored-session level: one shared cluster per level (1 node, pinned), filled, its
 * reads measured for the rounds, and what one scrape of the node's metrics costs Redis; then stopped.
 */
async function measureStoredSessions(b: Bench): Promise<BenchReport['storedSessions']> {
  const storedSessions: BenchReport['storedSessions'] = [];
  for (const level of b.opts.storedLevels) {
    b.say(`stored sessions: a shared cluster with ${level.toLocaleString('en')} sessions in Redis`);
    const t = await startLive(b, `stored-${level}`, 1, 'shared', 'tuned', b.work);
    try {
      const redis = t.redis!;
      await fillTo(redis, level);
      pinTarget(t, b.pin);
      await wrkOn(b, t, 'get', '/api/cart', true, 1);
      const levelRuns: Array<{ rps: number; byName: Record<string, number> }> = [];
      for (let r = 1; r <= b.opts.rounds; r++) {
        const before = await commandStats(redis);
        const res = await wrkOn(b, t, 'get', '/api/cart');
        const after = await commandStats(redis);
        levelRuns.push({ rps: res.rps, byName: commandsBetween(before, after, res.requests) });
        b.say(`round ${r}/${b.opts.rounds}  ${level.toLocaleString('en').padStart(10)} stored: ${res.rps.toFixed(0)} req/s`);
      }
      // One scrape of every node's metrics, as Prometheus does: what it costs Redis.
      const before = await commandStats(redis);
      for (const p of t.state.parts.filter((x) => x.kind === 'app')) await fetch(`http://127.0.0.1:${p.ports!.metrics!}/metrics`).then((r) => r.text());
      const scrapeCommands = commandsBetween(before, await commandStats(redis));
      const byName: Record<string, number> = {};
      for (const name of new Set(levelRuns.flatMap((x) => Object.keys(x.byName)))) byName[name] = round2(median(levelRuns.map((x) => x.byName[name] ?? 0)));
      const rps = levelRuns.map((x) => x.rps);
      storedSessions.push({
        stored: level,
        keys: await redis.dbsize(),
        rps: Math.round(median(rps)),
        rpsMin: Math.round(Math.min(...rps)),
        rpsMax: Math.round(Math.max(...rps)),
        redisCommandsPerRequest: round2(total(byName)),
        redisCommandsByName: byName,
        scrapeCommands,
      });
    } finally {
      await stopTarget(b, t);
    }
  }
  return storedSessions;
}

const SPREAD_BOUND_PCT = 10;

/** The spread target, the peer targets and the A/B claims, from the fixed-rate results. */
function judgementOf(results: Result[]): Pick<BenchReport, 'targets' | 'spreadTarget' | 'abClaims'> {
  const paced = results.filter((r) => r.offeredRate !== null);
  const own = paced.filter((r) => !isLimitCopy(r));
  // The cell whose rounds spread the most, by one measure of spread.
  const worstBy = (spread: (r: Result) => number | null) =>
    own.reduce<{ config: string; operation: string; spreadPct: number } | null>((w, r) => {
      const pct = spread(r);
      return pct !== null && (w === null || pct > w.spreadPct) ? { config: r.config, operation: r.operation, spreadPct: pct } : w;
    }, null);
  const spreadTarget = {
    boundPct: SPREAD_BOUND_PCT,
    met: own.length > 0 && own.every((r) => r.nodeCpuSpreadPct <= SPREAD_BOUND_PCT),
    worst: worstBy((r) => r.nodeCpuSpreadPct),
    metAgainstNginx: own.length > 0 && own.every((r) => r.nodeCpuSpreadPctAgainstNginx !== null && r.nodeCpuSpreadPctAgainstNginx <= SPREAD_BOUND_PCT),
    worstAgainstNginx: worstBy((r) => r.nodeCpuSpreadPctAgainstNginx),
    worstNginx: worstBy((r) => r.nginxRunSpreadPct),
  };
  const read = (config: ConfigName) => paced.find((r) => r.config === config && r.operation === 'read');
  const input = (r: Result) => ({ nodeCpuUs: r.nodeCpuUsPerRequest, nodeCpuRange: r.spread.nodeCpuUs, nodeCpuAgainstNginxRange: r.nodeCpuAgainstNginxRange, p99Ms: r.p99Ms });
  const [shared, textbook, sticky, limit] = [read('shared'), read('textbook'), read('sticky'), read('limit')];
  const targets = shared && textbook && sticky && limit ? judgeTargets({ shared: input(shared), textbook: input(textbook), sticky: input(sticky), limit: input(limit) }) : [];
  const abClaims: BenchReport['abClaims'] = [];
  for (const ab of AB)
    for (const operation of ['read', 'me'] as const) {
      const on = paced.find((r) => r.config === ab.on && r.operation === operation);
      const off = paced.find((r) => r.config === ab.off && r.operation === operation);
      if (!on || !off) continue;
      const side = differs({ raw: on.spread.nodeCpuUs, againstNginx: on.nodeCpuAgainstNginxRange }, { raw: off.spread.nodeCpuUs, againstNginx: off.nodeCpuAgainstNginxRange });
      abClaims.push({
        change: ab.change,
        operation,
        onUs: on.spread.nodeCpuUs,
        offUs: off.spread.nodeCpuUs,
        onAgainstNginx: on.nodeCpuAgainstNginxRange,
        offAgainstNginx: off.nodeCpuAgainstNginxRange,
        holds: side !== null,
        direction: side === 'more' ? 'costs' : side === 'less' ? 'saves' : 'none',
      });
    }
  return { targets, spreadTarget, abClaims };
}

/** The baseline each target holds a shared read against, as a profiled subject. */
const TARGET_BASELINES: Array<{ test: RegExp; subject: ProfileSubject }> = [
  { test: /textbook/, subject: { name: 'textbook', mode: 'shared', env: { SESSION_PROFILE: 'textbook' }, path: '/api/cart' } },
  { test: /sticky/, subject: { name: 'sticky', mode: 'sticky', path: '/api/cart' } },
  { test: /no-session/, subject: { name: 'limit', mode: 'shared', path: '/api/ping' } },
];
const SHARED_READ: ProfileSubject = { name: 'shared', mode: 'shared', path: '/api/cart' };

async function profileMissedTargets(b: Bench, targets: TargetOutcome[]): Promise<BenchReport['targetProfiles']> {
  const out: BenchReport['targetProfiles'] = [];
  for (const t of targets.filter((x) => !x.met)) {
    const baseline = TARGET_BASELINES.find((x) => x.test.test(t.name));
    if (!baseline) continue;
    b.say(`target missed: ${t.name}; profiling ${baseline.subject.name} against shared, ${b.opts.rounds} rounds`);
    const pair = await profilePair(baseline.subject, SHARED_READ, {
      rounds: b.opts.rounds,
      seconds: b.opts.seconds,
      connections: 8,
      rate: b.opts.rate,
      pin: b.pin,
      onProgress: b.say,
    });
    out.push({ target: t.name, ...pair });
  }
  return out;
}

function reportOf(
  opts: BenchOptions,
  plan: PinPlan,
  wallSeconds: number,
  measured: Pick<BenchReport, 'results' | 'redisBytesPerSession' | 'concurrentWrites' | 'scaling' | 'scalingCpu' | 'storedSessions' | 'targetProfiles'>,
): BenchReport {
  const cpu = os.cpus();
  const rateOrder = (r: Result) => (r.offeredRate === null ? 1 : 0);
  return {
    generatedAt: new Date().toISOString(),
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    settings: {
      rounds: opts.rounds,
      seconds: opts.seconds,
      saturationSeconds: opts.saturationSeconds,
      connections: opts.connections,
      threads: opts.threads,
      nodes: 1,
      rate: opts.rate,
      loginRate: opts.loginRate,
      pinned: plan.pinned,
      cpuLayout: plan.pinned ? `node on cpu ${plan.nodes}; nginx, the store, the load generator and the bench on cpu ${plan.rest}` : 'not pinned',
      wallSeconds: Math.round(wallSeconds),
    },
    results: measured.results.sort((a, b) => a.operation.localeCompare(b.operation) || rateOrder(a) - rateOrder(b) || order(a.config) - order(b.config)),
    ...judgementOf(measured.results),
    redisBytesPerSession: measured.redisBytesPerSession,
    concurrentWrites: measured.concurrentWrites,
    scaling: measured.scaling,
    scalingCpu: measured.scalingCpu,
    storedSessions: measured.storedSessions,
    targetProfiles: measured.targetProfiles,
  };
}

const order = (c: ConfigName) => ['limit', 'textbook', ...MODE_CONFIGS, ...Object.keys(VARIANTS)].indexOf(c);
