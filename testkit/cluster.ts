import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
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

/**
 * Waits until the Sentinel topology of the cluster in `dir` has settled: every Sentinel names the
 * same primary and has no failover in progress, that primary is the one running server that says
 * it is one, and every other running server is its replica with its link up, as every Sentinel
 * sees it. A failover is not over when writes work again: its leader still reconfigures the other
 * replicas, and a primary killed before that (a second fault within the first one's seconds) can
 * leave the Sentinels disagreeing for good (one of them still finishing the first failover names
 * the dead server). Tests that fault the store again wait for this first.
 */
export async function sentinelsSettled(dir: string, timeoutMs = 30_000): Promise<{ primary: string; replicas: string[] }> {
  const parts = readState(dir)!.parts;
  const ask = async (port: number, ...command: [string, ...string[]]): Promise<unknown> => {
    const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, commandTimeout: 1000 });
    try {
      await r.connect();
      return await r.call(...command);
    } catch {
      return undefined;
    } finally {
      r.disconnect();
    }
  };
  const fields = (reply: unknown): Record<string, string> => {
    const list = Array.isArray(reply) ? (reply as string[]) : [];
    return Object.fromEntries(list.flatMap((v, i) => (i % 2 === 0 ? [[v, list[i + 1]!]] : [])));
  };
  let seen = '';
  let settled: { primary: string; replicas: string[] } | undefined;
  await waitFor(
    'the Sentinels to agree on one primary, every other Redis its replica, no failover in progress',
    async () => {
      const servers = await Promise.all(
        parts.filter((p) => p.kind === 'redis').map(async (p) => ({ address: `127.0.0.1:${p.port}`, info: String((await ask(p.port, 'info', 'replication')) ?? '') })),
      );
      const running = servers.filter((s) => s.info !== '');
      const primaries = running.filter((s) => /role:master/.test(s.info));
      const views = await Promise.all(
        parts
          .filter((p) => p.kind === 'sentinel')
          .map(async (p) => {
            const master = fields(await ask(p.port, 'sentinel', 'master', 'sessions'));
            const replicas = ((await ask(p.port, 'sentinel', 'replicas', 'sessions')) as unknown[] | undefined)?.map(fields) ?? [];
            return {
              primary: `${master.ip}:${master.port}`,
              flags: master.flags,
              replicas: replicas
                .filter((r) => r.flags === 'slave' && r['master-link-status'] === 'ok')
                .map((r) => `${r.ip}:${r.port}`)
                .sort(),
            };
          }),
      );
      seen = JSON.stringify({ primaries: primaries.map((s) => s.address), views });
      if (primaries.length !== 1) return false;
      const primary = primaries[0]!;
      const replicas = running
        .filter((s) => s !== primary)
        .map((s) => s.address)
        .sort();
      const online = [...primary.info.matchAll(/slave\d+:ip=([^,]+),port=(\d+),state=online/g)].map((m) => `${m[1]}:${m[2]}`).sort();
      const ok =
        JSON.stringify(online) === JSON.stringify(replicas) &&
        views.every((v) => v.primary === primary.address && v.flags === 'master' && JSON.stringify(v.replicas) === JSON.stringify(replicas));
      if (ok) settled = { primary: primary.address, replicas };
      return ok;
    },
    timeoutMs,
    200,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last seen: ${seen}`);
  });
  return settled!;
}

/**
 * Elections the Sentinels of the cluster in `dir` held without a majority (`-failover-abort-not-elected`):
 * each delays the failover by Sentinel's retry period (twice the failover timeout), by design.
 */
export function sentinelElectionsLost(dir: string): number {
  return readState(dir)!
    .parts.filter((p) => p.kind === 'sentinel')
    .map((p) => fs.readFileSync(path.join(dir, 'logs', `${p.name}.log`), 'utf8').split('-failover-abort-not-elected').length - 1)
    .reduce((a, b) => a + b, 0);
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
