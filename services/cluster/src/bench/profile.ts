import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APP_ENTRY } from '../cluster.js';
import { cpuMicros } from '../lib/cpu.js';
import { nodeLoad } from '../lib/node-metrics.js';
import { terminate } from '../lib/pids.js';
import { freePort } from '../lib/ports.js';
import { median } from '../lib/stats.js';
import { appSpec, launch, redisSpec } from '../parts.js';
import { nodeEnvironment } from '../topology.js';
import { pin, type PinPlan } from '../lib/pin.js';
import { runPaced } from './paced.js';
import { runWrk, writeCredentials } from './wrk.js';
import { generatedHeader } from './doc-header.js';

/**
 * `npm run bench -- --profile`: where one node's CPU goes on an authenticated read (`GET
 * /api/cart`, shared mode) against the no-session limit (`GET /api/ping`). One node, straight
 * (no nginx: only the node's own work), over a real redis-server, loaded by wrk on 127.0.0.1.
 * A fresh node runs under `node --cpu-prof` for each path and round, the paths interleaved; the
 * profiles' self time is summed by where the code lives (an npm package, a file of the app, a Node
 * core module, the garbage collector) and divided by the requests served. The difference between
 * the two columns is what the session costs, and who spends it.
 */
export interface ProfileReport {
  generatedAt: string;
  command: string;
  settings: { rounds: number; seconds: number; connections: number };
  /**
   * Per path, over the interleaved rounds: requests measured, req/s (median), the node's CPU per
   * request from /proc (median and range; the profiler's own cost included), and the pooled
   * profile's busy time per request.
   */
  paths: Record<ProfiledPath, { requests: number; rps: number; cpuUsPerRequest: number; cpuUsRange: [number, number]; profiledUsPerRequest: number }>;
  /** The read's node CPU per request over the limit's, round by round. */
  cpuRatioByRound: number[];
  /** Self time per request by code location, µs, pooled over the rounds; sorted by what the read adds. */
  rows: Array<{ where: string; limitUs: number; readUs: number }>;
  /** The same for each round alone (its limit profile against its read profile): the spread of `rows`. */
  rowsByRound: Array<ProfileReport['rows']>;
}
export type ProfiledPath = 'limit' | 'read';
const PATHS: Record<ProfiledPath, string> = { limit: '/api/ping', read: '/api/cart' };

/**
 * Code locations grouped by who runs them, for the summary table. Node's crypto is counted where it
 * is (node:crypto), not under its caller: on a read it is express-session's session hashes and the
 * cookie signature's HMAC, but a self-time profile cannot say so.
 */
export const GROUPS: Array<{ name: string; test: (where: string) => boolean }> = [
  { name: 'express-session and its dependencies (on-headers, cookie, cookie-signature)', test: (w) => ['express-session', 'on-headers', 'cookie', 'cookie-signature'].includes(w) },
  { name: 'ioredis and its dependencies', test: (w) => ['ioredis', '@ioredis/commands', 'denque', 'redis-errors', 'standard-as-callback', 'cluster-key-slot'].includes(w) },
  { name: "this project's code (services/app)", test: (w) => w.startsWith('app: ') },
  {
    name: 'body parsing (body-parser, type-is, raw-body, content-type, on-finished)',
    test: (w) => ['body-parser', 'type-is', 'raw-body', 'content-type', 'media-typer', 'on-finished', 'iconv-lite'].includes(w),
  },
  { name: 'node:crypto', test: (w) => w === 'node:crypto' },
  { name: 'Node core, native code and the garbage collector', test: (w) => w.startsWith('node:') || w.startsWith('(') },
  { name: 'express, router, helmet, pino, prom-client and other packages', test: () => true },
];

/** The subset of a .cpuprofile (Chrome DevTools format) this reads. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code lives: its npm package, `app: <file>`, `node:<module>`, or the VM's own bucket. */
export function codeLocation(frame: { functionName: string; url: string }): string {
  const url = frame.url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  const app = /services\/app\/dist\/(.+)$/.exec(url);
  if (app) return `app: ${app[1]}`;
  if (url.startsWith('node:'))
    return `node:${
      url
        .slice(5)
        .replace(/^internal\//, '')
        .split('/')[0]
    }`;
  if (url) return path.basename(url);
  return frame.functionName.startsWith('(') ? frame.functionName : '(native code)';
}

/** Self time by code location, µs in all, without idle time. */
export function selfTimeByLocation(profile: CpuProfile): Map<string, number> {
  const where = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const usPerSample = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
  const out = new Map<string, number>();
  for (const id of profile.samples) {
    const frame = where.get(id);
    if (!frame || frame.functionName === '(idle)') continue;
    const key = codeLocation(frame);
    out.set(key, (out.get(key) ?? 0) + usPerSample);
  }
  return out;
}

interface Round {
  rps: number;
  requests: number;
  cpuUsPerRequest: number;
  /** Every request the profile saw (the logins and the warm-up too), as the node counted them. */
  served: number;
  selfUs: Map<string, number>;
}

export async function runProfile(opts: { rounds: number; seconds: number; connections: number; onProgress: (line: string) => void }): Promise<ProfileReport> {
  if (!fs.existsSync(APP_ENTRY)) throw new Error(`app: ${APP_ENTRY} is missing; run \`npm run build\` first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-profile-'));
  const redis = await launch(redisSpec(await freePort(), dir, 'off'), dir);
  const secrets = randomBytes(32).toString('hex');
  const rounds: Record<ProfiledPath, Round[]> = { limit: [], read: [] };
  try {
    // Interleaved (limit, read, limit, read…), so that a noisy moment hurts both alike.
    for (let round = 1; round <= opts.rounds; round++) {
      for (const which of Object.keys(PATHS) as ProfiledPath[]) {
        opts.onProgress(`round ${round}/${opts.rounds}, ${which}: ${PATHS[which]} for ${opts.seconds} s under node --cpu-prof`);
        rounds[which].push(
          await profileOnce({ name: which, mode: 'shared', path: PATHS[which] }, path.join(dir, `${which}-${round}`), { ...opts, redisPort: redis.port, secrets, dir }),
        );
      }
    }
  } finally {
    await terminate(redis.pid);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Self time per request: pooled over the rounds (all their microseconds over all the requests they served), and per round.
  const perRequest = (rs: Round[]) => {
    const served = rs.reduce((a, r) => a + r.served, 0);
    const out = new Map<string, number>();
    for (const r of rs) for (const [where, us] of r.selfUs) out.set(where, (out.get(where) ?? 0) + us / served);
    return out;
  };
  const profiles = { limit: perRequest(rounds.limit), read: perRequest(rounds.read) };
  const summary = (which: ProfiledPath) => {
    const cpu = rounds[which].map((r) => r.cpuUsPerRequest);
    return {
      requests: rounds[which].reduce((a, r) => a + r.requests, 0),
      rps: median(rounds[which].map((r) => r.rps)),
      cpuUsPerRequest: median(cpu),
      cpuUsRange: [Math.min(...cpu), Math.max(...cpu)] as [number, number],
      profiledUsPerRequest: [...profiles[which].values()].reduce((a, b) => a + b, 0),
    };
  };
  const locations = new Set([...profiles.limit.keys(), ...profiles.read.keys()]);
  const rowsOf = (p: typeof profiles) => [...locations].map((where) => ({ where, limitUs: p.limit.get(where) ?? 0, readUs: p.read.get(where) ?? 0 }));
  const rows = rowsOf(profiles).sort((a, b) => b.readUs - b.limitUs - (a.readUs - a.limitUs));
  const rowsByRound = rounds.read.map((read, i) => rowsOf({ limit: perRequest([rounds.limit[i]!]), read: perRequest([read]) }));
  return {
    generatedAt: new Date().toISOString(),
    command: `npm run bench -- --profile --rounds ${opts.rounds} --seconds ${opts.seconds} --connections ${opts.connections}`,
    settings: { rounds: opts.rounds, seconds: opts.seconds, connections: opts.connections },
    paths: { limit: summary('limit'), read: summary('read') },
    cpuRatioByRound: rounds.read.map((r, i) => r.cpuUsPerRequest / rounds.limit[i]!.cpuUsPerRequest),
    rows,
    rowsByRound,
  };
}

/** What one profiled node runs: its mode and settings, and the path every request asks for. */
export interface ProfileSubject {
  name: string;
  mode: 'shared' | 'sticky';
  env?: Record<string, string>;
  path: string;
}

/**
 * One node under --cpu-prof: 20 logins, a 1 s warm-up, the measured run (wrk at saturation, or k6 at
 * `rate` req/s, pinned as the benchmark pins); then its profile.
 */
async function profileOnce(
  subject: ProfileSubject,
  profileDir: string,
  o: { seconds: number; connections: number; redisPort: number; secrets: string; dir: string; rate?: number; pin?: PinPlan },
): Promise<Round> {
  const which = subject.name;
  const spec = appSpec({
    index: 1,
    port: await freePort(),
    metricsPort: await freePort(),
    appEntry: APP_ENTRY,
    env: { ...nodeEnvironment({ mode: subject.mode, redisUrl: `redis://127.0.0.1:${o.redisPort}/0`, demoUsers: 20 }), SESSION_SECRETS: o.secrets, ...subject.env },
  });
  const node = await launch({ ...spec, args: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, ...spec.args] }, o.dir);
  try {
    if (o.pin?.pinned) pin([node.pid], o.pin.nodes);
    const cookieFile = await writeCredentials(node.url, 20, path.join(o.dir, 'cookies.txt'));
    const wrk = (seconds: number) =>
      runWrk({ url: node.url, kind: 'get', path: subject.path, cookieFile, seconds, connections: o.connections, threads: 1, workDir: o.dir, pin: o.pin });
    await wrk(1);
    const before = cpuMicros(node.pid);
    const run =
      o.rate === undefined
        ? await wrk(o.seconds)
        : await runPaced({ url: node.url, kind: 'get', path: subject.path, cookieFile, rate: o.rate, seconds: o.seconds, workDir: o.dir, pin: o.pin! });
    const cpuUsPerRequest = (cpuMicros(node.pid) - before) / run.requests;
    if (run.errors > 0) throw new Error(`${which}: ${run.errors} of ${run.requests} requests failed`);
    const served = (await nodeLoad(node.ports!.metrics!)).requests;
    if (served < run.requests) throw new Error(`${which}: the node counted ${served} requests, wrk sent ${run.requests}`);
    await terminate(node.pid); // SIGTERM drains and exits; --cpu-prof writes the profile on exit
    const file = fs.existsSync(profileDir) ? fs.readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
    if (!file) throw new Error(`${which}: node --cpu-prof wrote no profile in ${profileDir}`);
    const profile = JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8')) as CpuProfile;
    return { rps: run.rps, requests: run.requests, cpuUsPerRequest, served, selfUs: selfTimeByLocation(profile) };
  } finally {
    await terminate(node.pid);
  }
}

/** The rows summed by GROUPS (each location in the first group that takes it). */
export function groupRows(rows: ProfileReport['rows']): Array<{ name: string; limitUs: number; readUs: number }> {
  const out = GROUPS.map((g) => ({ name: g.name, limitUs: 0, readUs: 0 }));
  for (const row of rows) {
    const g = out[GROUPS.findIndex((x) => x.test(row.where))]!;
    g.limitUs += row.limitUs;
    g.readUs += row.readUs;
  }
  return out;
}

/** docs/profile.md. */
export function profileMarkdown(r: ProfileReport, top = 25): string {
  const us = (n: number) => n.toFixed(1);
  const cpu = (p: ProfileReport['paths'][ProfiledPath]) => `${Math.round(p.cpuUsPerRequest)} (${Math.round(p.cpuUsRange[0])}–${Math.round(p.cpuUsRange[1])})`;
  const ratios = r.cpuRatioByRound;
  const byRound = r.rowsByRound.map(groupRows);
  const totalAdds = byRound.map((round) => round.reduce((a, g) => a + g.readUs - g.limitUs, 0));
  const lines = [
    ...generatedHeader('Where a read spends its CPU', 'npm run bench -- --profile', r),
    `- Method: one shared-mode node (no nginx) over a real redis-server, under \`node --cpu-prof\`; wrk with ${r.settings.connections} connections for ${r.settings.seconds} s per path, a fresh node process per path and round, ${r.settings.rounds} rounds interleaved (limit, read, limit, read…). Each profile also holds the 20 logins that made its cookies and a 1 s warm-up. Self time summed by where the code lives, per request served: pooled over the rounds, and for what a read adds, each round alone (its read profile against its own limit profile) for the range. The profiler adds its own cost; compare the columns, not the absolute figures with \`npm run bench\`.`,
    '',
    '| | limit: `GET /api/ping` | read: `GET /api/cart` | × limit |',
    '|---|---:|---:|---:|',
    `| requests/s (median) | ${Math.round(r.paths.limit.rps)} | ${Math.round(r.paths.read.rps)} | ${(r.paths.read.rps / r.paths.limit.rps).toFixed(2)} |`,
    `| node CPU µs/request from /proc (median; rounds min–max) | ${cpu(r.paths.limit)} | ${cpu(r.paths.read)} | ${(r.paths.read.cpuUsPerRequest / r.paths.limit.cpuUsPerRequest).toFixed(2)} (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) |`,
    `| profiled µs/request (self time, all code, pooled) | ${us(r.paths.limit.profiledUsPerRequest)} | ${us(r.paths.read.profiledUsPerRequest)} | ${(r.paths.read.profiledUsPerRequest / r.paths.limit.profiledUsPerRequest).toFixed(2)} |`,
    '',
    'What a read adds, µs per request, by who spends it:',
    '',
    '| who | limit | read | read adds (pooled) | read adds, rounds min–max |',
    '|---|---:|---:|---:|---:|',
    ...groupRows(r.rows).map((g, i) => {
      const adds = byRound.map((round) => round[i]!.readUs - round[i]!.limitUs);
      return `| ${g.name} | ${us(g.limitUs)} | ${us(g.readUs)} | ${us(g.readUs - g.limitUs)} | ${us(Math.min(...adds))}–${us(Math.max(...adds))} |`;
    }),
    `| all code | ${us(r.paths.limit.profiledUsPerRequest)} | ${us(r.paths.read.profiledUsPerRequest)} | ${us(r.paths.read.profiledUsPerRequest - r.paths.limit.profiledUsPerRequest)} | ${us(Math.min(...totalAdds))}–${us(Math.max(...totalAdds))} |`,
    '',
    `Self time per request, µs, by where the code lives; the ${top} locations that add the most to a read first:`,
    '',
    '| code | limit | read | read adds |',
    '|---|---:|---:|---:|',
    ...r.rows.slice(0, top).map((row) => `| ${row.where} | ${us(row.limitUs)} | ${us(row.readUs)} | ${us(row.readUs - row.limitUs)} |`),
    '',
  ];
  return lines.join('\n');
}

/** Per round, self time per request by group (GROUPS) of two subjects, and the node CPU per request of each from /proc. */
export interface PairProfile {
  a: string;
  b: string;
  rounds: Array<{ aCpuUs: number; bCpuUs: number; groups: Array<{ name: string; aUs: number; bUs: number }> }>;
}

/**
 * Where a missed target's difference lives: `a` and `b` profiled alternately for `rounds` rounds, a
 * fresh node each time, at the benchmark's fixed rate and pinning, over one redis-server.
 */
export async function profilePair(
  a: ProfileSubject,
  b: ProfileSubject,
  opts: { rounds: number; seconds: number; connections: number; rate: number; pin: PinPlan; onProgress: (line: string) => void },
): Promise<PairProfile> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-profile-pair-'));
  const redis = await launch(redisSpec(await freePort(), dir, 'off'), dir);
  if (opts.pin.pinned) pin([redis.pid], opts.pin.rest);
  const secrets = randomBytes(32).toString('hex');
  const out: PairProfile = { a: a.name, b: b.name, rounds: [] };
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      const runs: Round[] = [];
      for (const s of [a, b]) {
        opts.onProgress(`profile round ${round}/${opts.rounds}, ${s.name}: ${s.path} at ${opts.rate} req/s under node --cpu-prof`);
        runs.push(await profileOnce(s, path.join(dir, `${s.name}-${round}`), { ...opts, redisPort: redis.port, secrets, dir }));
      }
      const [ra, rb] = runs as [Round, Round];
      const rows = [...new Set([...ra.selfUs.keys(), ...rb.selfUs.keys()])].map((where) => ({
        where,
        limitUs: (ra.selfUs.get(where) ?? 0) / ra.served,
        readUs: (rb.selfUs.get(where) ?? 0) / rb.served,
      }));
      out.rounds.push({ aCpuUs: ra.cpuUsPerRequest, bCpuUs: rb.cpuUsPerRequest, groups: groupRows(rows).map((g) => ({ name: g.name, aUs: g.limitUs, bUs: g.readUs })) });
    }
  } finally {
    await terminate(redis.pid);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
