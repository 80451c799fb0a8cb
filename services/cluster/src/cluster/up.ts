import fs from 'node:fs';
import path from 'node:path';
import { nodeStore } from '@session-cluster/app/modes';
import { DEFAULT_LOG_MAX_BYTES } from '../lib/logs.js';
import { validateNodeEnvironment } from '../lib/node-settings.js';
import { freePort, isListening } from '../lib/ports.js';
import {
  appSpec,
  nginxExporterSpec,
  nginxSpec,
  prometheusSpec,
  redisExporterSpec,
  resolveBinary,
  type PartKind,
  type PartSpec,
  type PartState,
  type RedisPersistence,
} from '../parts.js';
import { nodeEnvironment } from '../topology.js';
import { clusterHandle, type ClusterHandle } from './handle.js';
import { launchReporting } from './launch.js';
import { renderNginx } from './nginx.js';
import { prepareRotationDir, rotationDirOf } from './rotation.js';
import { writePrometheusConfig } from './prometheus.js';
import { sessionSecrets } from './secrets.js';
import { APP_ENTRY, DEFAULT_DIR, logDirOf, MODES, owns, readState, STORES, writeState, type ClusterState, type Mode, type Store } from './state.js';
import { startStore, type StoreAddress } from './stores.js';

/**
 * The local cluster: the same topology as docker-compose.yml, as local processes. `up` starts
 * it part by part (the store, the nodes, nginx, monitoring), recording each in state.json as it
 * comes up, and returns a handle on it (handle.ts).
 */
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

/** The options with their defaults, checked. */
interface Plan {
  dir: string;
  mode: Mode;
  nodes: number;
  port: number;
  monitoring: boolean;
  store: Store;
  storeKind: 'redis' | 'postgres';
  redisPersistence: RedisPersistence;
  settings: Record<string, string>;
  /** Every node's environment but the store's address. */
  nodeEnv: (redisUrl: string, secrets: string) => Record<string, string>;
  say: (line: string) => void;
  signal: AbortSignal | undefined;
}

/** A part started and recorded (state.json), unless the start-up was aborted first. */
type Starter = (spec: PartSpec) => Promise<PartState>;

export async function up(opts: UpOptions = {}): Promise<ClusterHandle> {
  const plan = planOf(opts);
  await refuseToStart(plan);
  const state = initialState(plan, opts);
  const started = starter(state, plan);
  try {
    const store = await startStore(plan.storeKind, plan.store, { dir: plan.dir, persistence: plan.redisPersistence, started, say: plan.say });
    const nodes = await startNodes(plan, store, state, started);
    const statusPort = await startNginx(plan, nodes, started);
    if (plan.monitoring) await startMonitoring(plan, state, nodes, statusPort, started);
    plan.signal?.throwIfAborted();
    plan.say(`cluster up: ${state.url}  (mode ${plan.mode}, ${plan.nodes} node(s))`);
    return clusterHandle(state);
  } catch (err) {
    plan.say(`start failed; stopping what was started`);
    await clusterHandle(state)
      .down()
      .catch(() => {});
    throw err;
  }
}

function planOf(opts: UpOptions): Plan {
  const mode = opts.mode ?? 'shared';
  const nodes = opts.nodes ?? 3;
  const port = opts.port ?? 8080;
  const store = opts.store ?? 'single';
  const demoUsers = opts.demoUsers ?? 1000;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 32) throw new Error(`--nodes must be a whole number from 1 to 32, got ${nodes}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be a whole number from 1 to 65535, got ${port}`);
  const settings = Object.fromEntries(Object.entries({ DEMO_USERS: String(demoUsers), ...opts.nodeEnv }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const nodeEnv = (redisUrl: string, secrets: string) => ({ ...nodeEnvironment({ mode, redisUrl, demoUsers }), SESSION_SECRETS: secrets, ...opts.nodeEnv });
  // Checked as a node will check it, before anything is started or written (a generated secret is valid).
  validateNodeEnvironment(nodeEnv('redis://127.0.0.1:6379/0', process.env.SESSION_SECRETS || 'a-generated-secret-is-always-valid-0123456789'));
  return {
    dir: path.resolve(opts.dir ?? DEFAULT_DIR),
    mode,
    nodes,
    port,
    monitoring: opts.monitoring ?? true,
    store,
    storeKind: nodeStore(mode),
    redisPersistence: opts.redisPersistence ?? 'aof',
    settings,
    nodeEnv,
    say: opts.onProgress ?? (() => {}),
    signal: opts.signal,
  };
}

/** Fails before starting anything: a cluster already running from the folder, the public port, the options, every binary this run needs. */
async function refuseToStart(plan: Plan): Promise<void> {
  const { dir, mode, port, store, storeKind } = plan;
  const existing = readState(dir);
  if (existing && existing.parts.some(owns)) throw new Error(`a cluster is already running from ${dir} (${existing.url}); run \`npm run cluster -- down\` first`);
  if (await isListening(port)) throw new Error(`nginx: port ${port} on 127.0.0.1 is already in use; choose another with --port`);
  if (!STORES.includes(store)) throw new Error(`--store must be one of ${STORES.join(', ')}, got ${store}`);
  if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}, got ${mode}`);
  // Sentinel serves every mode whose store is Redis; a Redis Cluster only shared mode (its keys are laid out by hash slot).
  if (store === 'redis-cluster' && mode !== 'shared') throw new Error(`--store redis-cluster applies to shared mode only (${mode} mode)`);
  if (store === 'sentinel' && storeKind !== 'redis') throw new Error(`--store sentinel applies to the modes that use Redis, not ${mode} mode (PostgreSQL)`);
  for (const kind of partKindsOf(plan)) resolveBinary(kind);
  if (!fs.existsSync(APP_ENTRY)) throw new Error(`app: ${APP_ENTRY} is missing; run \`npm run build\` first`);
}

function partKindsOf({ storeKind, store, monitoring }: Plan): PartKind[] {
  const kinds: PartKind[] = ['nginx'];
  if (storeKind === 'redis') kinds.push('redis', ...(store === 'sentinel' ? (['sentinel'] as const) : []));
  if (storeKind === 'postgres') kinds.push('postgres');
  if (monitoring) kinds.push('prometheus', 'nginx-exporter', ...(storeKind === 'redis' ? (['redis-exporter'] as const) : []));
  return kinds;
}

function initialState(plan: Plan, opts: UpOptions): ClusterState {
  fs.mkdirSync(logDirOf(plan), { recursive: true });
  return {
    dir: plan.dir,
    mode: plan.mode,
    nodes: plan.nodes,
    url: `http://127.0.0.1:${plan.port}`,
    startedAt: new Date().toISOString(),
    settings: plan.settings,
    logMaxBytes: opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
    ...(plan.storeKind === 'redis' && { redisPersistence: plan.redisPersistence, store: plan.store }),
    parts: [],
  };
}

function starter(state: ClusterState, plan: Plan): Starter {
  return async (spec) => {
    plan.signal?.throwIfAborted();
    const part = await launchReporting(spec, logDirOf(state), plan.say);
    state.parts.push(part);
    writeState(state);
    return part;
  };
}

async function startNodes(plan: Plan, store: StoreAddress, state: ClusterState, started: Starter): Promise<PartSpec[]> {
  const env = { ...plan.nodeEnv(store.redisUrl, sessionSecrets(plan.dir)), ...store.env };
  const specs: PartSpec[] = [];
  for (let i = 1; i <= plan.nodes; i++) specs.push(appSpec({ index: i, port: await freePort(), metricsPort: await freePort(), appEntry: APP_ENTRY, env }));
  plan.say(`starting ${plan.nodes} node(s) in ${plan.mode} mode`);
  await Promise.all(specs.map(started));
  state.parts.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  return specs;
}

/** nginx in front of the nodes; returns its status port (for the exporter). */
async function startNginx(plan: Plan, nodes: PartSpec[], started: Starter): Promise<number> {
  const statusPort = await freePort();
  const confDir = path.join(plan.dir, 'nginx');
  // A drain takes a node out of rotation by a file in rotationDir (rotation.ts); none is there yet.
  const closed = prepareRotationDir(plan.dir);
  if (closed.length) plan.say(`warning: nginx's workers cannot search ${closed.join(', ')}: a drain (kill --signal TERM) cannot take a node out of rotation first`);
  renderNginx({ confDir, mode: plan.mode, port: plan.port, statusPort, servers: nodes.map((s) => `${s.name}=127.0.0.1:${s.port}`), rotationDir: rotationDirOf(plan) });
  await started(nginxSpec({ port: plan.port, statusPort, confDir }));
  return statusPort;
}

/** The exporters, then Prometheus scraping the nodes, the exporters and itself. */
async function startMonitoring(plan: Plan, state: ClusterState, nodes: PartSpec[], statusPort: number, started: Starter): Promise<void> {
  const exporters: PartSpec[] = [nginxExporterSpec({ port: await freePort(), statusPort })];
  const stores = state.parts.filter((p) => p.kind === 'redis' || p.kind === 'sentinel');
  if (stores.length) exporters.push(redisExporterSpec({ port: await freePort() }));
  await Promise.all(exporters.map(started));
  const promPort = await freePort();
  const hostOf = (s: { url: string }) => new URL(s.url).host;
  // One exporter, every Redis and Sentinel its own target (prometheus.yml: the `redis` and `sentinel` jobs).
  const viaExporter = (kind: PartKind) =>
    stores.filter((p) => p.kind === kind).map((p) => ({ target: `127.0.0.1:${p.port}`, labels: { redis: p.name, exporter: hostOf(exporters[1]!) } }));
  const configFile = writePrometheusConfig(plan.dir, {
    app: nodes.map((s) => `127.0.0.1:${s.ports!.metrics}`),
    nginx: [hostOf(exporters[0]!)],
    redis: viaExporter('redis'),
    sentinel: viaExporter('sentinel'),
    prometheus: [`127.0.0.1:${promPort}`],
  });
  await started(prometheusSpec({ port: promPort, configFile, dataDir: path.join(plan.dir, 'prometheus', 'data') }));
}
