import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { isListening, waitFor } from './lib/ports.js';
import { startProcess, tail, which } from './lib/process.js';

/**
 * A part of the cluster: how to start it, and how to tell it is healthy. Parts are started
 * detached (their own process group) with output to `<dir>/logs/<name>.log`, so they outlive
 * the `cluster up --detach` that started them and are found again through state.json.
 */
export type PartKind = 'redis' | 'sentinel' | 'postgres' | 'app' | 'nginx' | 'prometheus' | 'nginx-exporter' | 'redis-exporter';

export interface PartSpec {
  name: string;
  kind: PartKind;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** The port that proves health, and the URL a person would open. */
  port: number;
  url: string;
  /** Extra ports (a node's metrics port, nginx's status port). */
  ports?: Record<string, number>;
  /** How health is proved; an HTTP probe goes to `port` unless the probe names its own (a node's internal port). */
  health: { type: 'tcp' } | { type: 'http'; path: string; port?: number };
}

export interface PartState extends PartSpec {
  pid: number;
  log: string;
}

/**
 * Each part's binary, and the Debian package that provides it (for error messages). An exporter is
 * found under its upstream name first (the release docker-compose.yml pins, which the test setup
 * builds into .run/bin), then under Debian's.
 */
export const PACKAGES: Record<PartKind, { bin: string; pkg: string; upstream?: string }> = {
  redis: { bin: 'redis-server', pkg: 'redis-server' },
  // Sentinel is redis-server in sentinel mode (what Debian's redis-sentinel package runs).
  sentinel: { bin: 'redis-server', pkg: 'redis-server' },
  postgres: { bin: 'postgres', pkg: 'postgresql' },
  app: { bin: 'node', pkg: 'nodejs' },
  nginx: { bin: 'nginx', pkg: 'nginx-light' },
  prometheus: { bin: 'prometheus', pkg: 'prometheus' },
  'nginx-exporter': { bin: 'prometheus-nginx-exporter', pkg: 'prometheus-nginx-exporter', upstream: 'nginx-prometheus-exporter' },
  'redis-exporter': { bin: 'prometheus-redis-exporter', pkg: 'prometheus-redis-exporter', upstream: 'redis_exporter' },
};

export function resolveBinary(kind: PartKind): string {
  if (kind === 'app') return process.execPath;
  if (kind === 'postgres') return postgresBin('postgres');
  const { bin, pkg, upstream } = PACKAGES[kind];
  const found = (upstream && which(upstream)) || which(bin);
  if (!found) throw new Error(`${kind}: ${bin} is not installed (Debian package ${pkg}; scripts/setup.sh installs it as root)`);
  return found;
}

/**
 * Redis persistence for the session store:
 * - `aof` (the cluster's default): every write is appended to a log that Redis fsyncs once a
 *   second (`appendfsync everysec`). A restart (SIGTERM or SIGKILL) replays it: a process kill
 *   usually loses nothing (Redis hands the log to the OS before it replies, unless a slow fsync
 *   made it postpone that write), a machine crash up to the last second of acknowledged writes (a
 *   logout's DEL among them). No RDB snapshots (`save ""`): they would only add a second, coarser copy.
 * - `aof-always`: the same log, fsynced before every reply (`appendfsync always`): no loss window,
 *   at a cost per write measured by `npm run bench -- --durability` (docs/durability.md).
 * - `off`: a cache of sessions; a restart logs everyone out.
 */
export const REDIS_PERSISTENCE = ['aof', 'aof-always', 'off'] as const;
export type RedisPersistence = (typeof REDIS_PERSISTENCE)[number];

export function redisSpec(
  port: number,
  dir: string,
  persistence: RedisPersistence = 'off',
  opts: { name?: string; replicaOf?: number; replicated?: boolean; cluster?: { nodeTimeoutMs: number; busPort: number } } = {},
): PartSpec {
  const durability = persistence === 'off' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', persistence === 'aof-always' ? 'always' : 'everysec'];
  // A replica follows the primary; every server of a replicated store syncs without waiting to batch
  // replicas (diskless sync's 5 s default delay would leave a new replica empty that long).
  const replica = opts.replicaOf ? ['--replicaof', '127.0.0.1', String(opts.replicaOf)] : [];
  if (opts.replicated) replica.push('--repl-diskless-sync-delay', '0');
  // A Redis Cluster node (redis-cluster.ts): its cluster state in <dir>/nodes.conf, so a restarted node
  // rejoins as itself. Full coverage off: with Redis's default, every primary refuses every command
  // from the moment one primary is marked failed until its replica is promoted (measured: writes to
  // all slots failed for ~0.4 s); a session store wants the other slots to keep serving. The bus
  // port is a free port of its own: Redis's default, port + 10000, can land in the kernel's
  // ephemeral range, where an outgoing connection may hold it (seen: "Failed listening on port 39608
  // (cluster), aborting" in a test run).
  if (opts.cluster) {
    replica.push(
      '--cluster-enabled',
      'yes',
      '--cluster-port',
      String(opts.cluster.busPort),
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      String(opts.cluster.nodeTimeoutMs),
      '--cluster-require-full-coverage',
      'no',
    );
  }
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...durability, ...replica, '--dir', dir, '--protected-mode', 'yes'];
  return { name: opts.name ?? 'redis', kind: 'redis', command: resolveBinary('redis'), args, env: {}, port, url: `redis://127.0.0.1:${port}`, health: { type: 'tcp' } };
}

/**
 * How long a Sentinel waits for an answer before it calls a server down (Sentinel's default is
 * 30 s: half a minute of failed writes). Not 1 s, which is Sentinel's ping period: when a Sentinel
 * switches to the new primary it keeps its old link's reconnect timer, so it may reach the new
 * primary only up to 1 s later, and with a 1 s limit it can call that live primary down at once and
 * start a second failover. Seen: 1 run in 22 promoted the other replica 1.3 s after the first
 * promotion, and the writes acknowledged by the first new primary in between were lost when it
 * resynced. 2 s is past that reconnect window (redis/redis#8607: the same with 500 ms).
 */
export const SENTINEL_DOWN_AFTER_MS = 2000;

/**
 * One Redis Sentinel watching the sessions' primary, tuned for a session store: the primary is
 * declared down after SENTINEL_DOWN_AFTER_MS without an answer and a failover may take 5 s
 * (default 3 min). Two of the three must agree (quorum 2).
 * Sentinel rewrites its configuration file as it learns the topology, so each has its own.
 */
export function sentinelSpec(opts: { index: number; port: number; dir: string; primaryPort: number; name?: string }): PartSpec {
  const name = opts.name ?? 'sessions';
  fs.mkdirSync(opts.dir, { recursive: true });
  const conf = path.join(opts.dir, 'sentinel.conf');
  fs.writeFileSync(
    conf,
    [
      `port ${opts.port}`,
      'bind 127.0.0.1',
      `dir ${opts.dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${opts.primaryPort} 2`,
      `sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 2`,
      '',
    ].join('\n'),
  );
  return {
    name: `sentinel-${opts.index}`,
    kind: 'sentinel',
    command: resolveBinary('sentinel'),
    args: [conf, '--sentinel'],
    env: {},
    port: opts.port,
    url: `redis://127.0.0.1:${opts.port}`,
    health: { type: 'tcp' },
  };
}

/**
 * Debian's PostgreSQL server binaries are not on PATH (/usr/lib/postgresql/<version>/bin): the
 * newest installed version's.
 */
export function postgresBin(name: 'postgres' | 'initdb'): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', name))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`postgres: ${name} not found under ${root}; install it with: apt-get install postgresql (scripts/setup.sh does this as root)`);
  return path.join(root, newest, 'bin', name);
}

/** PostgreSQL refuses to run as root: as root, its processes run as the `postgres` user (Debian's package creates it). */
function asPostgresUser(command: string, args: string[]): { command: string; args: string[] } {
  if (process.getuid?.() !== 0) return { command, args };
  return { command: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args] };
}

/** Deletes PostgreSQL's data folder that `postgresSpec` made under the system temp directory for the run folder `dir` (nothing if it made none). */
export function removePostgresData(dir: string): void {
  const link = path.join(dir, 'data');
  try {
    if (fs.lstatSync(link).isSymbolicLink()) fs.rmSync(fs.realpathSync(link), { recursive: true, force: true });
  } catch {
    /* no data folder of its own */
  }
}

/**
 * database mode's PostgreSQL: its own cluster (initdb) in `dir`, on a loopback port, trust
 * authentication on loopback only (no password in the demo; the URL names the user). `fast`
 * (tests only) turns fsync off: a test needs no durability across a machine crash, only across a
 * killed process (commits still reach the kernel before they are acknowledged).
 */
export function postgresSpec(opts: { port: number; dir: string; fast?: boolean }): PartSpec {
  // As root the server runs as `postgres`, which must be able to reach its data directory: a run
  // folder may sit under a private directory (a 0700 temp folder, /root), so the data then lives
  // in a folder of its own under the system temp directory, linked from the run folder as `data`.
  const link = path.join(opts.dir, 'data');
  fs.mkdirSync(opts.dir, { recursive: true });
  if (!fs.existsSync(link)) {
    if (process.getuid?.() === 0) {
      const own = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-postgres-data-'));
      execFileSync('chown', ['postgres:postgres', own]);
      fs.symlinkSync(own, link);
    } else fs.mkdirSync(link, { mode: 0o700 });
  }
  const data = fs.realpathSync(link);
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    const initdb = asPostgresUser(postgresBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    execFileSync(initdb.command, initdb.args, { stdio: 'pipe' });
  }
  const settings = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${data}`, '-c', 'max_connections=200', ...(opts.fast ? ['-c', 'fsync=off'] : [])];
  const run = asPostgresUser(postgresBin('postgres'), ['-D', data, '-p', String(opts.port), ...settings]);
  return {
    name: 'postgres',
    kind: 'postgres',
    command: run.command,
    args: run.args,
    env: {},
    port: opts.port,
    url: `postgres://postgres@127.0.0.1:${opts.port}/postgres`,
    health: { type: 'tcp' },
  };
}

/** A part that answers HTTP on 127.0.0.1:port; `healthPath` proves it is up. */
function httpPart(kind: Exclude<PartKind, 'redis' | 'sentinel' | 'postgres'>, port: number, args: string[], healthPath: string, extra: Partial<PartSpec> = {}): PartSpec {
  return { name: kind, kind, command: resolveBinary(kind), args, env: {}, port, url: `http://127.0.0.1:${port}`, health: { type: 'http', path: healthPath }, ...extra };
}

export function appSpec(opts: { index: number; port: number; metricsPort: number; appEntry: string; env: Record<string, string> }): PartSpec {
  const name = `app-${opts.index}`;
  // Readiness lives on the node's internal port (beside /metrics), never on the public one.
  return httpPart('app', opts.port, [opts.appEntry], '/readyz', {
    name,
    health: { type: 'http', path: '/readyz', port: opts.metricsPort },
    env: { ...opts.env, NODE_ID: name, PORT: String(opts.port), METRICS_PORT: String(opts.metricsPort), HOST: '127.0.0.1' },
    ports: { metrics: opts.metricsPort },
  });
}

export function nginxSpec(opts: { port: number; statusPort: number; confDir: string }): PartSpec {
  const args = ['-p', opts.confDir + '/', '-c', path.join(opts.confDir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'];
  return httpPart('nginx', opts.port, args, '/lb/healthz', { ports: { status: opts.statusPort } });
}

export function prometheusSpec(opts: { port: number; configFile: string; dataDir: string }): PartSpec {
  const args = [
    `--config.file=${opts.configFile}`,
    `--storage.tsdb.path=${opts.dataDir}`,
    `--web.listen-address=127.0.0.1:${opts.port}`,
    '--web.enable-remote-write-receiver',
    '--storage.tsdb.retention.time=1d',
  ];
  return httpPart('prometheus', opts.port, args, '/-/ready');
}

export function nginxExporterSpec(opts: { port: number; statusPort: number }): PartSpec {
  // Two dashes: the 1.x releases parse flags with kingpin, Debian's 0.11 with Go's flag (which takes both).
  const args = [`--nginx.scrape-uri=http://127.0.0.1:${opts.statusPort}/stub_status`, `--web.listen-address=127.0.0.1:${opts.port}`];
  return httpPart('nginx-exporter', opts.port, args, '/metrics', { url: `http://127.0.0.1:${opts.port}/metrics` });
}

/**
 * prometheus-redis-exporter in multi-target mode: it scrapes no Redis of its own (no -redis.addr);
 * Prometheus asks it for each Redis and Sentinel in turn (/scrape?target=redis://host:port), as the
 * `redis` and `sentinel` jobs of infra/prometheus/prometheus.yml say.
 */
export function redisExporterSpec(opts: { port: number }): PartSpec {
  const args = ['-redis.addr=', `-web.listen-address=127.0.0.1:${opts.port}`];
  return httpPart('redis-exporter', opts.port, args, '/health', { url: `http://127.0.0.1:${opts.port}/scrape` });
}

/**
 * One probe, on a connection of its own that is closed right after (no keep-alive: a pooled
 * idle connection from the runner would hold a draining node open until its deadline).
 */
export async function healthy(spec: PartSpec): Promise<boolean> {
  if (spec.health.type === 'tcp') return isListening(spec.port);
  const { path: probePath, port = spec.port } = spec.health;
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: probePath, agent: false, headers: { connection: 'close' }, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Starts a part detached and waits until it is healthy; on failure, kills it and explains. */
export async function launch(spec: PartSpec, logDir: string, timeoutMs = 30_000): Promise<PartState> {
  if (await isListening(spec.port)) throw new Error(`${spec.name}: port ${spec.port} on 127.0.0.1 is already in use`);
  const log = path.join(logDir, `${spec.name}.log`);
  fs.appendFileSync(log, `--- ${new Date().toISOString()} starting ${spec.name}\n`);
  const proc = startProcess({ name: spec.name, command: spec.command, args: spec.args, logFile: log, env: { PATH: process.env.PATH ?? '', ...spec.env }, detached: true });
  try {
    await waitFor(
      `${spec.name} to become healthy`,
      () => healthy(spec),
      timeoutMs,
      100,
      () => (proc.alive() ? null : 'it exited'),
    );
  } catch (err) {
    await proc.stop('SIGKILL', 2000);
    throw new Error(`${(err as Error).message}\n--- last lines of ${log}:\n${tail(log)}`, { cause: err });
  }
  return { ...spec, pid: proc.pid, log };
}
