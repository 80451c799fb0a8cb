import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { down, removeRun, up, type ClusterState, type Store } from '../cluster.js';
import { cpuSnapshot } from '../lib/cpu.js';
import { freePort } from '../lib/ports.js';
import { median } from '../lib/stats.js';
import type { RedisPersistence } from '../parts.js';
import { runWrk, requireWrk, writeCredentials } from './wrk.js';

/**
 * `npm run bench -- --durability`: what closing the loss window of `appendfsync everysec` costs a
 * session write. A machine crash can lose the last ~1 s of writes Redis acknowledged (a logout's
 * DEL among them); two settings close that window, and this measures both against the default:
 *   everysec   one Redis, AOF fsynced once a second (the default);
 *   always     one Redis, AOF fsynced before every reply (`--redis-persistence aof-always`);
 *   sentinel   a primary, two replicas and three Sentinels, everysec (the baseline for `wait`);
 *   wait       the same, each session write waiting for one replica (REDIS_WAIT_REPLICAS=1).
 * One configuration at a time, nothing else running; each round starts every configuration afresh,
 * in turn, so drift hurts all alike. The write is GET /api/me (it counts: one session write).
 */
export const DURABILITY_CONFIGS = {
  everysec: { store: 'single', persistence: 'aof', env: {} },
  always: { store: 'single', persistence: 'aof-always', env: {} },
  sentinel: { store: 'sentinel', persistence: 'aof', env: {} },
  wait: { store: 'sentinel', persistence: 'aof', env: { REDIS_WAIT_REPLICAS: '1' } },
} as const satisfies Record<string, { store: Store; persistence: RedisPersistence; env: Record<string, string> }>;
export type DurabilityConfig = keyof typeof DURABILITY_CONFIGS;

export interface DurabilityRow {
  config: DurabilityConfig;
  /** Medians over the rounds, with each round's lowest and highest. */
  writesPerS: number;
  writesPerSRange: [number, number];
  p50Ms: number;
  p99Ms: number;
  p99MsRange: [number, number];
  /** CPU time of the Redis servers per write (the primary and, with Sentinel, the replicas), µs. */
  redisCpuUsPerWrite: number;
  redisCpuUsRange: [number, number];
  errors: number;
}

export interface DurabilityReport {
  generatedAt: string;
  command: string;
  settings: { rounds: number; seconds: number; connections: number; threads: number; nodes: number };
  rows: DurabilityRow[];
}

const SESSIONS = 100;

export async function runDurability(opts: {
  rounds: number;
  seconds: number;
  connections: number;
  threads: number;
  onProgress: (line: string) => void;
}): Promise<DurabilityReport> {
  requireWrk();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-durability-'));
  const samples = new Map<DurabilityConfig, Array<{ rps: number; p50Ms: number; p99Ms: number; redisCpuUs: number; errors: number }>>();
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const [config, c] of Object.entries(DURABILITY_CONFIGS) as Array<[DurabilityConfig, (typeof DURABILITY_CONFIGS)[DurabilityConfig]]>) {
        const dir = path.join(work, `${config}-${round}`);
        let state: ClusterState | undefined;
        try {
          state = (
            await up({
              dir,
              nodes: 3,
              mode: 'shared',
              store: c.store,
              redisPersistence: c.persistence,
              port: await freePort(),
              monitoring: false,
              demoUsers: SESSIONS,
              nodeEnv: { ...c.env },
            })
          ).state;
          const cookieFile = await writeCredentials(state.url, SESSIONS, path.join(dir, 'cookies.txt'));
          const wrk = (seconds: number) =>
            runWrk({ url: state!.url, kind: 'get', path: '/api/me', cookieFile, seconds, connections: opts.connections, threads: opts.threads, workDir: dir });
          await wrk(1); // warm-up
          const redis = { redis: state.parts.filter((p) => p.kind === 'redis').map((p) => p.pid) };
          const before = cpuSnapshot(redis);
          const res = await wrk(opts.seconds);
          const cpu = cpuSnapshot(redis).redis! - before.redis!;
          const sample = { rps: res.rps, p50Ms: res.p50Ms, p99Ms: res.p99Ms, redisCpuUs: cpu / res.requests, errors: res.errors };
          opts.onProgress(`round ${round}/${opts.rounds} ${config}: ${Math.round(res.rps)} writes/s, p99 ${res.p99Ms} ms, Redis ${Math.round(sample.redisCpuUs)} us/write`);
          (samples.get(config) ?? samples.set(config, []).get(config)!).push(sample);
        } finally {
          if (state) await down(dir);
          removeRun(dir);
        }
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
  const rows = [...samples].map(([config, s]) => ({
    config,
    writesPerS: Math.round(median(s.map((x) => x.rps))),
    writesPerSRange: range(s.map((x) => Math.round(x.rps))),
    p50Ms: median(s.map((x) => x.p50Ms)),
    p99Ms: median(s.map((x) => x.p99Ms)),
    p99MsRange: range(s.map((x) => x.p99Ms)),
    redisCpuUsPerWrite: Math.round(median(s.map((x) => x.redisCpuUs))),
    redisCpuUsRange: range(s.map((x) => Math.round(x.redisCpuUs))),
    errors: s.reduce((n, x) => n + x.errors, 0),
  }));
  return {
    generatedAt: new Date().toISOString(),
    command: 'npm run bench -- --durability',
    settings: { rounds: opts.rounds, seconds: opts.seconds, connections: opts.connections, threads: opts.threads, nodes: 3 },
    rows,
  };
}

const overlap = (a: [number, number], b: [number, number]) => a[0] <= b[1] && b[0] <= a[1];

/** docs/durability.md: the table, and each difference claimed only where the rounds' ranges do not overlap. */
export function durabilityMarkdown(r: DurabilityReport): string {
  const row = (config: DurabilityConfig) => r.rows.find((x) => x.config === config)!;
  const compare = (on: DurabilityConfig, off: DurabilityConfig, what: string) => {
    const [a, b] = [row(on), row(off)];
    const rate = overlap(a.writesPerSRange, b.writesPerSRange)
      ? 'writes/s ranges overlap: no difference claimed'
      : `writes/s ${a.writesPerS} vs ${b.writesPerS} (${((a.writesPerS / b.writesPerS) * 100).toFixed(0)} %)`;
    const p99 = overlap(a.p99MsRange, b.p99MsRange) ? 'p99 ranges overlap' : `p99 ${a.p99Ms} vs ${b.p99Ms} ms`;
    const cpu = overlap(a.redisCpuUsRange, b.redisCpuUsRange) ? 'Redis CPU ranges overlap' : `Redis CPU ${a.redisCpuUsPerWrite} vs ${b.redisCpuUsPerWrite} us per write`;
    return `- ${what} (\`${on}\` vs \`${off}\`): ${rate}; ${p99}; ${cpu}.`;
  };
  const lines = [
    '# What a durable session write costs',
    '',
    `Generated by \`${r.command}\` at ${r.generatedAt}: ${r.settings.rounds} rounds, each configuration started afresh and measured alone, ${r.settings.nodes} nodes behind nginx, wrk ${r.settings.connections} connections, ${r.settings.seconds} s per run. The write is \`GET /api/me\` (it counts: one session write). Figures are medians, with the rounds' lowest and highest; a difference is claimed only where the ranges do not overlap.`,
    '',
    '| configuration | writes/s | p50 ms | p99 ms | Redis CPU per write, us | errors |',
    '|---|---|---|---|---|---|',
    ...r.rows.map(
      (x) =>
        `| ${x.config} | ${x.writesPerS} (${x.writesPerSRange[0]}–${x.writesPerSRange[1]}) | ${x.p50Ms} | ${x.p99Ms} (${x.p99MsRange[0]}–${x.p99MsRange[1]}) | ${x.redisCpuUsPerWrite} (${x.redisCpuUsRange[0]}–${x.redisCpuUsRange[1]}) | ${x.errors} |`,
    ),
    '',
    compare('always', 'everysec', 'fsync before every reply'),
    compare('wait', 'sentinel', 'WAIT for one replica after every session write'),
    '',
  ];
  return lines.join('\n');
}
