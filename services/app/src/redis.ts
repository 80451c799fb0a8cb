import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Metrics } from './metrics.js';
import { MODE_DESCRIPTORS } from './modes.js';
import { surviveStalls } from './redis-timeouts.js';

/**
 * A node's Redis connections (openRedisClients opens those its configuration needs): shared
 * mode's sessions in one logical database and everything else in the next; the other modes only
 * the second (jwt's revocations, and the login budgets of every mode that counts them in Redis).
 */
export interface RedisClients {
  /** Shared mode only. Holds session keys only, so DBSIZE is the number of live sessions. */
  sessions?: Redis;
  /** The login limiter, and shared mode's per-user index (with REDIS_WAIT_REPLICAS, the index's WAIT too: once per login and per "log out everywhere"), or jwt's revocations. */
  aux: Redis;
  /**
   * Only when session writes wait for replicas (REDIS_WAIT_REPLICAS): the connection that carries
   * the session writes and their WAIT, in the sessions' database. WAIT confirms the writes of the
   * connection it is sent on and holds that connection until the replicas answer; on a connection
   * of their own, reads never queue behind it.
   */
  writes?: Redis;
}

/** Replies of a server that is not (or no longer) the primary a write needs. */
const STALE_PRIMARY = /^(READONLY|NOREPLICAS)\b/;

/** How long a connect, or a silent socket with a command pending, may take: twice the command timeout, at least 1 s. */
export const patienceMs = (commandTimeoutMs: number) => Math.max(1000, commandTimeoutMs * 2);

/**
 * ioredis tuned to fail fast. Its defaults queue commands while Redis is down and retry each
 * one 20 times, so a request would hang; here a command fails within `commandTimeoutMs` and the
 * client keeps reconnecting in the background, so the node recovers without a restart. A node
 * that itself stalls past the timeout still takes the reply Redis sent meanwhile (redis-timeouts.ts).
 */
export function createRedisClient(
  url: string,
  opts: { commandTimeoutMs: number; name: string; db?: number; sentinel?: Config['redis']['sentinel']; autoPipelining?: boolean },
): Redis {
  surviveStalls();
  const options: RedisOptions = {
    connectionName: opts.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: patienceMs(opts.commandTimeoutMs),
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    lazyConnect: true,
    // Commands issued in the same tick (concurrent requests) share one socket write: fewer
    // syscalls per request. Off, each command is its own write (REDIS_AUTO_PIPELINING=false).
    enableAutoPipelining: opts.autoPipelining ?? false,
    // A server that vanishes without closing anything (its host lost power, or is cut off) leaves
    // a socket that never errors: commands only time out, and the client would keep sending there.
    // When a command has waited this long with no byte back, the socket is destroyed and the client
    // reconnects: with Sentinel, it asks them again and follows a new primary. Longer than the
    // command timeout (a WAIT holds the connection for up to REDIS_WAIT_TIMEOUT_MS, which is shorter).
    socketTimeout: patienceMs(opts.commandTimeoutMs),
  };
  if (opts.sentinel) {
    // High availability: ask the Sentinels which server is the primary; when the connection to it
    // drops (or goes silent: socketTimeout), the client asks them again and follows the new one.
    return new Redis({
      ...options,
      // A server that refuses a write as a replica would (READONLY), or as a primary cut off from
      // its replicas (NOREPLICAS: min-replicas-to-write), is no longer the primary the Sentinels
      // agree on: a host that rejoins after a partition keeps its old primary and its clients'
      // connections until the Sentinels demote it. The write fails (nothing was applied) and the
      // client asks the Sentinels again, instead of writing into a server whose writes will be lost.
      reconnectOnError: (err) => STALE_PRIMARY.test(err.message),
      sentinels: opts.sentinel.sentinels,
      name: opts.sentinel.name,
      db: opts.db ?? 0,
      sentinelCommandTimeout: opts.commandTimeoutMs,
      sentinelRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    });
  }
  // ioredis lets the URL's path win over the `db` option, so the database goes into the URL.
  const target = new URL(url);
  if (opts.db !== undefined) target.pathname = `/${opts.db}`;
  return new Redis(target.toString(), options);
}

/**
 * A Redis Cluster client with the same fail-fast behaviour: no offline queue, the command
 * timeout, every command (reads too) on the primary that owns the slot, so a read sees the
 * latest write, and slot-map refreshes bounded by the command timeout. When a primary dies its
 * slots fail fast until a replica is promoted; ioredis follows the MOVED replies and refreshes its
 * slot map. Scripts defined with defineCommand are sent as EVALSHA to the node owning their first
 * key, and on NOSCRIPT (a node that never saw them, a promoted replica) resent as EVAL.
 *
 * It is returned as `Redis`: Cluster implements the same command interface, and every command the
 * store, index and limiter send on a request path touches one slot (session/keys.ts). What does
 * not carry over, and is not used with it: SELECT of a non-zero db, WAIT (config.ts refuses the
 * combination), DBSIZE (see activeSessions) and SCAN (the store's length/all, never on a request path).
 */
export function createClusterClient(nodes: Array<{ host: string; port: number }>, opts: { commandTimeoutMs: number; name: string }): Redis {
  surviveStalls();
  const cluster = new Cluster(nodes, {
    enableOfflineQueue: false,
    scaleReads: 'master',
    lazyConnect: true,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    slotsRefreshTimeout: opts.commandTimeoutMs,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 4,
    redisOptions: {
      connectionName: opts.name,
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: patienceMs(opts.commandTimeoutMs),
      socketTimeout: patienceMs(opts.commandTimeoutMs),
    },
  });
  return cluster as unknown as Redis;
}

/** Keys held by the store: DBSIZE on one Redis; on a Cluster, the sum over its primaries. */
export async function keyCount(client: Redis): Promise<number> {
  if (!(client instanceof Cluster)) return client.dbsize();
  const sizes = await Promise.all((client as Cluster).nodes('master').map((n) => n.dbsize()));
  return sizes.reduce((a, b) => a + b, 0);
}

/** The logical database a redis:// URL names (the path), 0 if none. */
export function dbOf(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? 0 : Number.parseInt(path, 10);
}

/**
 * A node's connections (RedisClients): shared mode's sessions in the URL's database, the
 * index and limiter in the next one (the other modes: only that one), and with REDIS_WAIT_REPLICAS
 * a third for session writes. They connect in the background: until Redis answers, readiness is
 * 503 and session routes answer 503, and all recover on their own.
 */
export function openRedisClients(config: Pick<Config, 'redis' | 'nodeId' | 'mode'>, logger: Logger, metrics?: Pick<Metrics, 'redisCommands'>): RedisClients {
  const db = dbOf(config.redis.url);
  // Only a mode that keeps its sessions in Redis (shared) opens their connection; every other mode that uses Redis needs the aux connection only.
  const sessions = MODE_DESCRIPTORS[config.mode].sessions === 'redis';
  const opts = { commandTimeoutMs: config.redis.commandTimeoutMs, sentinel: config.redis.sentinel, autoPipelining: config.redis.autoPipelining };
  const cluster = config.redis.cluster;
  const clients: RedisClients = cluster
    ? {
        // One database: the key layout (session/keys.ts) keeps the sessions and the rest apart.
        ...(sessions && { sessions: createClusterClient(cluster.nodes, { ...opts, name: `${config.nodeId}-sessions` }) }),
        aux: createClusterClient(cluster.nodes, { ...opts, name: `${config.nodeId}-aux` }),
      }
    : {
        ...(sessions && { sessions: createRedisClient(config.redis.url, { ...opts, name: `${config.nodeId}-sessions`, db }) }),
        aux: createRedisClient(config.redis.url, { ...opts, name: `${config.nodeId}-aux`, db: db + 1 }),
        // WAIT holds its connection until a replica confirms: session writes get one of their own.
        ...(sessions && config.redis.waitReplicas > 0 && { writes: createRedisClient(config.redis.url, { ...opts, name: `${config.nodeId}-writes`, db }) }),
      };
  for (const [role, client] of Object.entries(clients)) {
    if (metrics) countCommands(client, role, metrics);
    let down = false;
    client.on('error', (err: Error) => {
      if (!down) logger.warn({ role, err: err.message }, 'redis unavailable; retrying in the background');
      down = true;
    });
    client.on('ready', () => {
      if (down) logger.info({ role }, 'redis reachable again');
      down = false;
    });
    client.connect().catch(() => {});
  }
  return clients;
}

/**
 * Counts every command a client sends (what a request costs in round trips and commands sent),
 * labelled by connection role and command name: a small fixed set, never a key.
 */
function countCommands(client: Redis, role: string, metrics: Pick<Metrics, 'redisCommands'>): void {
  const send = client.sendCommand.bind(client);
  // Every argument is passed on: a Cluster client's pipeline adds a third (the node to send to).
  client.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], ...rest: unknown[]) => {
    metrics.redisCommands.inc({ connection: role, command: command.name.toLowerCase() });
    return (send as (...args: unknown[]) => ReturnType<Redis['sendCommand']>)(command, ...rest);
  }) as Redis['sendCommand'];
}
