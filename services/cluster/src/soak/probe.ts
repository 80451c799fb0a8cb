import { Redis } from 'ioredis';
import { parseMetrics } from '../lib/node-metrics.js';

/**
 * What the soak measures from outside, without touching the app: each node's metrics endpoint
 * (prom-client's process and Node.js metrics, the active-sessions gauge, and the per-user index
 * gauges when the node exports them), and Redis itself. INFO, DBSIZE and SCAN run here, in the
 * soak tool only, never in the app: the sessions database (`s:*`) and the next one (`idx:*`
 * per-user index, `rl:*` login limiter), every index member checked against its session.
 */
export interface NodeSample {
  up: boolean;
  rssBytes: number | null;
  heapUsedBytes: number | null;
  openFds: number | null;
  /** session_cluster_sessions_active: shared, the whole sessions database; sticky, this node's. */
  sessionsActive: number | null;
  /** Sticky: the node's in-memory index (session_cluster_user_index_sessions/_users), when exported. */
  indexSessions: number | null;
  indexUsers: number | null;
}

export interface RedisSample {
  sessionKeys: number;
  indexKeys: number;
  limiterKeys: number;
  /** Keys in the second database that are neither idx:* nor rl:*. */
  otherKeys: number;
  indexMembers: number;
  /** Members whose session key no longer exists. */
  indexMembersDead: number;
  usedMemoryBytes: number;
}

export async function sampleNode(metricsPort: number): Promise<NodeSample> {
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    const m = parseMetrics(await res.text());
    const get = (name: string) => m.get(`session_cluster_${name}`) ?? null;
    return {
      up: true,
      rssBytes: get('process_resident_memory_bytes'),
      heapUsedBytes: get('nodejs_heap_size_used_bytes'),
      openFds: get('process_open_fds'),
      sessionsActive: get('sessions_active'),
      indexSessions: get('user_index_sessions'),
      indexUsers: get('user_index_users'),
    };
  } catch {
    return { up: false, rssBytes: null, heapUsedBytes: null, openFds: null, sessionsActive: null, indexSessions: null, indexUsers: null };
  }
}

async function countMatching(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Opens the two databases of the cluster's Redis (sessions in db N, index and limiter in N+1). */
export function openRedis(url: string): { sessions: Redis; aux: Redis; close(): void } {
  const db = Number(new URL(url).pathname.slice(1) || 0);
  const opts = { maxRetriesPerRequest: 1 };
  // ioredis lets the URL's path win over its `db` option, so each database goes into the URL.
  const at = (n: number) => Object.assign(new URL(url), { pathname: `/${n}` }).toString();
  const sessions = new Redis(at(db), opts);
  const aux = new Redis(at(db + 1), opts);
  return { sessions, aux, close: () => (sessions.disconnect(), aux.disconnect()) };
}

export async function sampleRedis(r: { sessions: Redis; aux: Redis }, sessionPrefix = 's:'): Promise<RedisSample> {
  const sessionKeys = (await countMatching(r.sessions, `${sessionPrefix}*`)).length;
  const indexKeys = await countMatching(r.aux, 'idx:*');
  const limiterKeys = (await countMatching(r.aux, 'rl:*')).length;
  const auxSize = await r.aux.dbsize();
  let indexMembers = 0;
  let indexMembersDead = 0;
  for (let i = 0; i < indexKeys.length; i += 500) {
    const batch = indexKeys.slice(i, i + 500);
    const members = ((await r.aux.pipeline(batch.map((k) => ['zrange', k, '0', '-1'])).exec()) ?? []).flatMap(([, v]) => (v as string[] | null) ?? []);
    indexMembers += members.length;
    for (let j = 0; j < members.length; j += 1000) {
      const ids = members.slice(j, j + 1000);
      const exists = (await r.sessions.pipeline(ids.map((id) => ['exists', sessionPrefix + id])).exec()) ?? [];
      indexMembersDead += exists.filter(([, v]) => v === 0).length;
    }
  }
  const info = await r.sessions.info('memory');
  const usedMemoryBytes = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
  return { sessionKeys, indexKeys: indexKeys.length, limiterKeys, otherKeys: auxSize - indexKeys.length - limiterKeys, indexMembers, indexMembersDead, usedMemoryBytes };
}
