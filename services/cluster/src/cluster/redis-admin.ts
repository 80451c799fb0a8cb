import { Redis } from 'ioredis';
import type { PartState } from '../parts.js';
import { waitFor } from '../lib/ports.js';
import { owns, type ClusterState } from './state.js';

/**
 * The runner's own questions to the Redis servers and Sentinels it started: one short-lived
 * connection per question, no retries and no offline queue, so that a server that is down (or
 * killed a moment ago) answers "unknown" within `timeoutMs` instead of holding the caller.
 */
export async function withRedis<T>(port: number, use: (r: Redis) => Promise<T>, timeoutMs = 1000): Promise<T> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    enableOfflineQueue: false,
    // A Sentinel is asked too, and a replica may still be loading: no INFO ready check, no CLIENT SETINFO.
    enableReadyCheck: false,
    disableClientInfo: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  r.on('error', () => {}); // the rejected command says it; an unhandled 'error' event would not
  try {
    await r.connect();
    return await use(r);
  } finally {
    r.disconnect();
  }
}

export type RedisRole = 'primary' | 'replica' | 'sentinel';

/** What a Redis server (or Sentinel) on 127.0.0.1:port says it is (ROLE); undefined if it does not answer. */
export async function redisRole(port: number, timeoutMs = 1000): Promise<RedisRole | undefined> {
  const reply = await withRedis(port, (r) => r.call('ROLE') as Promise<unknown[]>, timeoutMs).catch(() => undefined);
  const role = Array.isArray(reply) ? String(reply[0]) : undefined;
  return role === 'master' ? 'primary' : role === 'slave' ? 'replica' : role === 'sentinel' ? 'sentinel' : undefined;
}

/** The Redis part that is primary right now (`kill redis-primary`). */
export async function primaryPart(state: ClusterState): Promise<PartState> {
  for (const p of state.parts.filter((x) => x.kind === 'redis' && owns(x))) if ((await redisRole(p.port)) === 'primary') return p;
  throw new Error('no running Redis reports itself primary');
}

/** Waits until a replica has finished its first sync: one still loading it has nothing to fail over to. */
export async function waitReplicaInSync(replica: PartState, timeoutMs = 30_000): Promise<void> {
  const inSync = () =>
    withRedis(replica.port, (r) => r.info('replication')).then(
      (info) => /master_link_status:up/.test(info),
      () => false,
    );
  await waitFor(`${replica.name} to finish its first sync`, inSync, timeoutMs, 100);
}
