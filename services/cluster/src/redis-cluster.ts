import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { waitFor } from './lib/ports.js';
import { which } from './lib/process.js';

/**
 * The Redis Cluster topology (`--store redis-cluster`): six redis-server processes in cluster
 * mode, made into three primaries with one replica each by `redis-cli --cluster create`.
 *
 * `cluster-node-timeout` is 1500 ms (Redis's default is 15 s): a primary that does not answer its
 * peers for that long is marked failing, its replica is elected within about another second, and
 * the slots it served accept writes again within seconds (under 5 s). Lower values make
 * a busy or briefly stalled node look dead (a needless failover); 1.5 s leaves headroom on a small
 * shared machine. Slots of the other primaries never stop.
 */
export const CLUSTER_NODE_TIMEOUT_MS = 1500;

const run = promisify(execFile);

function redisCli(): string {
  const bin = which('redis-cli');
  if (!bin) throw new Error('redis-cluster: redis-cli is not installed (Debian package redis-tools)');
  return bin;
}

/** Joins six empty cluster-mode servers into 3 primaries + 3 replicas and waits until every node reports cluster_state:ok. */
export async function createCluster(ports: number[], timeoutMs = 30_000): Promise<void> {
  if (ports.length !== 6) throw new Error(`redis-cluster needs 6 servers, got ${ports.length}`);
  await run(redisCli(), ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: timeoutMs });
  await waitClusterOk(ports, timeoutMs);
}

/** Every reachable node among `ports` reports cluster_state:ok and all 16384 slots assigned. */
export async function waitClusterOk(ports: number[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'redis cluster_state:ok',
    async () => {
      const infos = await Promise.all(ports.map((p) => clusterInfo(p).catch(() => null)));
      const alive = infos.filter((i): i is Record<string, string> => i !== null);
      return alive.length > 0 && alive.every((i) => i.cluster_state === 'ok' && i.cluster_slots_assigned === '16384');
    },
    timeoutMs,
    200,
  );
}

async function clusterInfo(port: number): Promise<Record<string, string>> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  try {
    await r.connect();
    const text = await r.cluster('INFO');
    return Object.fromEntries(
      String(text)
        .split(/\r?\n/)
        .filter((l) => l.includes(':'))
        .map((l) => l.split(':', 2) as [string, string]),
    );
  } finally {
    r.disconnect();
  }
}

/** The role of each server by port, as the cluster sees it (CLUSTER NODES on any live node); absent: not known to be up. */
export async function clusterRoles(ports: number[]): Promise<Map<number, 'primary' | 'replica'>> {
  for (const port of ports) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    try {
      await r.connect();
      const text = String(await r.cluster('NODES'));
      const roles = new Map<number, 'primary' | 'replica'>();
      for (const line of text.trim().split('\n')) {
        const [, address, flags] = line.split(' ');
        if (!address || !flags || flags.includes('fail')) continue;
        const p = Number(address.split('@')[0]!.split(':').pop());
        roles.set(p, flags.includes('master') ? 'primary' : 'replica');
      }
      return roles;
    } catch {
      continue;
    } finally {
      r.disconnect();
    }
  }
  return new Map();
}
