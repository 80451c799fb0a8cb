import { terminate, signal, waitGone } from '../lib/pids.js';
import { validateNodeEnvironment } from '../lib/node-settings.js';
import { healthy, type PartKind, type PartState, type RedisPersistence } from '../parts.js';
import { launchReporting } from './launch.js';
import { primaryPart, redisRole } from './redis-admin.js';
import { putBackIntoRotation, takeOutOfRotation } from './rotation.js';
import { DEFAULT_DIR, findPart, forgetState, keepLogsBounded, logDirOf, owns, readState, requireState, writeState, type ClusterState, type Mode, type Store } from './state.js';

/**
 * A running cluster, as the process that started it holds it (`up()` returns one) or as another
 * process finds it again from state.json (`attach`, the CLI verbs). Either way the verbs work on
 * the state in hand, and every change is written back to state.json for the other processes.
 * A held handle does not see what verbs run elsewhere do (a `start` from the CLI gives a part a
 * new pid in state.json only): whoever mixes the two, as `npm start` and the tests do, stops the
 * cluster with `down(dir)`, which reads state.json.
 */
export interface ClusterHandle {
  /** The live state: `start` replaces the part's entry (its new pid). */
  readonly state: ClusterState;
  readonly dir: string;
  readonly url: string;
  /**
   * Sends a signal to one part (default SIGKILL: a crash); `redis-primary` is whichever Redis is primary now. Resolves once it is gone.
   * SIGTERM on a node is a drain: the node is taken out of nginx's rotation first (rotation.ts).
   */
  kill(name: string, signal?: 'KILL' | 'TERM'): Promise<void>;
  /** Starts one stopped part again, with the same ports and environment (see startPart); a drained node goes back into rotation. */
  start(name: string, opts?: StartOptions): Promise<PartState>;
  /** The Redis part that is primary right now. */
  primary(): Promise<PartState>;
  ps(): Promise<ClusterStatus>;
  /** Stops every part this cluster started (and nothing else), last started first. */
  down(onProgress?: (line: string) => void): Promise<void>;
}

export interface StartOptions {
  onProgress?: (line: string) => void;
  /** A node's SESSION_SECRETS from now on (default: SESSION_SECRETS of this process's environment, if set). */
  secrets?: string;
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

export interface ClusterStatus {
  url: string;
  mode: Mode;
  redisPersistence?: RedisPersistence;
  store?: Store;
  settings: Record<string, string>;
  parts: PartStatus[];
}

export function clusterHandle(state: ClusterState): ClusterHandle {
  // A runner that holds a cluster for long (the experiment) is not following its logs either.
  const bounded = () => (keepLogsBounded(state), state);
  return {
    state,
    dir: state.dir,
    url: state.url,
    kill: (name, sig) => killPart(bounded(), name, sig),
    start: (name, opts) => startPart(bounded(), name, opts),
    primary: () => primaryPart(state),
    ps: () => statusOf(bounded()),
    down: (onProgress) => stopCluster(bounded(), onProgress),
  };
}

/** The cluster in `dir`, as state.json describes it (for a verb run from another process). */
export const attach = (dir = DEFAULT_DIR): ClusterHandle => clusterHandle(requireState(dir));

// The verbs by run folder, for the CLI and for tests that act on a cluster as a user would.
export const ps = (dir = DEFAULT_DIR) => attach(dir).ps();
export const kill = (name: string, opts: { dir?: string; signal?: 'KILL' | 'TERM' } = {}) => attach(opts.dir).kill(name, opts.signal);
export const start = (name: string, opts: StartOptions & { dir?: string } = {}) => attach(opts.dir).start(name, opts);

/** Stops the cluster in `dir`, if there is one. */
export async function down(dir = DEFAULT_DIR, onProgress: (line: string) => void = () => {}): Promise<void> {
  const state = readState(dir);
  if (!state) return;
  keepLogsBounded(state);
  await stopCluster(state, onProgress);
}

async function killPart(state: ClusterState, name: string, sig: 'KILL' | 'TERM' = 'KILL'): Promise<void> {
  const part = name === 'redis-primary' ? await primaryPart(state) : findPart(state, name);
  if (!owns(part)) throw new Error(`${name} is not running`);
  // A drain: nginx stops sending the node connections before it stops accepting them. A KILL is a
  // crash, which nginx finds out about by itself (passive health checks).
  if (part.kind === 'app' && sig === 'TERM') await takeOutOfRotation(state, name);
  signal(part.pid, `SIG${sig}`);
  if (!(await waitGone(part.pid, sig === 'TERM' ? 15_000 : 5_000))) throw new Error(`${name} (pid ${part.pid}) did not exit`);
}

/**
 * Starts one stopped part again, with the same ports and environment. A node started with
 * SESSION_SECRETS in the environment of `start` takes those secrets instead (and keeps them):
 * the secret-rotation runbook rolls nodes one at a time this way (README).
 */
async function startPart(state: ClusterState, name: string, opts: StartOptions = {}): Promise<PartState> {
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
  if (part.kind === 'redis' && state.store === 'sentinel') spec.args = await asReplicaOfCurrentPrimary(state, spec.args);
  const fresh = await launchReporting(spec, logDirOf(state), opts.onProgress);
  const at = state.parts.findIndex((p) => p.name === name);
  state.parts[at] = fresh;
  writeState(state);
  if (part.kind === 'app') putBackIntoRotation(state, name);
  return fresh;
}

/**
 * A Redis that comes back joins as a replica of whichever server is primary now; started as it
 * was first (perhaps the primary), it would claim to be primary until the Sentinels demote it.
 */
async function asReplicaOfCurrentPrimary(state: ClusterState, args: string[]): Promise<string[]> {
  const primary = await primaryPart(state).catch(() => null);
  const out = [...args];
  const at = out.indexOf('--replicaof');
  if (at >= 0) out.splice(at, 3);
  if (primary) out.push('--replicaof', '127.0.0.1', String(primary.port));
  return out;
}

async function statusOf(state: ClusterState): Promise<ClusterStatus> {
  const parts = await Promise.all(
    state.parts.map(async (p): Promise<PartStatus> => {
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

/**
 * In waves, front to back: monitoring, the load balancer, the nodes (together: each drains), the
 * store. Sentinels before the servers they watch, so stopping the primary starts no failover.
 */
const SHUTDOWN_WAVES: PartKind[][] = [['prometheus', 'nginx-exporter', 'redis-exporter'], ['nginx'], ['app'], ['sentinel'], ['redis', 'postgres']];

async function stopCluster(state: ClusterState, onProgress: (line: string) => void = () => {}): Promise<void> {
  for (const wave of SHUTDOWN_WAVES) {
    await Promise.all(
      state.parts
        .filter((p) => wave.includes(p.kind) && owns(p))
        .map(async (part) => {
          await terminate(part.pid);
          onProgress(`${part.name.padEnd(15)} stopped`);
        }),
    );
  }
  forgetState(state.dir);
}
