import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../lib/ports.js';
import { postgresSpec, redisSpec, sentinelSpec, type PartSpec, type PartState, type RedisPersistence } from '../parts.js';
import { CLUSTER_NODE_TIMEOUT_MS, createCluster } from '../redis-cluster.js';
import { waitReplicaInSync } from './redis-admin.js';
import type { Store } from './state.js';

/** What the nodes are told about their store: REDIS_URL, and the variables of a topology (DATABASE_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES). */
export interface StoreAddress {
  redisUrl: string;
  env: Record<string, string>;
}

export interface StoreStartup {
  dir: string;
  persistence: RedisPersistence;
  /** Starts one part and records it in the cluster's state (up.ts). */
  started: (spec: PartSpec) => Promise<PartState>;
  say: (line: string) => void;
}

/** A REDIS_URL that points nowhere: the nodes of a mode without Redis never dial it. */
const NO_REDIS = 'redis://127.0.0.1:1/0';

/** Starts the store a mode needs, in the topology asked for, and says how the nodes reach it. */
export async function startStore(kind: 'redis' | 'postgres', store: Store, s: StoreStartup): Promise<StoreAddress> {
  fs.mkdirSync(path.join(s.dir, 'redis'), { recursive: true });
  if (kind === 'postgres') return startPostgres(s);
  if (store === 'redis-cluster') return startRedisCluster(s);
  if (store === 'sentinel') return startSentinelStore(s);
  return startSingleRedis(s);
}

async function startPostgres(s: StoreStartup): Promise<StoreAddress> {
  const postgres = await s.started(postgresSpec({ port: await freePort(), dir: path.join(s.dir, 'postgres') }));
  return { redisUrl: NO_REDIS, env: { DATABASE_URL: postgres.url } };
}

async function startSingleRedis(s: StoreStartup): Promise<StoreAddress> {
  const redis = await s.started(redisSpec(await freePort(), path.join(s.dir, 'redis'), s.persistence));
  return { redisUrl: `${redis.url}/0`, env: {} };
}

function serverDir(s: StoreStartup, i: number): string {
  const d = path.join(s.dir, `redis-${i}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Six cluster-mode servers joined into 3 primaries + 3 replicas (redis-cluster.ts). */
async function startRedisCluster(s: StoreStartup): Promise<StoreAddress> {
  const servers: PartState[] = [];
  for (let i = 1; i <= 6; i++) {
    servers.push(
      await s.started(
        redisSpec(await freePort(), serverDir(s, i), s.persistence, {
          name: `redis-${i}`,
          replicated: true,
          cluster: { nodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS, busPort: await freePort() },
        }),
      ),
    );
  }
  s.say('joining redis-1..6 into a Redis Cluster (3 primaries, 3 replicas)');
  await createCluster(servers.map((p) => p.port));
  // The Cluster client finds every server from REDIS_CLUSTER_NODES; REDIS_URL only names the database.
  return { redisUrl: `${servers[0]!.url}/0`, env: { REDIS_CLUSTER_NODES: servers.map((p) => `127.0.0.1:${p.port}`).join(',') } };
}

/** A primary, two replicas following it, and three Sentinels watching it (parts.ts). */
async function startSentinelStore(s: StoreStartup): Promise<StoreAddress> {
  const primary = await s.started(redisSpec(await freePort(), serverDir(s, 1), s.persistence, { name: 'redis-1', replicated: true }));
  for (const i of [2, 3]) {
    const replica = await s.started(redisSpec(await freePort(), serverDir(s, i), s.persistence, { name: `redis-${i}`, replicaOf: primary.port, replicated: true }));
    // Healthy means in sync: a replica still loading its first copy has nothing to fail over to.
    await waitReplicaInSync(replica);
  }
  const sentinels: PartState[] = [];
  for (const i of [1, 2, 3]) sentinels.push(await s.started(sentinelSpec({ index: i, port: await freePort(), dir: path.join(s.dir, `sentinel-${i}`), primaryPort: primary.port })));
  // The database; the host is whatever the Sentinels say.
  return { redisUrl: `${primary.url}/0`, env: { REDIS_SENTINELS: sentinels.map((p) => `127.0.0.1:${p.port}`).join(',') } };
}
