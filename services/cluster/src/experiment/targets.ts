import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { removeRun, REPO_ROOT, up, type Mode, type Store } from '../cluster.js';
import type { RedisPersistence } from '../parts.js';
import { METRICS_IN_CONTAINER, nodeLoad, parseMetrics } from '../lib/node-metrics.js';
import { freePort } from '../lib/ports.js';
import type { Fault } from '@session-cluster/loadtest/faults';
import { swarmTarget } from '../swarm/target.js';
import { localStoreAccess, SESSION_ROW_BYTES, type StoreAccess } from './probe.js';

/**
 * Where the failover experiment runs: the local cluster (`npm run cluster`'s parts) or the compose
 * stack (`docker compose up`, the same containers a user runs). run.ts drives both the same way:
 * the same k6 script and claims, a kill by name, the same report.
 */
export interface Target {
  /** nginx, as the load reaches it. */
  url: string;
  /** The app nodes, by the name `kill` takes (app-2; compose: session-cluster-experiment-app-2). */
  nodes: string[];
  /** Prometheus's remote-write endpoint for k6's metrics, when Prometheus runs. */
  prometheusWrite?: string;
  /** Each node's load (active sessions, requests answered); null: its metrics could not be read. */
  loads(): Promise<Record<string, { sessions: number; requests: number } | null>>;
  /** True once the load has reached nginx (the moment the kill is timed from). */
  loadStarted(): Promise<boolean>;
  /** The store's server a store fault kills: the single Redis, or (`primary`) whichever Redis is primary now. */
  storeVictim(primary: boolean): Promise<string>;
  kill(name: string, signal: 'KILL' | 'TERM'): Promise<void>;
  /** Starts it again; resolves once it is ready (healthy). */
  start(name: string): Promise<void>;
  /** Reads the stores, for the credential probe (probe.ts). */
  store: StoreAccess;
  /** Stops everything it started and removes it, keeping every part's log in `logsDir`. */
  down(logsDir: string): Promise<void>;
  /** The swarm target's faults (lib/faults.js `swarm`): of hosts and services, not of a node by name. */
  swarm?: SwarmFaults;
}

export interface SwarmFaults {
  hosts: string[];
  /** The host a fault takes: `choice` (hN), or the Redis primary's host, or the one running app-1. */
  victim(fault: Fault, choice: string | undefined): Promise<string>;
  /** The app slots (app-2 ...) a host runs now. */
  appSlotsOn(host: string): Promise<string[]>;
  inject(fault: Fault, host: string): Promise<void>;
  /** True once the app runs all its replicas on hosts other than `lost`. */
  replicasBack(lost: string[]): Promise<boolean>;
  /** Power on, heal, or make active again; resolves once the host is back in the swarm. */
  restore(): Promise<void>;
}

export interface TargetOptions {
  mode: Mode;
  nodes: number;
  demoUsers: number;
  store?: Store;
  redisPersistence?: RedisPersistence;
  monitoring: boolean;
  nodeSettings: Record<string, string>;
  /** A folder of its own for this run (the local cluster's state). */
  runDir: string;
  /** Swarm: extra redis-server arguments (--min-replicas-to-write ...). */
  redisArgs?: string[];
}

export const TARGETS = ['local', 'compose', 'swarm'] as const;
export type TargetKind = (typeof TARGETS)[number];

// --- the local cluster ---------------------------------------------------------------------------

export async function localTarget(o: TargetOptions): Promise<Target> {
  const cluster = await up({
    dir: o.runDir,
    mode: o.mode,
    nodes: o.nodes,
    port: await freePort(),
    monitoring: o.monitoring,
    demoUsers: o.demoUsers,
    // info: one line per request, so the nodes' logs copied into the report folder say what each node did.
    nodeEnv: { LOG_LEVEL: 'info', ...o.nodeSettings },
    ...(o.store && { store: o.store }),
    ...(o.redisPersistence && { redisPersistence: o.redisPersistence }),
  });
  const { state } = cluster;
  const apps = state.parts.filter((p) => p.kind === 'app');
  const nginxLog = state.parts.find((p) => p.kind === 'nginx')!.log;
  const before = fs.statSync(nginxLog).size;
  const prom = state.parts.find((p) => p.kind === 'prometheus');
  return {
    url: state.url,
    nodes: apps.map((p) => p.name),
    ...(prom && { prometheusWrite: `${prom.url}/api/v1/write` }),
    async loads() {
      const out: Record<string, { sessions: number; requests: number } | null> = {};
      for (const p of apps) out[p.name] = await nodeLoad(p.ports!.metrics!).catch(() => null);
      return out;
    },
    // nginx's access log goes to this file: its first line is the load's first request.
    loadStarted: async () => fs.statSync(nginxLog).size > before,
    storeVictim: async (primary) => (primary ? (await cluster.primary()).name : 'redis'),
    kill: (name, signal) => cluster.kill(name, signal),
    start: (name) => cluster.start(name).then(() => {}),
    store: localStoreAccess(state),
    async down(logsDir) {
      try {
        await cluster.down();
      } finally {
        if (fs.existsSync(path.join(o.runDir, 'logs'))) fs.cpSync(path.join(o.runDir, 'logs'), logsDir, { recursive: true });
        removeRun(o.runDir);
      }
    },
  };
}

// --- the compose stack ---------------------------------------------------------------------------

/** A project of its own, so that the experiment never touches (or `down -v`s) a stack the user runs. */
export const COMPOSE_PROJECT = 'session-cluster-experiment';
const run = promisify(execFile);

/** What the compose target cannot do, as a usage error's text; null when it can. */
export function composeRefuses(o: Pick<TargetOptions, 'store' | 'redisPersistence' | 'nodeSettings'>): string | null {
  if (o.store === 'redis-cluster') return '--store redis-cluster runs on the local target only (docker-compose.yml has no Redis Cluster)';
  if (o.redisPersistence === 'aof-always') return '--redis-persistence aof-always runs on the local target only (compose: REDIS_APPENDONLY=yes|no)';
  if (Object.keys(o.nodeSettings).length) return '--env applies to the local target only (compose passes the nodes the variables docker-compose.yml names; see .env.example)';
  return null;
}

export async function composeTarget(o: TargetOptions): Promise<Target> {
  const refused = composeRefuses(o);
  if (refused) throw new Error(refused);
  const ports = { lb: await freePort(), prometheus: await freePort(), grafana: await freePort() };
  // COMPOSE_FILE as docker compose reads it (a list, path-separated), docker-compose.yml when unset;
  // the Sentinel store layers its file over them.
  const base = (process.env.COMPOSE_FILE || 'docker-compose.yml').split(process.env.COMPOSE_PATH_SEPARATOR || path.delimiter).filter(Boolean);
  const files = [...base, ...(o.store === 'sentinel' ? ['docker-compose.sentinel.yml'] : [])].flatMap((f) => ['-f', f]);
  const profiles = o.mode === 'database' ? ['--profile', 'database'] : [];
  const env = {
    ...process.env,
    COMPOSE_PROJECT_NAME: COMPOSE_PROJECT,
    SESSION_MODE: o.mode,
    APP_REPLICAS: String(o.nodes),
    DEMO_USERS: String(o.demoUsers),
    LOG_LEVEL: 'info',
    LB_PORT: String(ports.lb),
    PROMETHEUS_PORT: String(ports.prometheus),
    GRAFANA_PORT: String(ports.grafana),
    REDIS_APPENDONLY: o.redisPersistence === 'off' ? 'no' : 'yes',
  };
  const docker = async (args: string[], timeoutMs = 120_000) => {
    try {
      return (await run('docker', args, { cwd: REPO_ROOT, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`docker ${args.join(' ')}: ${(e.stderr ?? e.message).trim().split('\n').slice(-8).join('\n')}`, { cause: err });
    }
  };
  const compose = (args: string[], timeoutMs?: number) => docker(['compose', ...files, ...profiles, ...args], timeoutMs);
  const container = (service: string, n = 1) => `${COMPOSE_PROJECT}-${service}-${n}`;
  const metricsOf = async (name: string) => parseMetrics(await docker(['exec', name, ...METRICS_IN_CONTAINER], 10_000));

  await compose(['down', '-v', '--remove-orphans', '--timeout', '5']); // a run interrupted before this one
  try {
    await compose(['up', '-d', '--build', '--wait', '--wait-timeout', '300'], 15 * 60_000);
  } catch (err) {
    await compose(['down', '-v', '--remove-orphans', '--timeout', '5']).catch(() => {});
    throw err;
  }
  const nodes = Array.from({ length: o.nodes }, (_, i) => container('app', i + 1));
  const loads = async () => {
    const out: Record<string, { sessions: number; requests: number } | null> = {};
    for (const n of nodes) {
      const m = await metricsOf(n).catch(() => null);
      out[n] = m && { sessions: m.get('session_cluster_sessions_active') ?? 0, requests: m.get('session_cluster_http_requests_total') ?? 0 };
    }
    return out;
  };
  const requests = async () => Object.values(await loads()).reduce((sum, l) => sum + (l?.requests ?? 0), 0);
  const before = await requests();
  const redisServers = o.store === 'sentinel' ? [container('redis'), container('redis-replica', 1), container('redis-replica', 2)] : [container('redis')];
  return {
    url: `http://127.0.0.1:${ports.lb}`,
    nodes,
    prometheusWrite: `http://127.0.0.1:${ports.prometheus}/api/v1/write`,
    loads,
    loadStarted: async () => (await requests()) > before,
    async storeVictim(primary) {
      if (!primary) return container('redis');
      for (const name of redisServers) {
        const role = await docker(['exec', name, 'redis-cli', 'role'], 10_000).catch(() => '');
        if (role.split('\n')[0]!.trim() === 'master') return name;
      }
      throw new Error(`no Redis primary among ${redisServers.join(', ')}`);
    },
    kill: (name, signal) => docker(['kill', '--signal', signal, name]).then(() => {}),
    async start(name) {
      await docker(['start', name]);
      const deadline = Date.now() + 120_000;
      for (;;) {
        const health = (await docker(['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}', name], 10_000)).trim();
        if (health === 'healthy' || health === 'running') return;
        if (Date.now() > deadline) throw new Error(`${name} not healthy within 120 s (${health})`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    store: {
      url: `http://127.0.0.1:${ports.lb}`,
      async redisMemoryUsage(key) {
        if (o.mode !== 'shared') return null;
        return Number(await docker(['exec', container('redis'), 'redis-cli', '--raw', 'MEMORY', 'USAGE', key, 'SAMPLES', '0'], 10_000)) || null;
      },
      async sessionRowBytes(sid) {
        if (o.mode !== 'database' || !/^[A-Za-z0-9_-]+$/.test(sid)) return null;
        const bytes = await docker(['exec', container('postgres'), 'psql', '-h', '127.0.0.1', '-U', 'postgres', '-tAc', SESSION_ROW_BYTES.replace('$1', `'${sid}'`)], 10_000);
        return Number(bytes.trim()) || null;
      },
    },
    async down(logsDir) {
      // The logs first: `down` removes the containers, and their logs with them.
      fs.mkdirSync(logsDir, { recursive: true });
      fs.writeFileSync(path.join(logsDir, 'compose.log'), await compose(['logs', '--no-color', '--timestamps'], 60_000).catch((err: Error) => err.message));
      await compose(['down', '-v', '--remove-orphans', '--timeout', '20'], 3 * 60_000);
    },
  };
}

export function openTarget(kind: TargetKind, o: TargetOptions): Promise<Target> {
  if (kind === 'swarm') return swarmTarget(o);
  return kind === 'compose' ? composeTarget(o) : localTarget(o);
}
