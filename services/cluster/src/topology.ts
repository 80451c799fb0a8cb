/**
 * The cluster's topology, shared by the local runner and checked against docker-compose.yml
 * (infra/test/process/compose.test.ts): which parts exist, the port each listens on inside its container,
 * and the environment every node gets. The local runner maps each port to a free loopback port
 * (nginx's public port is --port); compose keeps them as they are, and publishes only nginx.
 */
export const CONTAINER_PORTS = {
  app: 3000,
  appMetrics: 9100,
  redis: 6379,
  nginx: 8080,
  nginxStatus: 8081,
  prometheus: 9090,
  nginxExporter: 9113,
  redisExporter: 9121,
  grafana: 3000,
} as const;

/** Compose service names; locally a node is `app-<n>` (compose: `<project>-app-<n>`). */
export const SERVICES = ['app', 'redis', 'nginx', 'prometheus', 'nginx-exporter', 'redis-exporter'] as const;
/** Services only compose runs (the local path has no Grafana; k6 runs as a local binary). */
export const COMPOSE_ONLY_SERVICES = ['grafana', 'k6'] as const;

/** Prometheus job names, identical in both paths (infra/prometheus/prometheus.yml). */
export const JOBS = { app: 'app', nginx: 'nginx', redis: 'redis', sentinel: 'sentinel', prometheus: 'prometheus' } as const;

/**
 * Environment every node gets from the cluster, beyond NODE_ID, PORT, METRICS_PORT and
 * SESSION_SECRETS (per node locally; compose: the container name (services/app/docker-entrypoint.mjs), 3000, 9100, a secret file).
 * TRUST_PROXY names the proxy: loopback locally, the compose network (uniquelocal) in compose.
 */
export function nodeEnvironment(opts: { mode: string; redisUrl: string; demoUsers: number }): Record<string, string> {
  return {
    SESSION_MODE: opts.mode,
    REDIS_URL: opts.redisUrl,
    TRUST_PROXY: 'loopback',
    DEMO_USERS: String(opts.demoUsers),
    NODE_ENV: 'production',
  };
}

/** Keys of nodeEnvironment(); compose sets the same keys on the app service. */
export const NODE_ENV_KEYS = ['SESSION_MODE', 'REDIS_URL', 'TRUST_PROXY', 'DEMO_USERS', 'NODE_ENV'] as const;
