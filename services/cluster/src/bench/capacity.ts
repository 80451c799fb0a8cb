import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { APP_ENTRY } from '../cluster.js';
import { cpuMicros } from '../lib/cpu.js';
import { terminate } from '../lib/pids.js';
import { pin, pinPlan } from '../lib/pin.js';
import { freePort } from '../lib/ports.js';
import { median } from '../lib/stats.js';
import { appSpec, launch, redisSpec, type PartState } from '../parts.js';
import { CLUSTER_NODE_TIMEOUT_MS, waitClusterOk } from '../redis-cluster.js';
import { nodeEnvironment } from '../topology.js';
import { ceiling, DEFAULT_MIX, errorPct, LEVELS, mixCost, perCore, predictThroughput, unitsNeeded, UTILISATION, type ClassCost, type Op } from './capacity-model.js';
import { runPaced } from './paced.js';
import { runBench, type BenchOptions, type BenchReport } from './run.js';
import { generatedHeader } from './doc-header.js';
import { spreadPct } from './targets.js';
import { runWrk, writeCredentials } from './wrk.js';

/**
 * `npm run bench -- --capacity`: what the system costs at scale, from measured CPU per request.
 * Runs the benchmark's modes (pinned, fixed rate and saturation: run.ts), a shared node over a Redis
 * Cluster of 1, 2 and 3 primaries (is the store's CPU per request flat as shards are added?), and
 * shared reads with 1, 2 and 3 nodes on this machine (the prediction's check); then the model
 * (capacity-model.ts) and docs/capacity.md.
 */
export interface CapacityReport {
  generatedAt: string;
  command: string;
  machine: BenchReport['machine'];
  settings: BenchReport['settings'];
  mix: Record<Op, number>;
  utilisation: number;
  /** Per mode and operation, at the fixed rate: CPU µs per request by class, and req/s per core of each. */
  operations: Array<{ mode: string; operation: Op; cost: ClassCost; nodeRpsPerCore: number; nodeCpuSpreadPct: number }>;
  /** Per mode, for the mix: its CPU per request, nodes at each level, Redis primaries (shards) or PostgreSQL cores. */
  modes: Array<{
    mode: string;
    cost: ClassCost;
    nodeRpsPerCore: number;
    nodes: Record<string, number>;
    nginxCores: Record<string, number>;
    redisPrimaryCeiling: number | null;
    redisShards: Record<string, number> | null;
    postgresCores: Record<string, number> | null;
  }>;
  /** A shared node over a Redis Cluster of k primaries: the store's CPU per request, summed over the primaries. */
  shards: Array<{ primaries: number; operation: 'read' | 'me'; redisCpuUs: number; redisCpuRange: [number, number]; nodeCpuUs: number; rps: number }>;
  /** Predicted vs measured shared-read throughput on this machine with 1, 2 and 3 nodes. */
  check: Array<{ nodes: number; predicted: number; measured: number; errorPct: number; coresUsed: number; cpusAllowed: string[] }>;
  assumptions: string[];
}

const MODES = ['shared', 'sticky', 'database', 'cookie', 'jwt'] as const;

export async function runCapacity(opts: BenchOptions): Promise<CapacityReport> {
  const bench = await runBench({ ...opts, scope: 'capacity' });
  const shards: CapacityReport['shards'] = [];
  for (const primaries of [1, 2, 3]) shards.push(...(await measureShards(primaries, opts)));
  return modelOf(bench, shards);
}

/** The model from a benchmark report (pinned, fixed-rate figures) and the shard measurements. */
export function modelOf(bench: BenchReport, shards: CapacityReport['shards']): CapacityReport {
  const paced = bench.results.filter((r) => r.offeredRate !== null);
  const costOf = (mode: string, op: Op): ClassCost => {
    const r = paced.find((x) => x.config === mode && x.operation === op);
    if (!r) throw new Error(`capacity: no fixed-rate result for ${mode}/${op}`);
    return { node: r.nodeCpuUsPerRequest, nginx: r.nginxCpuUsPerRequest, redis: r.redisCpuUsPerRequest, postgres: r.postgresCpuUsPerRequest };
  };
  const operations: CapacityReport['operations'] = [];
  for (const mode of MODES)
    for (const operation of ['read', 'me', 'login'] as const) {
      const cost = costOf(mode, operation);
      const r = paced.find((x) => x.config === mode && x.operation === operation)!;
      operations.push({ mode, operation, cost, nodeRpsPerCore: Math.round(perCore(cost.node)), nodeCpuSpreadPct: r.nodeCpuSpreadPct });
    }
  const at = (f: (level: number) => number) => Object.fromEntries(LEVELS.map((l) => [String(l), f(l)]));
  const modes = MODES.map((mode) => {
    const cost = mixCost({ read: costOf(mode, 'read'), me: costOf(mode, 'me'), login: costOf(mode, 'login') }, DEFAULT_MIX);
    return {
      mode,
      cost: roundCost(cost),
      nodeRpsPerCore: Math.round(perCore(cost.node)),
      nodes: at((l) => unitsNeeded(l, cost.node)),
      nginxCores: at((l) => unitsNeeded(l, cost.nginx)),
      redisPrimaryCeiling: cost.redis > 0 ? Math.round(ceiling(cost.redis)) : null,
      redisShards: cost.redis > 0 ? at((l) => unitsNeeded(l, cost.redis)) : null,
      postgresCores: cost.postgres > 0 ? at((l) => unitsNeeded(l, cost.postgres)) : null,
    };
  });
  // The check: saturation CPU per request of a shared read (pinned, 1 node) predicts the unpinned 1-3 node runs.
  const sat = bench.results.find((r) => r.config === 'shared' && r.operation === 'read' && r.offeredRate === null)!;
  const otherUs = sat.nginxCpuUsPerRequest + sat.redisCpuUsPerRequest + sat.loadGeneratorCpuUsPerRequest;
  const check = (['1', '2', '3'] as const).map((n) => {
    const predicted = Math.round(predictThroughput({ nodes: Number(n), cores: bench.machine.cpus, nodeUs: sat.nodeCpuUsPerRequest, otherUs }));
    const measured = bench.scaling[n];
    // What the run's own processes got of the machine: measured req/s × their CPU per request (a shared machine gives the rest to others).
    const c = bench.scalingCpu[n];
    const coresUsed = c ? Math.round(((measured * (c.node + c.nginx + c.redis + c.loadGenerator)) / 1e6) * 100) / 100 : NaN;
    return { nodes: Number(n), predicted, measured, errorPct: Math.round(errorPct(predicted, measured) * 10) / 10, coresUsed, cpusAllowed: c?.cpus ?? [] };
  });
  return {
    generatedAt: new Date().toISOString(),
    command: bench.command,
    machine: bench.machine,
    settings: bench.settings,
    mix: DEFAULT_MIX,
    utilisation: UTILISATION,
    operations,
    modes,
    shards,
    check,
    assumptions: [
      `Costs are the fixed-rate figures (${bench.settings.rate} reads/s, ${bench.settings.loginRate} logins/s offered to one pinned node): each request pays its own event-loop turn, as it does in a deployment not run at saturation; at saturation requests share turns and cost less (the check below uses the saturation figures, since it predicts saturation).`,
      'A node is one event loop: one core. Its libuv thread pool (scrypt at login) is counted in its CPU and assumed to fit on that core.',
      `Every unit (a node, a Redis primary, an nginx worker core, a PostgreSQL core) is sized to stay at or below ${UTILISATION * 100} % CPU; capacity scales linearly with units (no shared lock or network limit is modelled).`,
      'A Redis primary is single-threaded: its ceiling is 0.7 × 1e6 / its CPU µs per request; a Redis Cluster spreads keys over its primaries by hash slot, so shards = load / ceiling, if the store CPU per request stays flat as shards are added (measured below). Replicas double the servers but serve no session traffic.',
      'PostgreSQL (database mode) is given as cores of one primary; past one machine it needs partitioning, which this project does not do.',
      `Cores here are ${bench.machine.model}; another CPU moves every figure by its per-core speed.`,
    ],
  };
}

const roundCost = (c: ClassCost): ClassCost => ({ node: Math.round(c.node), nginx: Math.round(c.nginx), redis: Math.round(c.redis), postgres: Math.round(c.postgres) });

/**
 * One shared node (pinned, no nginx) over a Redis Cluster of `primaries` primaries (no replicas:
 * they serve no session traffic), reads and counted writes at the fixed rate for the rounds; the
 * store's CPU per request summed over the primaries.
 */
async function measureShards(primaries: number, opts: BenchOptions): Promise<CapacityReport['shards']> {
  const say = opts.onProgress;
  const plan = pinPlan();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sc-shards-${primaries}-`));
  const parts: PartState[] = [];
  let firstBusPort = 0;
  try {
    say(`Redis Cluster with ${primaries} primar${primaries === 1 ? 'y' : 'ies'}: starting`);
    for (let i = 1; i <= primaries; i++) {
      const d = path.join(dir, `redis-${i}`);
      fs.mkdirSync(d);
      const busPort = await freePort();
      if (i === 1) firstBusPort = busPort;
      parts.push(await launch(redisSpec(await freePort(), d, 'off', { name: `redis-${i}`, cluster: { nodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS, busPort } }), dir));
    }
    await joinSlots(
      parts.map((p) => p.port),
      firstBusPort,
    );
    const spec = appSpec({
      index: 1,
      port: await freePort(),
      metricsPort: await freePort(),
      appEntry: APP_ENTRY,
      env: {
        ...nodeEnvironment({ mode: 'shared', redisUrl: `${parts[0]!.url}/0`, demoUsers: 200 }),
        REDIS_CLUSTER_NODES: parts.map((p) => `127.0.0.1:${p.port}`).join(','),
        SESSION_SECRETS: randomBytes(32).toString('hex'),
        LOGIN_MAX_FAILURES_PER_CLIENT: '100000',
      },
    });
    const node = await launch(spec, dir);
    parts.push(node);
    if (plan.pinned) {
      pin([node.pid], plan.nodes);
      pin(
        parts.filter((p) => p !== node).map((p) => p.pid),
        plan.rest,
      );
    }
    const cookieFile = await writeCredentials(node.url, 100, path.join(dir, 'cookies.txt'));
    await runWrk({ url: node.url, kind: 'get', path: '/api/cart', cookieFile, seconds: 2, connections: opts.connections, threads: opts.threads, workDir: dir, pin: plan });
    const stores = parts.filter((p) => p !== node).map((p) => p.pid);
    const out: CapacityReport['shards'] = [];
    const runs = { read: [] as Array<{ redis: number; node: number; rps: number }>, me: [] as Array<{ redis: number; node: number; rps: number }> };
    for (let r = 1; r <= opts.rounds; r++) {
      for (const operation of ['read', 'me'] as const) {
        const redisBefore = stores.reduce((a, pid) => a + cpuMicros(pid), 0);
        const nodeBefore = cpuMicros(node.pid);
        const res = await runPaced({
          url: node.url,
          kind: 'get',
          path: operation === 'read' ? '/api/cart' : '/api/me',
          cookieFile,
          rate: opts.rate,
          seconds: opts.seconds,
          workDir: dir,
          pin: plan,
        });
        const redis = (stores.reduce((a, pid) => a + cpuMicros(pid), 0) - redisBefore) / res.requests;
        const nodeUs = (cpuMicros(node.pid) - nodeBefore) / res.requests;
        if (res.errors) throw new Error(`Redis Cluster with ${primaries} primaries: ${res.errors} of ${res.requests} ${operation} requests failed`);
        runs[operation].push({ redis, node: nodeUs, rps: res.rps });
        say(
          `round ${r}/${opts.rounds}  ${primaries} primaries  ${operation.padEnd(4)} ${res.rps.toFixed(0)} req/s  CPU µs/req node ${nodeUs.toFixed(0)} redis (all primaries) ${redis.toFixed(0)}`,
        );
      }
    }
    for (const operation of ['read', 'me'] as const) {
      const xs = runs[operation];
      const redis = xs.map((x) => x.redis);
      out.push({
        primaries,
        operation,
        redisCpuUs: Math.round(median(redis)),
        redisCpuRange: [Math.round(Math.min(...redis)), Math.round(Math.max(...redis))],
        nodeCpuUs: Math.round(median(xs.map((x) => x.node))),
        rps: Math.round(median(xs.map((x) => x.rps))),
      });
    }
    return out;
  } finally {
    for (const p of parts.reverse()) await terminate(p.pid);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Joins cluster-mode servers into a cluster of primaries only, the 16384 slots split evenly
 * (redis-cli --cluster create needs 3); each meets the first, at its bus port.
 */
async function joinSlots(ports: number[], firstBusPort: number): Promise<void> {
  const per = Math.ceil(16384 / ports.length);
  for (const [i, port] of ports.entries()) {
    const r = new Redis({ port, host: '127.0.0.1' });
    try {
      // A node that has met no other announces an empty address in CLUSTER SLOTS (clients then cannot reach it).
      await r.call('CONFIG', 'SET', 'cluster-announce-ip', '127.0.0.1');
      await r.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16383, (i + 1) * per - 1)));
      if (i > 0) await r.call('CLUSTER', 'MEET', '127.0.0.1', String(ports[0]), String(firstBusPort));
    } finally {
      r.disconnect();
    }
  }
  await waitClusterOk(ports);
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : '–');

/** docs/capacity.md. */
export function capacityMarkdown(r: CapacityReport): string {
  const levels = LEVELS.map(String);
  const lvl = (l: string) => `${Number(l).toLocaleString('en')} req/s`;
  const mixText = `${r.mix.read * 100} % reads (\`GET /api/cart\`), ${r.mix.me * 100} % counted writes (\`GET /api/me\`), ${r.mix.login * 100} % logins`;
  const shardSpread = (op: 'read' | 'me') => spreadPct(r.shards.filter((s) => s.operation === op).map((s) => s.redisCpuUs));
  const lines = [
    ...generatedHeader('What it costs at scale', 'npm run bench -- --capacity', r),
    `- Machine: ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}; ${r.settings.cpuLayout}; the whole run took ${Math.round(r.settings.wallSeconds / 60)} min`,
    `- Method: each mode alone, one node behind nginx, ${r.settings.rounds} rounds of ${r.settings.seconds} s at a fixed offered rate (${r.settings.rate} reads/s, ${r.settings.loginRate} logins/s; k6 constant-arrival-rate), CPU per request per class of process from /proc (median over the rounds). See docs/benchmarks.md for the method.`,
    `- Mix sized for: ${mixText}; every unit at ${r.utilisation * 100} % CPU.`,
    '',
    '## Per operation: CPU µs per request, and what one core serves',
    '',
    '| mode | operation | node µs (round spread) | node: req/s per core | nginx µs | Redis µs | PostgreSQL µs |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...r.operations.map(
      (o) => `| ${o.mode} | ${o.operation} | ${o.cost.node} (${o.nodeCpuSpreadPct} %) | ${fmt(o.nodeRpsPerCore)} | ${o.cost.nginx} | ${o.cost.redis} | ${o.cost.postgres} |`,
    ),
    '',
    '## For the mix: nodes, Redis primaries, PostgreSQL cores',
    '',
    `| mode | node µs / request | node req/s per core | ${levels.map((l) => `nodes at ${lvl(l)}`).join(' | ')} | Redis primary ceiling at ${r.utilisation * 100} % (req/s) | ${levels.map((l) => `Redis shards at ${lvl(l)}`).join(' | ')} | ${levels.map((l) => `PostgreSQL cores at ${lvl(l)}`).join(' | ')} |`,
    `|---|---:|---:|${levels.map(() => '---:').join('|')}|---:|${levels.map(() => '---:').join('|')}|${levels.map(() => '---:').join('|')}|`,
    ...r.modes.map(
      (m) =>
        `| ${m.mode} | ${m.cost.node} | ${fmt(m.nodeRpsPerCore)} | ${levels.map((l) => fmt(m.nodes[l]!)).join(' | ')} | ${m.redisPrimaryCeiling === null ? '–' : fmt(m.redisPrimaryCeiling)} | ${levels.map((l) => (m.redisShards ? fmt(m.redisShards[l]!) : '–')).join(' | ')} | ${levels.map((l) => (m.postgresCores ? fmt(m.postgresCores[l]!) : '–')).join(' | ')} |`,
    ),
    '',
    `nginx, for the same mix (cores at ${r.utilisation * 100} %): ${r.modes.map((m) => `${m.mode} ${levels.map((l) => fmt(m.nginxCores[l]!)).join(' / ')}`).join('; ')} (at ${levels.map(lvl).join(' / ')}).`,
    '',
    '## Redis Cluster: is the store CPU per request flat as primaries are added?',
    '',
    `One shared node (pinned, no nginx) over a Redis Cluster of 1, 2 and 3 primaries (no replicas), ${r.settings.rate} req/s offered, ${r.settings.rounds} rounds; Redis CPU summed over every primary.`,
    '',
    '| primaries | operation | Redis µs / request (rounds) | node µs / request | req/s |',
    '|---:|---|---:|---:|---:|',
    ...r.shards.map((s) => `| ${s.primaries} | ${s.operation} | ${s.redisCpuUs} (${s.redisCpuRange[0]}–${s.redisCpuRange[1]}) | ${s.nodeCpuUs} | ${s.rps} |`),
    '',
    `Spread of the medians across 1, 2 and 3 primaries: read ${shardSpread('read').toFixed(1)} %, me ${shardSpread('me').toFixed(1)} % ((highest − lowest) / median). Each read is one GETEX on one slot: a shard added takes its share of keys and of requests, and no request touches two shards, so the per-request cost should not grow with the number of shards; where it is flat, the shard counts above hold.`,
    '',
    '## Check: predicted vs measured throughput on this machine',
    '',
    `Shared-mode reads at saturation (wrk, ${r.settings.connections} connections), 1, 2 and 3 nodes behind nginx, unpinned, one cluster at a time. Predicted from the pinned 1-node saturation run's CPU per request: min(nodes × 1e6 / node µs, ${r.machine.cpus} cores × 1e6 / (node + nginx + Redis + wrk µs)).`,
    '',
    "| nodes | predicted req/s | measured req/s | measured vs predicted | cores the run's processes used (measured req/s × their CPU µs / request) | cores they may use |",
    '|---:|---:|---:|---:|---:|---|',
    ...r.check.map(
      (c) =>
        `| ${c.nodes} | ${c.predicted} | ${c.measured} | ${c.errorPct > 0 ? '+' : ''}${c.errorPct} % | ${c.coresUsed} of ${r.machine.cpus} | ${c.cpusAllowed.join(', ') || '–'} |`,
    ),
    '',
    'The prediction assumes the run has the machine to itself; where the cores used fall short of the cores its processes may use, something else had the rest, and the measurement says as much about it as about the model.',
    '',
    '## Assumptions',
    '',
    ...r.assumptions.map((a) => `- ${a}`),
    '',
  ];
  return lines.join('\n');
}

/** The terminal summary of --capacity. */
export function capacityTable(r: CapacityReport): string {
  const levels = LEVELS.map(String);
  return [
    ...r.modes.map(
      (m) =>
        `${m.mode.padEnd(9)} node ${String(m.cost.node).padStart(5)} µs/req (mix), ${fmt(m.nodeRpsPerCore).padStart(6)} req/s per core; nodes at 10k/100k/1M: ${levels.map((l) => m.nodes[l]).join('/')}${m.redisShards ? `; Redis shards ${levels.map((l) => m.redisShards![l]).join('/')}` : ''}${m.postgresCores ? `; PostgreSQL cores ${levels.map((l) => m.postgresCores![l]).join('/')}` : ''}`,
    ),
    ...r.shards.map((s) => `Redis Cluster ${s.primaries} primaries ${s.operation.padEnd(4)}: ${s.redisCpuUs} µs/req (${s.redisCpuRange[0]}–${s.redisCpuRange[1]})`),
    ...r.check.map((c) => `check ${c.nodes} node(s): predicted ${c.predicted} req/s, measured ${c.measured} (${c.errorPct} %), ${c.coresUsed} cores used`),
  ].join('\n');
}
