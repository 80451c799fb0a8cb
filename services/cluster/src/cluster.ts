import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeStore, SESSION_MODES, type SessionMode } from '@session-cluster/app/modes';
import { freePort, isListening, waitFor } from './lib/ports.js';
import { cmdline, isAlive, signal, terminate, waitGone } from './lib/pids.js';
import {
  appSpec,
  healthy,
  launch,
  nginxExporterSpec,
  nginxSpec,
  postgresSpec,
  prometheusSpec,
  redisExporterSpec,
  redisSpec,
  resolveBinary,
  sentinelSpec,
  type PartKind,
  type PartSpec,
  type PartState,
  type RedisPersistence,
} from './parts.js';
import { CLUSTER_NODE_TIMEOUT_MS, createCluster } from './redis-cluster.js';
import { localPrometheusConfig, type JobTargets } from './prometheus-config.js';
import { DEFAULT_LOG_MAX_BYTES, rotateLogs } from './lib/logs.js';
import { validateNodeEnvironment } from './lib/node-settings.js';
import { JOBS, nodeEnvironment } from './topology.js';

/**
 * The local cluster: the same topology as docker-compose.yml, as local processes.
 * Everything it knows lives in `<dir>/state.json`, so `up --detach`, `ps`, `kill`, `start`
 * and `down` can be separate invocations (and tests use the same code through this module).
 */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_DIR = path.join(REPO_ROOT, '.run', 'cluster');
export const APP_ENTRY = path.join(REPO_ROOT, 'services/app/dist/main.js');

export type Mode = SessionMode;
export const MODES: readonly Mode[] = SESSION_MODES;

export interface UpOptions {
  dir?: string;
  nodes?: number;
  mode?: Mode;
  /** nginx's public port on 127.0.0.1. */
  port?: number;
  /** Start Prometheus and the nginx/Redis exporters (default true). */
  monitoring?: boolean;
  demoUsers?: number;
  /** Node settings for every node (e.g. LOG_LEVEL, SESSION_IDLE_TIMEOUT; see lib/node-settings.ts), checked before anything starts. */
  nodeEnv?: Record<string, string>;
  onProgress?: (line: string) => void;
  /** Aborting stops the start-up between parts and takes down what was started (up rejects with AbortError). */
  signal?: AbortSignal;
  /** Each part's log is kept under this many bytes (copy-and-truncate to <name>.log.1; lib/logs.ts). */
  logMaxBytes?: number;
  /** Shared mode's Redis: append-only file fsynced every second (default) or none (parts.ts). */
  redisPersistence?: RedisPersistence;
  /** Shared mode's store topology: one Redis (default); a primary, two replicas and three Sentinels; or a Redis Cluster of 3 primaries + 3 replicas. */
  store?: Store;
}

export const STORES = ['single', 'sentinel', 'redis-cluster'] as const;
export type Store = (typeof STORES)[number];

export interface ClusterState {
  dir: string;
  mode: Mode;
  nodes: number;
  url: string;
  startedAt: string;
  /** The node settings this cluster was started with (DEMO_USERS and UpOptions.nodeEnv); `start app-N` reuses them. */
  settings?: Record<string, string>;
  /** The cap on each part's log (lib/logs.ts). */
  logMaxBytes?: number;
  /** Shared mode only. */
  redisPersistence?: RedisPersistence;
  store?: Store;
  parts: PartState[];
}

export interface PartStatus {
  name: string;
  kind: PartKind;
  pid: number | null;
  port: number;
  url: string;
  alive: boolean;
  healthy: boolean;
  mode: Mode;
  log: string;
  ports?: Record<string, number>;
  /** For Redis parts: what the server says it is right now (ROLE). */
  role?: 'primary' | 'replica' | 'sentinel';
}

const stateFile = (dir: string) => path.join(dir, 'state.json');

export function readState(dir = DEFAULT_DIR): ClusterState | null {
  try {
    return JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as ClusterState;
  } catch {
    return null;
  }
}

function writeState(state: ClusterState): void {
  fs.writeFileSync(stateFile(state.dir), JSON.stringify(state, null, 2));
}

/** Secrets for this run: SESSION_SECRETS from the environment, or a random one kept (0600) in the run folder. */
function sessionSecrets(dir: string): string {
  if (process.env.SESSION_SECRETS) return process.env.SESSION_SECRETS;
  const file = path.join(dir, 'session-secrets');
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

/** Renders the nginx configuration for this run (nginx.conf + render.sh) and checks it with `nginx -t`. */
/** `servers`: each node as NODE_ID=host:port (sticky routing names nodes by id; render.sh). */
export function renderNginx(opts: { confDir: string; mode: Mode; port: number; statusPort: number; servers: string[] }): void {
  fs.mkdirSync(opts.confDir, { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'nginx.conf'), path.join(opts.confDir, 'nginx.conf'));
  execFileSync('sh', [path.join(REPO_ROOT, 'infra/nginx/render.sh'), opts.confDir, opts.mode, `127.0.0.1:${opts.port}`, `127.0.0.1:${opts.statusPort}`, ...opts.servers], {
    stdio: 'pipe',
  });
  // stdout must be a file, not a socketpair: nginx opens /dev/stdout for its access log.
  const out = fs.openSync(path.join(opts.confDir, 'nginx-t.out'), 'w');
  try {
    execFileSync(resolveBinary('nginx'), ['-t', '-q', '-p', opts.confDir + '/', '-c', path.join(opts.confDir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', out, 'pipe'] });
  } catch (err) {
    throw new Error(`nginx: the rendered configuration is invalid:\n${String((err as { stderr?: Buffer }).stderr ?? err)}`, { cause: err });
  } finally {
    fs.closeSync(out);
  }
}

function prometheusConfig(dir: string, targets: Record<keyof typeof JOBS, JobTargets>): string {
  const promDir = path.join(dir, 'prometheus');
  const targetsDir = path.join(promDir, 'targets');
  fs.mkdirSync(targetsDir, { recursive: true });
  const compose = fs.readFileSync(path.join(REPO_ROOT, 'infra/prometheus/prometheus.yml'), 'utf8');
  const { yaml, files } = localPrometheusConfig(compose, targets, targetsDir);
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(file, content);
  const configFile = path.join(promDir, 'prometheus.yml');
  fs.writeFileSync(configFile, yaml);
  return configFile;
}

/** launch(), and one progress line once the part is healthy. */
async function launchReporting(spec: PartSpec, logDir: string, say: (line: string) => void = () => {}): Promise<PartState> {
  const t0 = Date.now();
  const part = await launch(spec, logDir);
  say(`${spec.name.padEnd(15)} healthy  ${spec.url}  (pid ${part.pid}, ${Date.now() - t0} ms)`);
  return part;
}

export async function up(opts: UpOptions = {}): Promise<ClusterState> {
  const dir = path.resolve(opts.dir ?? DEFAULT_DIR);
  const mode = opts.mode ?? 'shared';
  const nodes = opts.nodes ?? 3;
  const port = opts.port ?? 8080;
  const monitoring = opts.monitoring ?? true;
  const say = opts.onProgress ?? (() => {});
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 32) throw new Error(`--nodes must be a whole number from 1 to 32, got ${nodes}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be a whole number from 1 to 65535, got ${port}`);
  const settings = Object.fromEntries(Object.entries({ DEMO_USERS: String(opts.demoUsers ?? 1000), ...opts.nodeEnv }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const nodeEnv = (redisUrl: string, secrets: string) => ({ ...nodeEnvironment({ mode, redisUrl, demoUsers: opts.demoUsers ?? 1000 }), SESSION_SECRETS: secrets, ...opts.nodeEnv });
  // Checked as a node will check it, before anything is started or written (a generated secret is valid).
  validateNodeEnvironment(nodeEnv('redis://127.0.0.1:6379/0', process.env.SESSION_SECRETS || 'a-generated-secret-is-always-valid-0123456789'));

  const existing = readState(dir);
  if (existing && existing.parts.some(owns)) {
    throw new Error(`a cluster is already running from ${dir} (${existing.url}); run \`npm run cluster -- down\` first`);
  }
  // Fail before starting anything: the public port, and every binary this run needs.
  if (await isListening(port)) throw new Error(`nginx: port ${port} on 127.0.0.1 is already in use; choose another with --port`);
  const kinds: PartKind[] = ['nginx'];
  const store = opts.store ?? 'single';
  if (!STORES.includes(store)) throw new Error(`--store must be one of ${STORES.join(', ')}, got ${store}`);
  if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}, got ${mode}`);
  const storeKind = nodeStore(mode);
  const redisPersistence = opts.redisPersistence ?? 'aof';
  // Sentinel serves every mode whose store is Redis; a Redis Cluster only shared mode (its keys are laid out by hash slot).
  if (store === 'redis-cluster' && mode !== 'shared') throw new Error(`--store redis-cluster applies to shared mode only (${mode} mode)`);
  if (store === 'sentinel' && storeKind !== 'redis') throw new Error(`--store sentinel applies to the modes that use Redis, not ${mode} mode (PostgreSQL)`);
  if (storeKind === 'redis') kinds.push('redis', ...(store === 'sentinel' ? (['sentinel'] as const) : []));
  if (storeKind === 'postgres') kinds.push('postgres');
  if (monitoring) kinds.push('prometheus', 'nginx-exporter', ...(storeKind === 'redis' ? (['redis-exporter'] as const) : []));
  for (const k of kinds) resolveBinary(k);
  if (!fs.existsSync(APP_ENTRY)) throw new Error(`app: ${APP_ENTRY} is missing; run \`npm run build\` first`);

  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const state: ClusterState = {
    dir,
    mode,
    nodes,
    url: `http://127.0.0.1:${port}`,
    startedAt: new Date().toISOString(),
    settings,
    logMaxBytes: opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
    ...(storeKind === 'redis' && { redisPersistence, store }),
    parts: [],
  };
  const started = async (spec: PartSpec) => {
    opts.signal?.throwIfAborted();
    const part = await launchReporting(spec, logDir, say);
    state.parts.push(part);
    writeState(state);
    return part;
  };

  try {
    fs.mkdirSync(path.join(dir, 'redis'), { recursive: true });
    let redisUrl = 'redis://127.0.0.1:1/0';
    const storeEnv: Record<string, string> = {};
    if (storeKind === 'postgres') {
      const postgres = await started(postgresSpec({ port: await freePort(), dir: path.join(dir, 'postgres') }));
      storeEnv.DATABASE_URL = postgres.url;
    } else if (storeKind === 'redis' && store === 'single') {
      const redis = await started(redisSpec(await freePort(), path.join(dir, 'redis'), redisPersistence));
      redisUrl = `${redis.url}/0`;
    } else if (storeKind === 'redis' && store === 'redis-cluster') {
      // Six cluster-mode servers joined into 3 primaries + 3 replicas (redis-cluster.ts).
      const servers: PartState[] = [];
      for (let i = 1; i <= 6; i++) {
        const d = path.join(dir, `redis-${i}`);
        fs.mkdirSync(d, { recursive: true });
        servers.push(await started(redisSpec(await freePort(), d, redisPersistence, { name: `redis-${i}`, replicated: true, clusterNodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS })));
      }
      say('joining redis-1..6 into a Redis Cluster (3 primaries, 3 replicas)');
      await createCluster(servers.map((p) => p.port));
      redisUrl = `${servers[0]!.url}/0`; // unused by the nodes: the Cluster client finds every server from REDIS_CLUSTER_NODES
      storeEnv.REDIS_CLUSTER_NODES = servers.map((p) => `127.0.0.1:${p.port}`).join(',');
    } else if (storeKind === 'redis') {
      // A primary, two replicas following it, and three Sentinels watching it (parts.ts).
      const redisDir = (i: number) => {
        const d = path.join(dir, `redis-${i}`);
        fs.mkdirSync(d, { recursive: true });
        return d;
      };
      const primary = await started(redisSpec(await freePort(), redisDir(1), redisPersistence, { name: 'redis-1', replicated: true }));
      for (const i of [2, 3]) {
        const replica = await started(redisSpec(await freePort(), redisDir(i), redisPersistence, { name: `redis-${i}`, replicaOf: primary.port, replicated: true }));
        // Healthy means in sync: a replica still loading its first copy has nothing to fail over to.
        await waitFor(
          `${replica.name} to finish its first sync`,
          async () => /master_link_status:up/.test((await redisCommand(replica.port, ['INFO', 'replication'])) ?? ''),
          30_000,
          100,
        );
      }
      const sentinels: PartState[] = [];
      for (const i of [1, 2, 3]) sentinels.push(await started(sentinelSpec({ index: i, port: await freePort(), dir: path.join(dir, `sentinel-${i}`), primaryPort: primary.port })));
      redisUrl = `${primary.url}/0`; // the database; the host is whatever the Sentinels say
      storeEnv.REDIS_SENTINELS = sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
    }

    const env = { ...nodeEnv(redisUrl, sessionSecrets(dir)), ...storeEnv };
    const specs: PartSpec[] = [];
    for (let i = 1; i <= nodes; i++) specs.push(appSpec({ index: i, port: await freePort(), metricsPort: await freePort(), appEntry: APP_ENTRY, env }));
    say(`starting ${nodes} node(s) in ${mode} mode`);
    await Promise.all(specs.map(started));
    state.parts.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));

    const statusPort = await freePort();
    const confDir = path.join(dir, 'nginx');
    renderNginx({ confDir, mode, port, statusPort, servers: specs.map((s) => `${s.name}=127.0.0.1:${s.port}`) });
    await started(nginxSpec({ port, statusPort, confDir }));

    if (monitoring) {
      const exporters: PartSpec[] = [nginxExporterSpec({ port: await freePort(), statusPort })];
      const stores = state.parts.filter((p) => p.kind === 'redis' || p.kind === 'sentinel');
      if (stores.length) exporters.push(redisExporterSpec({ port: await freePort() }));
      await Promise.all(exporters.map(started));
      const promPort = await freePort();
      const hostOf = (s: { url: string }) => new URL(s.url).host;
      // One exporter, every Redis and Sentinel its own target (prometheus.yml: the `redis` and `sentinel` jobs).
      const viaExporter = (kind: PartKind) =>
        stores.filter((p) => p.kind === kind).map((p) => ({ target: `127.0.0.1:${p.port}`, labels: { redis: p.name, exporter: hostOf(exporters[1]!) } }));
      const configFile = prometheusConfig(dir, {
        app: specs.map((s) => `127.0.0.1:${s.ports!.metrics}`),
        nginx: [hostOf(exporters[0]!)],
        redis: viaExporter('redis'),
        sentinel: viaExporter('sentinel'),
        prometheus: [`127.0.0.1:${promPort}`],
      });
      await started(prometheusSpec({ port: promPort, configFile, dataDir: path.join(dir, 'prometheus', 'data') }));
    }
    opts.signal?.throwIfAborted();
    say(`cluster up: ${state.url}  (mode ${mode}, ${nodes} node(s))`);
    return state;
  } catch (err) {
    say(`start failed; stopping what was started`);
    await down(dir).catch(() => {});
    throw err;
  }
}

function requireState(dir: string): ClusterState {
  const state = readState(dir);
  if (!state) throw new Error(`no cluster state in ${dir}; start one with \`npm run cluster -- up\``);
  keepLogsBounded(state);
  return state;
}

/** A detached cluster has no runner following its logs: every verb rotates them (lib/logs.ts). */
export function keepLogsBounded(state: ClusterState): string[] {
  return rotateLogs(path.join(state.dir, 'logs'), state.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES);
}

function findPart(state: ClusterState, name: string): PartState {
  const part = state.parts.find((p) => p.name === name);
  if (!part) throw new Error(`no part named "${name}"; parts: ${state.parts.map((p) => p.name).join(', ')}`);
  return part;
}

/**
 * One command to a Redis server on 127.0.0.1:port over plain RESP; resolves with the raw reply
 * once `complete` says it is whole (default: after a short quiet), or undefined on error/timeout.
 */
function redisCommand(port: number, args: string[], timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    let settle: NodeJS.Timeout | undefined;
    const done = (value?: string) => {
      clearTimeout(settle);
      sock.destroy();
      resolve(value);
    };
    sock.setTimeout(timeoutMs, () => done(reply || undefined));
    sock.on('error', () => done());
    sock.on('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    sock.on('data', (d) => {
      reply += d.toString('latin1');
      clearTimeout(settle);
      settle = setTimeout(() => done(reply), 20);
    });
  });
}

/** What a Redis server (or Sentinel) on 127.0.0.1:port says it is (ROLE). */
export async function redisRole(port: number, timeoutMs = 1000): Promise<'primary' | 'replica' | 'sentinel' | undefined> {
  const m = /^\*\d+\r\n\$\d+\r\n(master|slave|sentinel)\r\n/.exec((await redisCommand(port, ['ROLE'], timeoutMs)) ?? '');
  return m ? (m[1] === 'master' ? 'primary' : m[1] === 'slave' ? 'replica' : 'sentinel') : undefined;
}

/** The Redis part that is primary right now (`kill redis-primary`). */
export async function primaryPart(state: ClusterState): Promise<PartState> {
  for (const p of state.parts.filter((x) => x.kind === 'redis' && owns(x))) if ((await redisRole(p.port)) === 'primary') return p;
  throw new Error('no running Redis reports itself primary');
}

/** True if `pid` is still the process we started for `part` (pids get reused). */
function owns(part: PartState): boolean {
  // A part started through `setpriv` (PostgreSQL as its own user, parts.ts) becomes the program it execs.
  const program = part.command === 'setpriv' ? part.args[part.args.indexOf('--') + 1]! : part.command;
  return isAlive(part.pid) && cmdline(part.pid).includes(path.basename(program));
}

export async function ps(
  dir = DEFAULT_DIR,
): Promise<{ url: string; mode: Mode; redisPersistence?: RedisPersistence; store?: Store; settings: Record<string, string>; parts: PartStatus[] }> {
  const state = requireState(dir);
  const parts = await Promise.all(
    state.parts.map(async (p) => {
      const alive = owns(p);
      const role = alive && (p.kind === 'redis' || p.kind === 'sentinel') ? await redisRole(p.port) : undefined;
      return {
        name: p.name,
        kind: p.kind,
        pid: alive ? p.pid : null,
        port: p.port,
        url: p.url,
        alive,
        healthy: alive && (await healthy(p)),
        mode: state.mode,
        log: p.log,
        ...(p.ports && { ports: p.ports }),
        ...(role && { role }),
      };
    }),
  );
  return {
    url: state.url,
    mode: state.mode,
    ...(state.redisPersistence && { redisPersistence: state.redisPersistence }),
    ...(state.store && { store: state.store }),
    settings: state.settings ?? {},
    parts,
  };
}

/** Sends a signal to one part (default SIGKILL: a crash). Returns once it is gone (or after 15 s for TERM). */
export async function kill(name: string, opts: { dir?: string; signal?: 'KILL' | 'TERM' } = {}): Promise<void> {
  const state = requireState(opts.dir ?? DEFAULT_DIR);
  const part = name === 'redis-primary' ? await primaryPart(state) : findPart(state, name);
  if (!owns(part)) throw new Error(`${name} is not running`);
  signal(part.pid, `SIG${opts.signal ?? 'KILL'}`);
  if (!(await waitGone(part.pid, opts.signal === 'TERM' ? 15_000 : 5_000))) throw new Error(`${name} (pid ${part.pid}) did not exit`);
}

/**
 * Starts one stopped part again, with the same ports and environment. A node started with
 * SESSION_SECRETS in the environment of `start` takes those secrets instead (and keeps them):
 * the secret-rotation runbook rolls nodes one at a time this way (README).
 */
export async function start(name: string, opts: { dir?: string; onProgress?: (line: string) => void; secrets?: string } = {}): Promise<PartState> {
  const dir = opts.dir ?? DEFAULT_DIR;
  const state = requireState(dir);
  const part = findPart(state, name);
  if (owns(part)) throw new Error(`${name} is already running (pid ${part.pid})`);
  const { pid: _pid, log: _log, ...spec } = part;
  const secrets = opts.secrets ?? process.env.SESSION_SECRETS;
  if (part.kind === 'app' && secrets) {
    validateNodeEnvironment({ ...spec.env, SESSION_SECRETS: secrets });
    spec.env = { ...spec.env, SESSION_SECRETS: secrets };
  }
  // A Redis Cluster server needs nothing of this: its nodes.conf (in its own dir) makes it rejoin as
  // itself, and a former primary whose slots moved to its replica comes back as that one's replica.
  if (part.kind === 'redis' && state.store === 'sentinel') {
    // A Redis that comes back joins as a replica of whichever server is primary now; started as it
    // was first (perhaps the primary), it would claim to be primary until the Sentinels demote it.
    const primary = await primaryPart(state).catch(() => null);
    const args = [...spec.args];
    const at = args.indexOf('--replicaof');
    if (at >= 0) args.splice(at, 3);
    if (primary) args.push('--replicaof', '127.0.0.1', String(primary.port));
    spec.args = args;
  }
  const fresh = await launchReporting(spec, path.join(dir, 'logs'), opts.onProgress);
  state.parts = state.parts.map((p) => (p.name === name ? fresh : p));
  writeState(state);
  return fresh;
}

/** Stops every part this cluster started (and nothing else), last started first. */
/**
 * Deletes a run folder that is down, and what it links to outside itself (PostgreSQL's data, when
 * it had to live under the system temp directory: parts.ts). For throw-away runs (tests, the
 * experiment, the benchmark); a kept run folder keeps its data for the next `up`.
 */
export function removeRun(dir: string): void {
  const link = path.join(dir, 'postgres', 'data');
  try {
    if (fs.lstatSync(link).isSymbolicLink()) fs.rmSync(fs.realpathSync(link), { recursive: true, force: true });
  } catch {
    /* no PostgreSQL in this run */
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

export async function down(dir = DEFAULT_DIR, onProgress: (line: string) => void = () => {}): Promise<void> {
  const state = readState(dir);
  if (!state) return;
  keepLogsBounded(state);
  // In waves, front to back: monitoring, the load balancer, the nodes (together: each drains), the store.
  // Sentinels before the servers they watch, so stopping the primary starts no failover.
  const waves: PartKind[][] = [['prometheus', 'nginx-exporter', 'redis-exporter'], ['nginx'], ['app'], ['sentinel'], ['redis', 'postgres']];
  for (const wave of waves) {
    await Promise.all(
      state.parts
        .filter((p) => wave.includes(p.kind) && owns(p))
        .map(async (part) => {
          await terminate(part.pid);
          onProgress(`${part.name.padEnd(15)} stopped`);
        }),
    );
  }
  fs.rmSync(stateFile(dir), { force: true });
}
