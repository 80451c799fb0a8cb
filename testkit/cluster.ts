import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { down, readState, removeRun, up, type ClusterState, type UpOptions } from '../services/cluster/src/cluster.js';
import { freePort, waitFor } from '../services/cluster/src/lib/ports.js';
import { Client } from './client.js';

export { Client };

/** A local cluster in a temp folder on a free port, with a small demo directory so it starts fast. */
export async function startCluster(opts: UpOptions = {}): Promise<ClusterState & { stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-cluster-'));
  const { state } = await up({ dir, port: await freePort(), monitoring: false, demoUsers: 100, nodeEnv: { LOG_LEVEL: 'warn' }, ...opts });
  return {
    ...state,
    async stop() {
      await down(dir);
      removeRun(dir);
    },
  };
}

/**
 * Waits until every node of the cluster in `dir` answers /readyz 200 (its store answers). After a
 * store outage or failover each node reconnects on its own schedule (retry delays up to 1 s apart)
 * and nginx may send the next request to any of them: one node answering is not all of them.
 */
export async function everyNodeReady(dir: string, timeoutMs = 15_000): Promise<void> {
  const nodes = readState(dir)!.parts.filter((p) => p.kind === 'app');
  const ready = (port: number) =>
    fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
  await waitFor('every node ready', async () => (await Promise.all(nodes.map((n) => ready(n.ports!.metrics!)))).every(Boolean), timeoutMs);
}

/**
 * The promotions each Sentinel of the cluster in `dir` logged (`+switch-master <name> <old ip> <old
 * port> <new ip> <new port>`), as the new primaries' addresses, by Sentinel part name.
 */
export function sentinelSwitches(dir: string): Record<string, string[]> {
  const sentinels = readState(dir)!.parts.filter((p) => p.kind === 'sentinel');
  return Object.fromEntries(
    sentinels.map((p) => {
      const log = fs.readFileSync(path.join(dir, 'logs', `${p.name}.log`), 'utf8');
      return [p.name, [...log.matchAll(/\+switch-master \S+ \S+ \d+ (\S+) (\d+)/g)].map((m) => `${m[1]}:${m[2]}`)];
    }),
  );
}

/** Logs in `count` clients as user1..userN through the load balancer. */
export async function loginMany(url: string, count: number): Promise<Client[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const c = new Client(url);
      const r = await c.login(`user${i + 1}`);
      if (r.status !== 200) throw new Error(`login user${i + 1}: ${r.status} ${JSON.stringify(r.body)}`);
      return c;
    }),
  );
}

export const servedBy = (r: { headers: Headers }) => r.headers.get('x-served-by') ?? '(none)';

/** Counts by key. */
export function tally<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}
