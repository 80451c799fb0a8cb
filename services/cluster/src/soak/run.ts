import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatDuration } from '@session-cluster/app/duration';
import { type ClusterHandle, down, type Mode, removeRun, up } from '../cluster.js';
import type { PartState } from '../parts.js';
import { abortableSleep } from '../lib/abort.js';
import { signal } from '../lib/pids.js';
import { freePort } from '../lib/ports.js';
import { Driver, percentile } from './driver.js';
import { type NodeSample, openRedis, type RedisSample, sampleNode, sampleRedis } from './probe.js';

/**
 * The soak: a fresh local cluster with short session lifetimes, a churn of logins, reads, cart
 * writes, logouts and abandoned sessions for `durationS`, then `quietS` with no traffic at all.
 * A sample every `everyS` (and a final one); the verdict after the quiet period: every session
 * gone, every index entry gone, each node's heap back within `heapTolerance` of its start.
 */
export interface SoakOptions {
  mode: Mode;
  nodes: number;
  durationS: number;
  quietS: number;
  everyS: number;
  /**
   * Before the churn: the same traffic for `warmupS`, every session logged out (so none is left),
   * then the heap baseline after a full GC: JIT-compiled code, pools and caches are in it, sessions
   * are not. 0: the baseline is the node as started.
   */
  warmupS: number;
  idleS: number;
  absoluteS: number;
  users: number;
  pool: number;
  thinkMs: number;
  /** 0.2: heap may end at most 20 % above its start. */
  heapTolerance: number;
  /** The nodes' and nginx's logs are copied here (logs-<mode>/) when the cluster is torn down. */
  logsDir?: string;
  say: (line: string) => void;
  signal: AbortSignal;
}

/** Traffic counted by the churn driver, for one sample's window or the whole run. */
export interface Traffic {
  requests: number;
  errors: number;
  errorKinds: Record<string, number>;
  p95Ms: number | null;
  logins: number;
  logouts: number;
  abandoned: number;
}

export interface Sample extends Traffic {
  atS: number;
  phase: 'start' | 'churn' | 'quiet' | 'end';
  /** Sessions the cluster holds: shared, Redis's s:* keys; sticky, the sum of the nodes' gauges. */
  liveSessions: number | null;
  redis: RedisSample | null;
  nodes: Record<string, NodeSample>;
}

export interface Check {
  what: string;
  held: boolean;
  detail: string;
}

export interface SoakReport {
  mode: Mode;
  settings: Omit<SoakOptions, 'say' | 'signal' | 'mode'>;
  startedAt: string;
  totals: Traffic & { distinctUsersPossible: number };
  samples: Sample[];
  checks: Check[];
  passed: boolean;
}

const MB = (b: number | null | undefined) => (b === null || b === undefined || Number.isNaN(b) ? '-' : `${(b / 1048576).toFixed(1)}MB`);

export function formatSample(s: Sample): string {
  const r = s.redis;
  const redis = r
    ? `redis s:${r.sessionKeys} idx:${r.indexKeys} (members ${r.indexMembers - r.indexMembersDead} live, ${r.indexMembersDead} dead) rl:${r.limiterKeys} mem ${MB(r.usedMemoryBytes)}`
    : 'redis -';
  const nodes = Object.entries(s.nodes)
    .map(([n, x]) =>
      x.up
        ? `${n} rss ${MB(x.rssBytes)} heap ${MB(x.heapUsedBytes)} fds ${x.openFds ?? '-'} sess ${x.sessionsActive ?? '-'}${x.indexSessions !== null ? ` idx ${x.indexSessions}/${x.indexUsers}u` : ''}`
        : `${n} DOWN`,
    )
    .join(' | ');
  const errs = s.errors
    ? ` (${Object.entries(s.errorKinds)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')})`
    : '';
  return `t=${formatDuration(Math.round(s.atS)).padEnd(6)} ${s.phase.padEnd(5)} req ${s.requests} err ${s.errors}${errs} p95 ${s.p95Ms === null ? '-' : `${s.p95Ms.toFixed(1)}ms`} logins ${s.logins} live ${s.liveSessions ?? '-'}\n         ${redis}\n         ${nodes}`;
}

/**
 * The checks after the quiet period. Heaps are compared after a full garbage collection on both
 * sides (see GC_PRELOAD): at the end of the warm-up and at the end of the quiet period. Without
 * it a heap sample mostly measures garbage nobody has collected yet: an idle node has no reason
 * to run a full collection, and measured that way heaps "ended" 35-190 % above their start.
 */
export function judge(
  o: Pick<SoakOptions, 'mode' | 'heapTolerance'>,
  end: Sample,
  baseHeaps: Record<string, number | null>,
  endHeaps: Record<string, number | null>,
  totals: SoakReport['totals'],
): Check[] {
  const checks: Check[] = [];
  checks.push({ what: 'every session gone', held: end.liveSessions === 0, detail: `${end.liveSessions ?? 'unknown'} session(s) left` });
  if (o.mode === 'shared') {
    const r = end.redis;
    checks.push({
      what: 'every index entry gone',
      held: !!r && r.indexKeys === 0 && r.indexMembers === 0,
      detail: r ? `${r.indexKeys} idx:* key(s) with ${r.indexMembers} member(s) (${r.indexMembersDead} dead)` : 'Redis not sampled',
    });
  } else {
    const nodes = Object.entries(end.nodes);
    const unknown = nodes.filter(([, n]) => n.indexSessions === null || n.indexUsers === null).map(([name]) => name);
    const left = nodes.reduce((a, [, n]) => a + (n.indexSessions ?? 0) + (n.indexUsers ?? 0), 0);
    checks.push({
      what: 'every index entry gone',
      held: unknown.length === 0 && left === 0,
      detail: unknown.length
        ? `cannot be checked: ${unknown.join(', ')} export no session_cluster_user_index_sessions / _users gauges (the sticky index lives in the node's memory)`
        : nodes.map(([name, n]) => `${name}: ${n.indexSessions} id(s), ${n.indexUsers} user map(s)`).join('; '),
    });
  }
  for (const name of Object.keys(end.nodes)) {
    const startHeap = baseHeaps[name] ?? null;
    const endHeap = endHeaps[name] ?? null;
    const held = startHeap !== null && endHeap !== null && endHeap <= startHeap * (1 + o.heapTolerance);
    checks.push({
      what: `${name} heap back within ${Math.round(o.heapTolerance * 100)} % of its start`,
      held,
      detail: `live heap at the start (after the warm-up, if any) ${MB(startHeap)}, after the quiet period ${MB(endHeap)}${startHeap && endHeap ? ` (${(((endHeap - startHeap) / startHeap) * 100).toFixed(0)} %)` : ''}`,
    });
  }
  checks.push({
    what: 'no request failed',
    held: totals.errors === 0,
    detail: `${totals.errors} of ${totals.requests}${totals.errors ? `: ${JSON.stringify(totals.errorKinds)}` : ''}`,
  });
  return checks;
}

/**
 * Loaded into the soak's nodes only (NODE_OPTIONS=--require): SIGUSR2 runs a full garbage
 * collection, so that the soak can read each node's live heap from outside. Nothing else changes.
 */
const GC_PRELOAD = `'use strict';
require('node:v8').setFlagsFromString('--expose-gc');
const gc = require('node:vm').runInNewContext('gc');
process.on('SIGUSR2', () => gc());
`;

/** One soak as it goes: the cluster, the driver producing the traffic, and the samples taken. */
interface Soak {
  o: SoakOptions;
  runDir: string;
  cluster: ClusterHandle;
  apps: PartState[];
  redis: ReturnType<typeof openRedis> | null;
  /** The driver whose traffic the samples count (the warm-up's while it runs, then the churn's). */
  driver: Driver;
  /** Epoch ms the samples' atS counts from (the start of the churn, once it has begun). */
  t0: number;
  samples: Sample[];
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), `sc-soak-${o.mode}-`));
  const startedAt = new Date().toISOString();
  let soak: Soak | null = null;
  try {
    soak = await startSoakCluster(o, runDir);
    o.say(formatSample(await takeSample(soak, 'start')));
    const warmup = await warmUp(soak);
    const baseHeaps = await liveHeaps(soak);
    sayHeaps(soak, o.warmupS > 0 ? 'after the warm-up' : 'before the churn', baseHeaps);
    await churn(soak);
    await quiet(soak);
    const end = await takeSample(soak, 'end');
    o.say(formatSample(end));
    const endHeaps = await liveHeaps(soak);
    sayHeaps(soak, 'after the quiet period', endHeaps);
    const totals = totalsOf(soak, warmup);
    const checks = judge(o, end, baseHeaps, endHeaps, totals);
    const { say: _s, signal: _g, mode: _m, logsDir: _l, ...settings } = o;
    return { mode: o.mode, settings, startedAt, totals, samples: soak.samples, checks, passed: checks.every((c) => c.held) };
  } finally {
    await tearDown(o, runDir, soak);
  }
}

/** A fresh cluster with the soak's short session lifetimes, its nodes able to collect garbage on SIGUSR2 (GC_PRELOAD). */
async function startSoakCluster(o: SoakOptions, runDir: string): Promise<Soak> {
  const preload = path.join(runDir, 'gc-on-sigusr2.cjs');
  fs.writeFileSync(preload, GC_PRELOAD);
  o.say(`${o.mode}: starting ${o.nodes} nodes (idle ${formatDuration(o.idleS)}, absolute ${formatDuration(o.absoluteS)}, ${o.pool} demo users)`);
  const cluster = await up({
    dir: runDir,
    mode: o.mode,
    nodes: o.nodes,
    port: await freePort(),
    monitoring: false,
    demoUsers: o.pool,
    nodeEnv: {
      LOG_LEVEL: 'warn',
      SESSION_IDLE_TIMEOUT: String(o.idleS),
      SESSION_ABSOLUTE_TIMEOUT: String(o.absoluteS),
      // Every soak request comes from 127.0.0.1: no lock-out of the one client (it never fails a login anyway).
      LOGIN_MAX_FAILURES_PER_CLIENT: '100000',
      NODE_OPTIONS: `--require ${preload}`,
    },
    signal: o.signal,
  });
  o.say(`${o.mode}: cluster up at ${cluster.url} (run folder ${runDir})`);
  const redisPart = cluster.state.parts.find((p) => p.kind === 'redis');
  return {
    o,
    runDir,
    cluster,
    apps: cluster.state.parts.filter((p) => p.kind === 'app'),
    redis: redisPart ? openRedis(`${redisPart.url}/0`) : null,
    driver: new Driver({ url: cluster.url, users: o.users, pool: o.pool, thinkMs: o.thinkMs }),
    t0: Date.now(),
    samples: [],
  };
}

/** The driver's traffic since the last sample, every node's metrics, Redis's keys. */
async function takeSample(soak: Soak, phase: Sample['phase']): Promise<Sample> {
  const { o, apps, redis } = soak;
  const w = soak.driver.takeWindow();
  // In the nodes' order (app-1, app-2, …), whichever answers first.
  const sampled = await Promise.all(apps.map((p) => sampleNode(p.ports!.metrics!)));
  const nodes: Record<string, NodeSample> = Object.fromEntries(apps.map((p, i) => [p.name, sampled[i]!]));
  const r = redis ? await sampleRedis(redis).catch(() => null) : null;
  const liveSessions =
    o.mode === 'shared'
      ? (r?.sessionKeys ?? null)
      : Object.values(nodes).reduce<number | null>((a, n) => (a === null || n.sessionsActive === null ? null : a + n.sessionsActive), 0);
  const s: Sample = {
    atS: (Date.now() - soak.t0) / 1000,
    phase,
    requests: w.requests,
    errors: w.errors,
    errorKinds: w.errorKinds,
    p95Ms: percentile(w.latenciesMs, 95),
    logins: w.logins,
    logouts: w.logouts,
    abandoned: w.abandoned,
    liveSessions,
    redis: r,
    nodes,
  };
  soak.samples.push(s);
  return s;
}

/** Each node's heap right after a full collection (SIGUSR2, GC_PRELOAD). */
async function liveHeaps(soak: Soak): Promise<Record<string, number | null>> {
  for (const p of soak.apps) signal(p.pid, 'SIGUSR2');
  await abortableSleep(1000, soak.o.signal);
  const out: Record<string, number | null> = {};
  for (const p of soak.apps) out[p.name] = (await sampleNode(p.ports!.metrics!)).heapUsedBytes;
  return out;
}

function sayHeaps(soak: Soak, when: string, heaps: Record<string, number | null>): void {
  soak.o.say(
    `${soak.o.mode}: ${when}: live heap after a full GC: ${Object.entries(heaps)
      .map(([n, b]) => `${n} ${MB(b)}`)
      .join(', ')}`,
  );
}

type WarmupTraffic = Pick<Traffic, 'requests' | 'errors' | 'errorKinds'>;

/** The churn's traffic for warmupS with every session logged out, so the heap baseline holds what warms up and no session. */
async function warmUp(soak: Soak): Promise<WarmupTraffic> {
  const { o } = soak;
  if (o.warmupS <= 0) return { requests: 0, errors: 0, errorKinds: {} };
  const churnDriver = soak.driver;
  const w = new Driver({ url: soak.cluster.url, users: o.users, pool: o.pool, thinkMs: o.thinkMs, logoutAll: true });
  soak.driver = w;
  o.say(`${o.mode}: warm-up for ${formatDuration(o.warmupS)}: the same traffic, every session logged out`);
  w.start();
  await abortableSleep(o.warmupS * 1000, o.signal);
  await w.stop();
  const warmup = w.totals();
  o.say(`${o.mode}: warm-up: ${warmup.requests} requests, ${warmup.errors} errors`);
  soak.driver = churnDriver;
  return warmup;
}

/** Samples every everyS until `until` (epoch ms), as `phase`. */
async function sampleUntil(soak: Soak, phase: 'churn' | 'quiet', until: number): Promise<void> {
  const every = soak.o.everyS * 1000;
  for (let nextAt = Date.now() + every; Date.now() < until; nextAt += every) {
    await abortableSleep(Math.min(nextAt, until) - Date.now(), soak.o.signal);
    if (Date.now() < until) soak.o.say(formatSample(await takeSample(soak, phase)));
  }
}

/** The churn for durationS; samples count from its start. */
async function churn(soak: Soak): Promise<void> {
  const { o } = soak;
  soak.t0 = Date.now();
  soak.driver.start();
  o.say(`${o.mode}: churn for ${formatDuration(o.durationS)}: ${o.users} users, ${o.thinkMs} ms think time; then ${formatDuration(o.quietS)} quiet`);
  await sampleUntil(soak, 'churn', soak.t0 + o.durationS * 1000);
  await soak.driver.stop();
  o.say(formatSample(await takeSample(soak, 'churn')));
}

/** quietS with no traffic at all: what the sessions' lifetimes must clean up by themselves. */
async function quiet(soak: Soak): Promise<void> {
  const { o } = soak;
  o.say(`${o.mode}: churn stopped; quiet for ${formatDuration(o.quietS)}`);
  await sampleUntil(soak, 'quiet', Date.now() + o.quietS * 1000);
}

/** The churn's traffic and the warm-up's: every request of the soak must succeed. */
function totalsOf(soak: Soak, warmup: WarmupTraffic): SoakReport['totals'] {
  const totals = { ...soak.driver.totals(), distinctUsersPossible: soak.o.pool };
  for (const [k, v] of Object.entries(warmup.errorKinds)) totals.errorKinds[`warm-up: ${k}`] = v;
  totals.errors += warmup.errors;
  totals.requests += warmup.requests;
  return totals;
}

/** The driver stopped, the cluster down, its logs kept (logsDir), the run folder removed. */
async function tearDown(o: SoakOptions, runDir: string, soak: Soak | null): Promise<void> {
  if (soak) await soak.driver.stop();
  soak?.redis?.close();
  // A start-up that failed or was interrupted may have left parts behind: state.json names them.
  const teardown = soak ? soak.cluster.down() : down(runDir);
  await teardown.catch((err: Error) => o.say(`${o.mode}: teardown: ${err.message}`));
  if (o.logsDir && fs.existsSync(path.join(runDir, 'logs'))) {
    fs.rmSync(o.logsDir, { recursive: true, force: true });
    fs.cpSync(path.join(runDir, 'logs'), o.logsDir, { recursive: true });
  }
  removeRun(runDir);
  o.say(`${o.mode}: cluster down`);
}
