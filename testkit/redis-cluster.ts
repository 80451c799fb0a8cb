import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from '../services/cluster/src/lib/ports.js';
import { signal, terminate, waitGone } from '../services/cluster/src/lib/pids.js';
import { launch, redisSpec, type PartState } from '../services/cluster/src/parts.js';
import { CLUSTER_NODE_TIMEOUT_MS, clusterRoles, createCluster, waitClusterOk } from '../services/cluster/src/redis-cluster.js';

/** A real Redis Cluster, 3 primaries + 3 replicas on free loopback ports, started as `cluster up --store redis-cluster` starts it. */
export interface TestRedisCluster {
  ports: number[];
  /** REDIS_CLUSTER_NODES for a node. */
  nodes: string;
  /** Ports of the current primaries (CLUSTER NODES). */
  primaries(): Promise<number[]>;
  /** SIGKILL of the server on `port`. */
  kill(port: number): Promise<void>;
  /** Starts the server on `port` again (its nodes.conf makes it rejoin as itself) and waits for cluster_state:ok. */
  restart(port: number): Promise<void>;
  waitOk(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedisCluster(): Promise<TestRedisCluster> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-rcluster-'));
  const ports: number[] = [];
  const parts = new Map<number, PartState>();
  // Each server's cluster bus port, the same across a restart (the others know it from nodes.conf).
  const busPorts = new Map<number, number>();
  const start = async (port: number) => {
    const dir = path.join(root, String(port));
    fs.mkdirSync(dir, { recursive: true });
    if (!busPorts.has(port)) busPorts.set(port, await freePort());
    parts.set(
      port,
      await launch(
        redisSpec(port, dir, 'off', { name: `redis-${port}`, replicated: true, cluster: { nodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS, busPort: busPorts.get(port)! } }),
        dir,
      ),
    );
  };
  while (ports.length < 6) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  for (const p of ports) await start(p);
  await createCluster(ports);
  const live = () => ports.filter((p) => parts.has(p));
  return {
    ports,
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    async primaries() {
      const roles = await clusterRoles(live());
      return [...roles].filter(([p, role]) => role === 'primary' && parts.has(p)).map(([p]) => p);
    },
    async kill(port) {
      const part = parts.get(port);
      if (!part) return;
      signal(part.pid, 'SIGKILL');
      await waitGone(part.pid, 5_000);
      parts.delete(port);
    },
    async restart(port) {
      for (let attempt = 0; ; attempt++) {
        try {
          await start(port);
          break;
        } catch (err) {
          if (attempt > 20) throw err;
          await sleep(100);
        }
      }
      await waitClusterOk(live());
    },
    waitOk: (timeoutMs) => waitClusterOk(live(), timeoutMs),
    async stop() {
      await Promise.all([...parts.values()].map((p) => terminate(p.pid)));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
