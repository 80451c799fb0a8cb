import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreObserver, StoreOp } from './session/stores/observer.js';

/**
 * The node's metrics, in a Registry of its own (never prom-client's global one, so an app can
 * be built twice in one process). Every series carries `node`; labels are route templates and
 * fixed enums, never user names or session ids.
 */
export type LoginResult = 'ok' | 'bad_credentials' | 'rate_limited' | 'busy' | 'invalid' | 'error';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  httpDuration: Histogram<'route' | 'method'>;
  storeDuration: Histogram<'operation'>;
  storeErrors: Counter<'operation'>;
  sessionsCreated: Counter;
  sessionsDestroyed: Counter<'reason'>;
  logins: Counter<'result'>;
  /** Commands this node sent to Redis, by connection role and command (a script call counts once, as EVALSHA). */
  redisCommands: Counter<'connection' | 'command'>;
  /** Statements this node sent to PostgreSQL (database mode), by statement name. */
  dbQueries: Counter<'statement'>;
  /** jwt mode: tokens refused because the store could not prove them unrevoked (its revocation data is gone or younger than the token). */
  revocationUnprovable: Counter;
  storeObserver: StoreObserver;
  /** Registers the collector of the active-sessions gauge (store-specific, cheap: never a SCAN). */
  setActiveSessionsSource(source: () => Promise<number> | number): void;
  /** Sticky mode: the in-memory per-user index's size (session ids, per-user maps), for the soak. */
  setUserIndexSource(source: () => { sessions: number; users: number }): void;
}

export const PREFIX = 'session_cluster_';

export function createMetrics(info: { nodeId: string; mode: string; version: string }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: info.nodeId });
  collectDefaultMetrics({ register: registry, prefix: PREFIX });

  new Gauge({
    name: `${PREFIX}node_info`,
    help: 'Constant 1, labelled with the node identity, session mode and version.',
    labelNames: ['mode', 'version'],
    registers: [registry],
  }).set({ mode: info.mode, version: info.version }, 1);

  const httpRequests = new Counter({
    name: `${PREFIX}http_requests_total`,
    help: 'HTTP requests by route template, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration by route template and method.',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const storeDuration = new Histogram({
    name: `${PREFIX}session_store_duration_seconds`,
    help: 'Session store operation duration by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: `${PREFIX}session_store_errors_total`,
    help: 'Session store operations that failed, by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  const sessionsCreated = new Counter({ name: `${PREFIX}sessions_created_total`, help: 'Sessions created at login.', registers: [registry] });
  const sessionsDestroyed = new Counter({
    name: `${PREFIX}sessions_destroyed_total`,
    help: 'Sessions ended by this node, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const redisCommands = new Counter({
    name: `${PREFIX}redis_commands_total`,
    help: 'Commands this node sent to Redis, by connection (sessions, aux) and command; a script call is one EVALSHA (Redis counts the commands inside it too).',
    labelNames: ['connection', 'command'] as const,
    registers: [registry],
  });
  const dbQueries = new Counter({
    name: `${PREFIX}db_queries_total`,
    help: 'Statements this node sent to PostgreSQL (database mode), by statement name (a fixed set, never a key).',
    labelNames: ['statement'] as const,
    registers: [registry],
  });
  const revocationUnprovable = new Counter({
    name: `${PREFIX}revocation_unprovable_total`,
    help: 'jwt mode: tokens refused because the store could not prove them unrevoked (its revocation data is gone or younger than the token: Redis restarted empty, replaced, flushed or failed over).',
    registers: [registry],
  });
  const logins = new Counter({ name: `${PREFIX}logins_total`, help: 'Login attempts by result.', labelNames: ['result'] as const, registers: [registry] });
  for (const op of ['get', 'set', 'touch', 'destroy'] as const) {
    storeErrors.inc({ operation: op }, 0);
    storeDuration.zero({ operation: op });
  }
  for (const result of ['ok', 'bad_credentials', 'rate_limited', 'busy', 'invalid', 'error'] as const) logins.inc({ result }, 0);
  for (const reason of ['logout', 'logout_everywhere', 'absolute_timeout', 'evicted'] as const) sessionsDestroyed.inc({ reason }, 0);

  let activeSource: () => Promise<number> | number = () => 0;
  let indexSource: (() => { sessions: number; users: number }) | null = null;
  const indexGauges = {
    sessions: "Session ids in this node's in-memory per-user index (sticky mode only).",
    users: "Users with an entry in this node's in-memory per-user index (sticky mode only).",
  };
  for (const [field, help] of Object.entries(indexGauges) as Array<['sessions' | 'users', string]>) {
    new Gauge({
      name: `${PREFIX}user_index_${field}`,
      help,
      registers: [registry],
      collect() {
        if (indexSource) this.set(indexSource()[field]);
      },
    });
  }
  new Gauge({
    name: `${PREFIX}sessions_active`,
    help: 'Sessions held by the store this node uses (shared: the whole Redis session database; sticky: this node).',
    registers: [registry],
    async collect() {
      try {
        this.set(await activeSource());
      } catch {
        // The store is down: leave the last value; store errors are counted elsewhere.
      }
    },
  });

  const storeObserver: StoreObserver = {
    start(op: StoreOp) {
      const end = storeDuration.startTimer({ operation: op });
      return (err?: unknown) => {
        end();
        if (err) storeErrors.inc({ operation: op });
      };
    },
  };

  return {
    registry,
    httpRequests,
    httpDuration,
    storeDuration,
    storeErrors,
    sessionsCreated,
    sessionsDestroyed,
    logins,
    redisCommands,
    dbQueries,
    revocationUnprovable,
    storeObserver,
    setActiveSessionsSource(source) {
      activeSource = source;
    },
    setUserIndexSource(source) {
      indexSource = source;
    },
  };
}
