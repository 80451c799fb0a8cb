import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

/**
 * The swarm stack, made from docker-compose.yml and docker-compose.sentinel.yml: the images,
 * commands, environment, healthchecks and grace periods are theirs, read at every deploy, so the
 * two paths cannot drift apart. Only what a swarm needs differently is written here:
 *
 * - `deploy:` sections: the app replicated and spread over the hosts, rolling updates one task at a
 *   time, start-first; nginx and the Sentinels on every host (global); the Redis primary and each
 *   replica pinned to a host of their own (a host's data stays on its host, as with local disks).
 * - `endpoint_mode: dnsrr` everywhere: this kernel has no IPVS, so no virtual IPs and no routing
 *   mesh. nginx resolves the names itself (`resolve`), and publishes 8080 on each host (`mode: host`).
 * - Each app task is named after its slot (`app-1`...): its hostname, which the swarm's DNS answers,
 *   and its NODE_ID. Sticky nginx's per-replica `server app-<i>` lines and the route cookie use it,
 *   as they use the container names on compose.
 * - Healthchecks say "alive", not "ready": a swarm replaces a task whose healthcheck fails, where
 *   compose only marks it. The compose checks ask for readiness (a node whose store is down, a
 *   Sentinel without its quorum), which here would restart every node during a store outage and
 *   keep the Sentinels restarting each other before they ever form a quorum. The app's asks for
 *   readiness once (APP_HEALTHCHECK): a swarm puts a task in its service's DNS only once it is
 *   healthy, so a new replica (an update, a drain, a lost host's) gets no request before its store
 *   answers; after that, liveness.
 * - Files from the repository go in as swarm configs, the session secret as a swarm secret (the
 *   compose path's one-shot `secrets` service and its volume are not needed).
 */

export type SwarmMode = 'shared' | 'sticky';

export interface StackOptions {
  repoRoot: string;
  mode: SwarmMode;
  /** App replicas (the sticky upstream has one line per slot). */
  replicas: number;
  /** The hosts' names, in order: the Redis primary goes on the first, a replica on each other. */
  hosts: string[];
  /** Extra environment for the app (REDIS_WAIT_REPLICAS, SHUTDOWN_DELAY, ...). */
  appEnv?: Record<string, string>;
  /** Extra redis-server arguments for every Redis (min-replicas-to-write ...). */
  redisArgs?: string[];
  /** Services to leave out (grafana: no image on these hosts). */
  without?: string[];
}

/**
 * Redis's guard against a split brain (min-replicas-to-write): a primary that has heard from none of
 * its replicas for MIN_REPLICAS_MAX_LAG_S refuses writes (NOREPLICAS). A primary whose host is cut
 * off then stops acknowledging writes that the new primary, promoted on the other side, will never
 * have; and when the host rejoins, its app replicas are refused (and ask the Sentinels again) until
 * the Sentinels demote it. The swarm runs with 1 (of 2 replicas) unless told otherwise; 0 is off.
 */
export const DEFAULT_MIN_REPLICAS_TO_WRITE = 1;
/** Past a replica's once-a-second acknowledgement with room for a loaded host; the window a cut-off primary still takes writes. */
export const MIN_REPLICAS_MAX_LAG_S = 4;
export const minReplicasArgs = (n: number): string[] => (n ? ['--min-replicas-to-write', String(n), '--min-replicas-max-lag', String(MIN_REPLICAS_MAX_LAG_S)] : []);

/** The swarm secret holding the nodes' session signing secrets. */
export const SECRET_NAME = 'session_secrets';
export const NETWORK = 'sessions';
export const APP_PREFIX = 'app-';
/** Seconds a stopping node keeps accepting: nginx's re-resolution period (5 s) and a margin. */
export const DRAIN_DELAY_S = 6;

/**
 * The app's swarm healthcheck (node -e): /readyz until it has answered 200 once (a mark in the
 * temp folder), /healthz after that, on the node's internal port.
 */
export const APP_HEALTHCHECK = [
  "const fs=require('fs'),mark=require('path').join(require('os').tmpdir(),'session-cluster-ready'),once=fs.existsSync(mark);",
  "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9100)+(once?'/healthz':'/readyz'))",
  ".then(r=>{if(r.ok&&!once)fs.writeFileSync(mark,'');process.exit(r.ok?0:1)},()=>process.exit(1))",
].join('');

type Service = Record<string, unknown> & { environment?: Record<string, string>; command?: unknown; entrypoint?: unknown };
type ComposeDoc = { services: Record<string, Service> };

/** `${NAME}`, `${NAME:-default}` and `${NAME-default}` as compose reads them, from `vars` only. */
export function interpolate(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string')
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (_m, name: string, op: string | undefined, dflt: string | undefined) => {
      const v = vars[name];
      if (op === ':-') return v ? v : (dflt ?? '');
      if (op === '-') return v !== undefined ? v : (dflt ?? '');
      return v ?? '';
    });
  if (Array.isArray(value)) return value.map((v) => interpolate(v, vars));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, vars)]));
  return value;
}

function readCompose(file: string, vars: Record<string, string>): ComposeDoc {
  return interpolate(YAML.parse(fs.readFileSync(file, 'utf8')), vars) as ComposeDoc;
}

/** What both paths share, as compose has it: the keys a swarm service takes unchanged. */
const KEPT = ['image', 'command', 'entrypoint', 'environment', 'healthcheck', 'stop_grace_period', 'init', 'user'] as const;
function kept(s: Service | undefined, name: string): Service {
  if (!s) throw new Error(`docker-compose files have no service "${name}"`);
  const out: Service = {};
  for (const k of KEPT) if (s[k] !== undefined) (out as Record<string, unknown>)[k] = structuredClone(s[k]);
  return out;
}

const config = (name: string, target: string, mode = 0o444) => ({ source: name, target, mode });
/** Where docker-compose.sentinel.yml mounts infra/redis/start.sh, each Redis's entrypoint. */
const REDIS_START = '/opt/session-cluster/redis/start.sh';

export function stackDocument(o: StackOptions): Record<string, unknown> {
  if (o.hosts.length < 3) throw new Error(`the swarm stack needs 3 hosts (a Redis on each), got ${o.hosts.length}`);
  const vars = { SESSION_MODE: o.mode, APP_REPLICAS: String(o.replicas), COMPOSE_PROJECT_NAME: 'session-cluster' };
  const base = readCompose(path.join(o.repoRoot, 'docker-compose.yml'), vars);
  const sentinel = readCompose(path.join(o.repoRoot, 'docker-compose.sentinel.yml'), vars);
  const svc = (name: string) => {
    const [a, b] = [base.services[name], sentinel.services[name]];
    const s = kept(a || b ? ({ ...a, ...b } as Service) : undefined, name);
    if (a?.environment || b?.environment) s.environment = { ...a?.environment, ...b?.environment };
    return s;
  };
  const net = { networks: [NETWORK] };
  const pinned = (host: string) => ({ placement: { constraints: [`node.hostname == ${host}`] } });
  const restart = { restart_policy: { condition: 'any', delay: '1s' } };
  const withArgs = (cmd: unknown) => [...(cmd as string[]), ...(o.redisArgs ?? [])];

  const alive = (test: string[], start = '30s') => ({ test, interval: '2s', timeout: '2s', retries: 5, start_period: start });
  const app = svc('app');
  app.healthcheck = alive(['CMD', 'node', '-e', APP_HEALTHCHECK], '60s');
  const redisAlive = (port: number) => alive(['CMD-SHELL', `redis-cli -p ${port} ping | grep -q PONG`]);
  Object.assign(app.environment!, {
    NODE_ID: `${APP_PREFIX}{{.Task.Slot}}`,
    SESSION_SECRETS_FILE: `/run/secrets/${SECRET_NAME}`,
    // A stopping task leaves the service's DNS 2 s before its SIGTERM (moby's gossip delay), and
    // nginx re-resolves every 5 s (render.sh: valid=5s): a node keeps accepting that long after the
    // signal, so that nginx stops sending before its listener closes (a connection the kernel
    // accepted and the node did not is reset, and a POST on it is a 502). The deadline and the
    // grace period cover the delay and the drain.
    SHUTDOWN_DELAY: `${DRAIN_DELAY_S}`,
    SHUTDOWN_TIMEOUT: `${DRAIN_DELAY_S + 10}`,
    ...o.appEnv,
  });
  const services: Record<string, unknown> = {
    app: {
      ...app,
      hostname: `${APP_PREFIX}{{.Task.Slot}}`,
      stop_grace_period: `${DRAIN_DELAY_S + 15}s`,
      ...net,
      secrets: [{ source: SECRET_NAME, target: SECRET_NAME, uid: '1000', gid: '1000', mode: 0o400 }],
      deploy: {
        endpoint_mode: 'dnsrr',
        replicas: o.replicas,
        placement: { preferences: [{ spread: 'node.id' }] },
        update_config: { parallelism: 1, order: 'start-first', failure_action: 'rollback', monitor: '10s' },
        rollback_config: { parallelism: 1, order: 'start-first' },
        ...restart,
      },
    },
    redis: {
      ...svc('redis'),
      command: withArgs(svc('redis').command),
      hostname: 'redis',
      ...net,
      volumes: ['redis-data:/data'],
      configs: [config('redis_start', REDIS_START)],
      deploy: { endpoint_mode: 'dnsrr', replicas: 1, ...pinned(o.hosts[0]!), ...restart },
    },
  };
  // Compose scales one `redis-replica` service; here each replica is pinned to its own host, so
  // that the primary and the replicas never share one.
  o.hosts.slice(1, 3).forEach((host, i) => {
    const r = svc('redis-replica');
    services[`redis-replica-${i + 1}`] = {
      ...r,
      healthcheck: redisAlive(6379),
      command: withArgs(r.command),
      hostname: `redis-replica-${i + 1}`,
      ...net,
      configs: [config('redis_start', REDIS_START)],
      volumes: [`redis-replica-${i + 1}-data:/data`],
      deploy: { endpoint_mode: 'dnsrr', replicas: 1, ...pinned(host), ...restart },
    };
  });
  services.sentinel = {
    ...svc('sentinel'),
    healthcheck: redisAlive(26379),
    hostname: 'sentinel-{{.Node.Hostname}}',
    ...net,
    deploy: { endpoint_mode: 'dnsrr', mode: 'global', ...restart },
  };
  const nginx = svc('nginx');
  Object.assign(nginx.environment!, { APP_HOST: 'app', APP_REPLICA_PREFIX: APP_PREFIX });
  services.nginx = {
    ...nginx,
    ...net,
    configs: [
      config('nginx_conf', '/etc/nginx/nginx.conf'),
      config('nginx_render', '/opt/session-cluster/nginx/render.sh'),
      config('nginx_entrypoint', '/opt/session-cluster/nginx/docker-entrypoint.sh'),
    ],
    ports: [{ target: 8080, published: 8080, protocol: 'tcp', mode: 'host' }],
    deploy: { endpoint_mode: 'dnsrr', mode: 'global', ...restart },
  };
  const prometheus = svc('prometheus');
  Object.assign(prometheus.environment!, {
    APP_REPLICA_PREFIX: APP_PREFIX,
    REDIS_TARGETS: ['redis:6379', 'redis-replica-1:6379', 'redis-replica-2:6379'].join(' '),
    SENTINEL_TARGETS: o.hosts.map((h) => `sentinel-${h}:26379`).join(' '),
  });
  services.prometheus = {
    ...prometheus,
    ...net,
    configs: [config('prometheus_entrypoint', '/opt/session-cluster/prometheus/docker-entrypoint.sh'), config('prometheus_yml', '/opt/session-cluster/prometheus/prometheus.yml')],
    volumes: ['prometheus-data:/prometheus'],
    ports: [{ target: 9090, published: 9090, protocol: 'tcp', mode: 'host' }],
    deploy: { endpoint_mode: 'dnsrr', replicas: 1, ...restart },
  };
  services['nginx-exporter'] = { ...svc('nginx-exporter'), ...net, deploy: { endpoint_mode: 'dnsrr', replicas: 1, ...restart } };
  services['redis-exporter'] = { ...svc('redis-exporter'), ...net, deploy: { endpoint_mode: 'dnsrr', replicas: 1, ...restart } };
  for (const name of o.without ?? []) delete services[name];

  const file = (p: string) => ({ file: path.join(o.repoRoot, p) });
  return {
    version: '3.8',
    services,
    networks: { [NETWORK]: { driver: 'overlay', attachable: true } },
    volumes: Object.fromEntries(['redis-data', 'redis-replica-1-data', 'redis-replica-2-data', 'prometheus-data'].map((v) => [v, {}])),
    configs: {
      nginx_conf: file('nginx.conf'),
      nginx_render: file('infra/nginx/render.sh'),
      nginx_entrypoint: file('infra/nginx/docker-entrypoint.sh'),
      redis_start: file('infra/redis/start.sh'),
      prometheus_entrypoint: file('infra/prometheus/docker-entrypoint.sh'),
      prometheus_yml: file('infra/prometheus/prometheus.yml'),
    },
    secrets: { [SECRET_NAME]: { external: true } },
  };
}
