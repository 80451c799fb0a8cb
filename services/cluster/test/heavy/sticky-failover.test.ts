import { afterAll, beforeAll, expect, it } from 'vitest';
import { kill } from '../../src/cluster.js';
import { Client, loginMany, servedBy, startCluster, tally } from '../../../../testkit/cluster.js';

// Sticky mode through nginx: affinity holds; killing a node loses exactly its sessions.
let cluster: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  cluster = await startCluster({ mode: 'sticky', nodes: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

it('keeps each session on one node, and a killed node takes exactly its sessions with it', async () => {
  const clients = await loginMany(cluster.url, 45);
  const home = new Map<Client, string>();
  for (const c of clients) {
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await c.get('/api/me');
      expect(r.status).toBe(200);
      seen.add(servedBy(r));
    }
    expect(seen.size).toBe(1); // affinity: every request of a session on one node
    home.set(c, [...seen][0]!);
  }
  const perNode = tally(clients, (c) => home.get(c)!);
  expect(Object.keys(perNode).length).toBeGreaterThanOrEqual(2); // the route cookie spreads clients

  const victim = Object.entries(perNode).sort((a, b) => b[1] - a[1])[0]![0];
  await kill(victim, { dir: cluster.dir, signal: 'KILL' });

  const after = await Promise.all(clients.map((c) => c.get('/api/me')));
  const onVictim = clients.map((c, i) => ({ c, r: after[i]!, lived: home.get(c) === victim }));
  const lost = onVictim.filter((x) => x.lived);
  const kept = onVictim.filter((x) => !x.lived);
  console.log(
    `sticky: ${clients.length} sessions ${JSON.stringify(perNode)}; killed ${victim}: lost ${lost.filter((x) => x.r.status === 401).length}/${lost.length}, intact ${kept.filter((x) => x.r.status === 200).length}/${kept.length}`,
  );
  expect(lost.map((x) => x.r.status).every((s) => s === 401)).toBe(true);
  expect(kept.map((x) => x.r.status).every((s) => s === 200)).toBe(true);
  expect(kept.every((x) => x.r.body.requests === 6 && home.get(x.c) === servedBy(x.r))).toBe(true);

  // A lost session can log in again, and lands on a live node.
  const again = await lost[0]!.c.login(lost[0]!.r.body?.user ?? `user${clients.indexOf(lost[0]!.c) + 1}`);
  expect(again.status).toBe(200);
  const me = await lost[0]!.c.get('/api/me');
  expect(me.status).toBe(200);
  expect(servedBy(me)).not.toBe(victim);
});
