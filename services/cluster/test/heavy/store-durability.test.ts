import { afterAll, describe, expect, it } from 'vitest';
import { kill, ps, start } from '../../src/cluster.js';
import { waitFor } from '../../src/lib/ports.js';
import { everyNodeReady, loginMany, startCluster, type Client } from '../../../../testkit/cluster.js';

// Durability you can choose and see: with AOF (appendfsync everysec, the default) a Redis restart,
// clean (SIGTERM) or a crash (SIGKILL), loses no session written more than a second before it;
// with persistence off, a restart logs everyone out.
const clusters: Array<Awaited<ReturnType<typeof startCluster>>> = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
});

async function counters(clients: Client[]): Promise<number[]> {
  return Promise.all(clients.map(async (c) => (await c.get('/api/me')).body.requests as number));
}

async function restartRedis(dir: string, signal: 'KILL' | 'TERM', url: string) {
  await kill('redis', { dir, signal });
  await start('redis', { dir });
  // Every node ready again (its readiness PINGs Redis), then a session route without a cookie
  // answers 401 (503 while a node cannot reach Redis).
  await everyNodeReady(dir);
  await waitFor('sessions served again', async () => (await Promise.all([1, 2, 3, 4].map(() => fetch(url + '/api/me')))).every((r) => r.status === 401), 10_000);
}

describe('AOF on (the default)', () => {
  it('SIGKILL and SIGTERM restarts keep every session written more than a second before, with its counter', async () => {
    const cluster = await startCluster({ mode: 'shared', nodes: 2 });
    clusters.push(cluster);
    expect((await ps(cluster.dir)).redisPersistence).toBe('aof');
    const clients = await loginMany(cluster.url, 20);
    for (const signal of ['KILL', 'TERM'] as const) {
      const before = await counters(clients); // each call is a write (the counter)
      await new Promise((r) => setTimeout(r, 1500)); // older than the fsync window
      await restartRedis(cluster.dir, signal, cluster.url);
      const after = await Promise.all(clients.map((c) => c.get('/api/me')));
      expect(
        after.map((r) => r.status),
        signal,
      ).toEqual(Array(20).fill(200));
      expect(
        after.map((r) => r.body.requests),
        signal,
      ).toEqual(before.map((n) => n + 1));
    }
    // Writes acknowledged just before a clean stop are kept too (Redis fsyncs the AOF on SIGTERM).
    const last = await counters(clients);
    await restartRedis(cluster.dir, 'TERM', cluster.url);
    expect(await counters(clients)).toEqual(last.map((n) => n + 1));
  });
});

describe('persistence off', () => {
  it('a restart logs everyone out (401, not 503), and a new login works', async () => {
    const cluster = await startCluster({ mode: 'shared', nodes: 2, redisPersistence: 'off' });
    clusters.push(cluster);
    expect((await ps(cluster.dir)).redisPersistence).toBe('off');
    const clients = await loginMany(cluster.url, 5);
    await restartRedis(cluster.dir, 'KILL', cluster.url);
    const after = await Promise.all(clients.map((c) => c.get('/api/me')));
    expect(after.map((r) => r.status)).toEqual(Array(5).fill(401));
    expect((await clients[0]!.login('user1')).status).toBe(200);
  });
});
