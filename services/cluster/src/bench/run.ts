import type { SessionData } from 'express-session';
import { createCodec, SESSION_PREFIX } from '@session-cluster/app/session';
import { MODE_DESCRIPTORS, SESSION_MODES, type SessionMode } from '@session-cluster/app/modes';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { down, up, type ClusterState } from '../cluster.js';
import { cpuSnapshot, withDescendants } from '../lib/cpu.js';
import { freePort } from '../lib/ports.js';
import { median } from '../lib/stats.js';
import { measureConcurrentWrites, type ConcurrentWrites } from './concurrent.js';
import { measureBytesPerSession, type BytesPerSession } from './memory.js';
import { runWrk, requireWrk, writeCredentials, type WrkResult } from './wrk.js';

/**
 * `npm run bench`: every configuration side by side in one run, through nginx, 3 nodes each,
 * the same wrk settings. Clusters for all configurations run at once (idle ones cost nothing)
 * and measurements are interleaved round by round, so a noisy neighbour hurts all alike; each
 * figure is the median over the rounds.
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
  };
  errors: number;
}

export interface BenchReport {
  generatedAt: string;
  command: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string };
  settings: { rounds: number; seconds: number; connections: number; threads: number; nodes: number };
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
  seconds: number;
  connections: number;
  threads: number;
  memorySessions: number;
  storedLevels: number[];
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
  return { node: of('app'), nginx: of('nginx').flatMap(withDescendants), redis: of('redis') };
}
type CpuClass = 'node' | 'nginx' | 'redis';

async function startTarget(
  name: string,
  nodes: number,
  mode: ModeConfig,
  profile: 'tuned' | 'textbook',
  work: string,
  env: Record<string, string> = {},
  store: 'single' | 'sentinel' = 'single',
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
    nodeEnv: { SESSION_PROFILE: profile, LOGIN_MAX_FAILURES_PER_CLIENT: '100000', ...env },
  });
  const redisPart = state.parts.find((p) => p.kind === 'redis'); // with Sentinel: redis-1, the primary (no fault during a bench)
  const redis = redisPart ? new Redis({ host: '127.0.0.1', port: redisPart.port, lazyConnect: false }) : null;
  // Log in SESSIONS users through nginx; keep each one's credential (in sticky mode with the route cookie).
  const cookieFile = await writeCredentials(state.url, SESSIONS, path.join(dir, 'cookies.txt')).catch((err: Error) => {
    throw new Error(`${name}: ${err.message}`);
  });
  return { state, redis, cookieFile };
}

/** Commands Redis has executed by name, from INFO commandstats (without the INFO calls themselves). */
async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') out[m[1]!] = Number(m[2]);
  return out;
}

/** What every node of a cluster has sent to its store, by name (from their metrics): Redis commands, PostgreSQL statements. */
async function sentStats(state: ClusterState): Promise<{ redis: Record<string, number>; db: Record<string, number> }> {
  const out = { redis: {} as Record<string, number>, db: {} as Record<string, number> };
  for (const p of state.parts.filter((x) => x.kind === 'app')) {
    const text = await (await fetch(`http://127.0.0.1:${p.ports!.metrics!}/metrics`)).text();
    for (const m of text.matchAll(/^session_cluster_redis_commands_total\{[^}]*command="([^"]+)"[^}]*\} (\S+)$/gm)) out.redis[m[1]!] = (out.redis[m[1]!] ?? 0) + Number(m[2]);
    for (const m of text.matchAll(/^session_cluster_db_queries_total\{[^}]*statement="([^"]+)"[^}]*\} (\S+)$/gm)) out.db[m[1]!] = (out.db[m[1]!] ?? 0) + Number(m[2]);
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

/** One benchmark as it goes: its options, its work folder, and the clusters it has started. */
interface Bench {
  opts: BenchOptions;
  work: string;
  say: (line: string) => void;
  targets: Record<string, Target>;
  /** The stored-session levels' clusters, filled, in the order of opts.storedLevels. */
  levels: Array<{ level: number; target: Target }>;
}

/** One measured configuration and operation: the wrk run that measures it, on its cluster. */
interface Cell {
  config: ConfigName;
  operation: Operation;
  target: Target;
  run: () => Promise<WrkResult>;
}

type Sample = WrkResult & {
  commands: number | null;
  byName: Record<string, number> | null;
  sentByName: Record<string, number> | null;
  dbByName: Record<string, number> | null;
  cpu: Record<CpuClass, number>;
  round: number;
};

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  requireWrk();
  const bench: Bench = { opts, work: fs.mkdtempSync(path.join(os.tmpdir(), 'sc-bench-')), say: opts.onProgress, targets: {}, levels: [] };
  try {
    await startTargets(bench);
    const matrix = matrixOf(bench);
    await warmUp(bench, matrix);
    const samples = await measureRounds(bench, matrix);
    const results = resultsOf(samples);
    const concurrentWrites = await measureWritesKept(bench);
    const scaling = await measureScaling(bench);
    const storedSessions = await measureStoredSessions(bench);
    bench.say(`Redis memory per session: ${opts.memorySessions.toLocaleString('en')} sessions through each store`);
    const redisBytesPerSession = await measureBytesPerSession(opts.memorySessions);
    return reportOf(opts, { results, redisBytesPerSession, concurrentWrites, scaling, storedSessions });
  } finally {
    for (const t of Object.values(bench.targets)) t.redis?.disconnect();
    await Promise.all(Object.values(bench.targets).map((t) => down(t.state.dir)));
    fs.rmSync(bench.work, { recursive: true, force: true });
  }
}

/**
 * Runs `tasks` at most `width` at a time; after a failure starts no more, waits for those under
 * way to settle (so that whatever they started is recorded and torn down), then throws it.
 */
async function settleAll(tasks: Array<() => Promise<void>>, width: number): Promise<void> {
  const queue = [...tasks];
  const failures: unknown[] = [];
  const worker = async () => {
    while (queue.length && !failures.length) await queue.shift()!().catch((err: unknown) => void failures.push(err));
  };
  await Promise.all(Array.from({ length: width }, worker));
  if (failures.length) throw failures[0];
}

/**
 * Every cluster the benchmark measures, two starting at a time (a start is mostly waiting for
 * processes to become healthy and for scrypt logins; nothing is measured yet), each recorded as
 * soon as it is up so that a failure tears down what was started. The stored-session levels'
 * clusters are filled as they come up.
 */
async function startTargets(b: Bench): Promise<void> {
  b.say('starting clusters: shared (3 nodes, also serves the no-session limit), textbook, sticky, and shared with 1 and 2 nodes');
  const start =
    (key: string, nodes: number, mode: ModeConfig, profile: 'tuned' | 'textbook', env: Record<string, string> = {}, store: 'single' | 'sentinel' = 'single') =>
    async () => {
      b.targets[key] = await startTarget(key === 'shared1' ? 'shared-1' : key === 'shared2' ? 'shared-2' : key, nodes, mode, profile, b.work, env, store);
    };
  const tasks = [
    start('shared', 3, 'shared', 'tuned'),
    start('textbook', 3, 'shared', 'textbook'),
    ...MODE_CONFIGS.filter((m) => m !== 'shared').map((mode) => start(mode, 3, mode, 'tuned')),
    start('shared1', 1, 'shared', 'tuned'),
    start('shared2', 2, 'shared', 'tuned'),
    ...Object.entries(VARIANTS).map(([name, v]) => start(name, 3, 'shared', 'tuned', v.env, v.store)),
    ...b.opts.storedLevels.map((level) => async () => {
      b.say(`stored sessions: a shared cluster with ${level.toLocaleString('en')} sessions in Redis`);
      const target = (b.targets[`stored${level}`] = await startTarget(`stored-${level}`, 3, 'shared', 'tuned', b.work));
      await fillTo(target.redis!, level);
    }),
  ];
  await settleAll(tasks, 2);
  b.levels = b.opts.storedLevels.map((level) => ({ level, target: b.targets[`stored${level}`]! }));
}

function wrkOn(b: Bench, t: Target, kind: 'get' | 'login', p?: string, cookies = true, seconds = b.opts.seconds): Promise<WrkResult> {
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
  });
}

/** Every configuration and operation of the results table. */
function matrixOf(b: Bench): Cell[] {
  const { targets } = b;
  const matrix: Cell[] = [];
  const readOps: Array<[Operation, string]> = [
    ['read', '/api/cart'],
    ['me', '/api/me'],
  ];
  matrix.push({ config: 'limit', operation: 'read', target: targets.shared!, run: () => wrkOn(b, targets.shared!, 'get', '/api/ping', false) });
  for (const config of ['textbook', ...MODE_CONFIGS] as const) {
    const t = targets[config]!;
    // jwt keeps no cart (501): its authenticated read is GET /api/me, which writes nothing there.
    for (const [operation, p] of readOps) matrix.push({ config, operation, target: t, run: () => wrkOn(b, t, 'get', config === 'jwt' ? '/api/me' : p) });
    matrix.push({ config, operation: 'login', target: t, run: () => wrkOn(b, t, 'login') });
  }
  for (const config of Object.keys(VARIANTS) as VariantConfig[]) {
    const t = targets[config]!;
    for (const [operation, p] of readOps) matrix.push({ config, operation, target: t, run: () => wrkOn(b, t, 'get', p) });
  }
  return matrix;
}

/** One second of each kind of request (a GET without a session; a login) on every cluster, once. */
async function warmUp(b: Bench, matrix: Cell[]): Promise<void> {
  b.say('warm-up');
  const done = new Set<string>();
  for (const m of matrix) {
    const kind = m.operation === 'login' ? 'login' : 'get';
    const key = `${m.target.state.dir} ${kind}`;
    if (done.has(key)) continue; // read and me warm up the same GET on the same cluster
    done.add(key);
    await wrkOn(b, m.target, kind, kind === 'login' ? undefined : '/api/ping', false, 1);
  }
}

/** Every cell once per round, round after round, with the store commands and CPU each cost. */
async function measureRounds(b: Bench, matrix: Cell[]): Promise<Map<string, Sample[]>> {
  const samples = new Map<string, Sample[]>();
  for (let r = 1; r <= b.opts.rounds; r++) {
    for (const m of matrix) {
      const s = await measureCell(m, r);
      const key = `${m.config}/${m.operation}`;
      samples.set(key, [...(samples.get(key) ?? []), s]);
      b.say(
        `round ${r}/${b.opts.rounds}  ${key.padEnd(14)} ${s.rps.toFixed(0).padStart(7)} req/s  p99 ${s.p99Ms.toFixed(2)} ms  CPU µs/req node ${s.cpu.node.toFixed(0)} nginx ${s.cpu.nginx.toFixed(0)} redis ${s.cpu.redis.toFixed(0)}${s.commands === null ? '' : `  ${s.commands.toFixed(2)} Redis cmd/req`}${s.errors ? `  errors ${s.errors}` : ''}`,
      );
    }
  }
  return samples;
}

async function measureCell(m: Cell, round: number): Promise<Sample> {
  // Scraping the nodes' metrics runs DBSIZE (the active-session gauge): outside the commandstats window.
  const sentBefore = await sentStats(m.target.state);
  const before = m.target.redis ? await commandStats(m.target.redis) : null;
  const classes = processClasses(m.target);
  const cpuBefore = cpuSnapshot(classes);
  const res = await m.run();
  const cpuAfter = cpuSnapshot(classes);
  const after = m.target.redis ? await commandStats(m.target.redis) : null;
  const cpu = Object.fromEntries(Object.keys(classes).map((c) => [c, (cpuAfter[c]! - cpuBefore[c]!) / res.requests])) as Record<CpuClass, number>;
  const sentAfter = await sentStats(m.target.state);
  const byName = before === null || after === null ? null : commandsBetween(before, after, res.requests);
  const sentByName = m.target.redis ? commandsBetween(sentBefore.redis, sentAfter.redis, res.requests) : null;
  const dbByName = m.target.state.parts.some((p) => p.kind === 'postgres') ? commandsBetween(sentBefore.db, sentAfter.db, res.requests) : null;
  const commands = byName === null ? null : total(byName);
  return { ...res, commands, byName, sentByName, dbByName, cpu, round };
}

/** Each cell's medians over the rounds, and the rounds' spread; the limit is the denominator of every operation. */
function resultsOf(samples: Map<string, Sample[]>): Result[] {
  const limits = samples.get('limit/read')!;
  const limitRps = median(limits.map((s) => s.rps));
  const results: Result[] = [];
  for (const [key, xs] of samples) {
    const [config, operation] = key.split('/') as [ConfigName, Operation];
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
    const limitOf = (s: Sample) => limits.find((l) => l.round === s.round)!;
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
    };
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
    });
  }
  // The limit is the denominator for every operation.
  const limit = results.find((r) => r.config === 'limit')!;
  results.push({ ...limit, operation: 'login' }, { ...limit, operation: 'me' });
  return results;
}

/** One session, simultaneous writes through nginx: how many acknowledged writes each store keeps. */
async function measureWritesKept(b: Bench): Promise<BenchReport['concurrentWrites']> {
  b.say('concurrent writes kept: 100 simultaneous GET /api/me and 40 cart adds on one session');
  const concurrentWrites: BenchReport['concurrentWrites'] = [];
  // Every configuration whose sessions keep a counter and a cart (jwt keeps neither).
  for (const config of ['textbook', ...MODE_CONFIGS.filter((m) => MODE_DESCRIPTORS[m].capabilities.state)] as const) {
    const runs: ConcurrentWrites[] = [];
    // Logins use the login users (never a read session); each round a fresh session.
    for (let r = 0; r < b.opts.rounds; r++) runs.push(await measureConcurrentWrites(b.targets[config]!.state.url, LOGIN_USERS.first + r));
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

async function measureScaling(b: Bench): Promise<BenchReport['scaling']> {
  b.say('scaling: shared-mode reads with 1, 2 and 3 nodes');
  const { targets } = b;
  return {
    '1': Math.round((await wrkOn(b, targets.shared1!, 'get', '/api/cart')).rps),
    '2': Math.round((await wrkOn(b, targets.shared2!, 'get', '/api/cart')).rps),
    '3': Math.round((await wrkOn(b, targets.shared!, 'get', '/api/cart')).rps),
  };
}

/**
 * A read at each stored-session level (one cluster per level, filled at start-up), measured in
 * interleaved rounds (level by level within a round) so that a noisy moment hurts every level
 * alike; then what one scrape of every node's metrics costs Redis.
 */
async function measureStoredSessions(b: Bench): Promise<BenchReport['storedSessions']> {
  const runs = new Map<number, Array<{ rps: number; byName: Record<string, number> }>>(b.levels.map((l) => [l.level, []]));
  for (let r = 1; r <= b.opts.rounds && b.levels.length; r++) {
    for (const l of b.levels) {
      const redis = l.target.redis!;
      const before = await commandStats(redis);
      const res = await wrkOn(b, l.target, 'get', '/api/cart');
      const after = await commandStats(redis);
      runs.get(l.level)!.push({ rps: res.rps, byName: commandsBetween(before, after, res.requests) });
      b.say(`round ${r}/${b.opts.rounds}  ${l.level.toLocaleString('en').padStart(10)} stored: ${res.rps.toFixed(0)} req/s`);
    }
  }
  const storedSessions: BenchReport['storedSessions'] = [];
  for (const l of b.levels) {
    const redis = l.target.redis!;
    const levelRuns = runs.get(l.level)!;
    // One scrape of every node's metrics, as Prometheus does: what it costs Redis.
    const before = await commandStats(redis);
    for (const p of l.target.state.parts.filter((x) => x.kind === 'app')) await fetch(`http://127.0.0.1:${p.ports!.metrics!}/metrics`).then((r) => r.text());
    const scrapeCommands = commandsBetween(before, await commandStats(redis));
    const byName: Record<string, number> = {};
    for (const name of new Set(levelRuns.flatMap((x) => Object.keys(x.byName)))) byName[name] = round2(median(levelRuns.map((x) => x.byName[name] ?? 0)));
    const rps = levelRuns.map((x) => x.rps);
    storedSessions.push({
      stored: l.level,
      keys: await redis.dbsize(),
      rps: Math.round(median(rps)),
      rpsMin: Math.round(Math.min(...rps)),
      rpsMax: Math.round(Math.max(...rps)),
      redisCommandsPerRequest: round2(total(byName)),
      redisCommandsByName: byName,
      scrapeCommands,
    });
  }
  return storedSessions;
}

function reportOf(opts: BenchOptions, measured: Pick<BenchReport, 'results' | 'redisBytesPerSession' | 'concurrentWrites' | 'scaling' | 'storedSessions'>): BenchReport {
  const cpu = os.cpus();
  return {
    generatedAt: new Date().toISOString(),
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    settings: { rounds: opts.rounds, seconds: opts.seconds, connections: opts.connections, threads: opts.threads, nodes: 3 },
    results: measured.results.sort((a, b) => a.operation.localeCompare(b.operation) || order(a.config) - order(b.config)),
    redisBytesPerSession: measured.redisBytesPerSession,
    concurrentWrites: measured.concurrentWrites,
    scaling: measured.scaling,
    storedSessions: measured.storedSessions,
  };
}

const order = (c: ConfigName) => ['limit', 'textbook', ...MODE_CONFIGS, ...Object.keys(VARIANTS)].indexOf(c);
