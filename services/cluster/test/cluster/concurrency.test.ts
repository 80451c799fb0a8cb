import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, servedBy, startCluster } from '../../../../testkit/cluster.js';

// The no-lost-write and destroyed-stays-destroyed guarantees through nginx, with all three
// nodes serving the same session at once (least_conn spreads simultaneous requests), repeated.
let cluster: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  // The command timeout is raised from 500 ms: this tests the merge, not the fail-fast path, and
  // 100 simultaneous requests on a loaded 2-core machine can stall Redis longer than 500 ms.
  // LOGIN_MAX_FAILURES (5 by default) is also how many logins of one user from one address may be
  // in flight at once (the limiter reserves an attempt before the hash): 50, for 30 logins at once.
  cluster = await startCluster({ mode: 'shared', nodes: 3, nodeEnv: { LOG_LEVEL: 'warn', REDIS_COMMAND_TIMEOUT_MS: '3000', LOGIN_MAX_FAILURES: '50' } });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('one session, many requests at once, three nodes', () => {
  it('40 different items -> 40 lines; 50 of one item -> qty 50; 100 GET /api/me -> +100 exactly; three rounds', async () => {
    for (let round = 0; round < 3; round++) {
      const c = new Client(cluster.url);
      expect((await c.login(`user${round + 1}`)).status).toBe(200);
      const lines = await Promise.all(Array.from({ length: 40 }, (_, i) => c.post('/api/cart/items', { sku: `sku-${i}`, qty: 1 })));
      expect(lines.map((r) => r.status)).toEqual(Array(40).fill(201));
      expect(new Set(lines.map(servedBy)).size).toBe(3);
      const same = await Promise.all(Array.from({ length: 50 }, () => c.post('/api/cart/items', { sku: 'same', qty: 1 })));
      expect(same.map((r) => r.status)).toEqual(Array(50).fill(201));
      const cart = (await c.get('/api/cart')).body;
      expect(cart.items).toHaveLength(41);
      expect(cart.items.find((l: { sku: string }) => l.sku === 'same').qty).toBe(50);

      const before = (await c.get('/api/me')).body.requests;
      const me = await Promise.all(Array.from({ length: 100 }, () => c.get('/api/me')));
      expect(me.map((r) => `${r.status}${r.body?.error ? ` ${r.body.error.code}` : ''}`)).toEqual(Array(100).fill('200'));
      expect(new Set(me.map(servedBy)).size).toBe(3);
      expect(new Set(me.map((r) => r.body.requests)).size).toBe(100);
      expect((await c.get('/api/me')).body.requests).toBe(before + 101);
    }
  });

  it('30 logins of one user at once: the per-user cap (20) holds, the oldest are ended, and the index lists exactly the live ones; five rounds', async () => {
    for (let round = 0; round < 5; round++) {
      const user = `user${30 + round}`;
      const devices = Array.from({ length: 30 }, () => new Client(cluster.url));
      const logins = await Promise.all(devices.map((d) => d.login(user)));
      // A login may be shed when the nodes' hash queues are full (503); none may fail otherwise.
      expect(
        logins.every((r) => r.status === 200 || r.status === 503),
        JSON.stringify(logins.map((r) => r.status)),
      ).toBe(true);
      const ok = devices.filter((_, i) => logins[i]!.status === 200);
      expect(ok.length, 'logins that succeeded').toBeGreaterThan(20);
      const me = await Promise.all(ok.map((d) => d.get('/api/me')));
      expect(me.every((r) => r.status === 200 || r.status === 401)).toBe(true);
      const live = ok.filter((_, i) => me[i]!.status === 200);
      expect(live.length, `${user}: live sessions of ${ok.length} logins`).toBe(20);
      const listed = await live[0]!.get('/api/sessions');
      expect(listed.body.sessions, `${user}: the index`).toHaveLength(20);
    }
  });

  it('logout or "log out everywhere" racing 16 readers of a stolen cookie: the session stays destroyed on every node, ten rounds', async () => {
    const sessions = new Redis(cluster.parts.find((p) => p.name === 'redis')!.url + '/0');
    try {
      for (let round = 0; round < 10; round++) {
        const owner = new Client(cluster.url);
        expect((await owner.login('user9')).status).toBe(200);
        const thief = owner.on(cluster.url);
        const sid = thief.sessionId();
        let stop = false;
        const readers = Array.from({ length: 16 }, async () => {
          const statuses: number[] = [];
          while (!stop) statuses.push((await thief.get('/api/me')).status);
          return statuses;
        });
        await new Promise((r) => setTimeout(r, 30));
        const out = round % 2 ? await owner.del('/api/sessions') : await owner.post('/api/logout');
        expect(out.status).toBe(200);
        await new Promise((r) => setTimeout(r, 40));
        stop = true;
        const statuses = (await Promise.all(readers)).flat();
        expect(statuses.every((s) => s === 200 || s === 401)).toBe(true);
        expect(statuses.filter((s) => s === 401).length).toBeGreaterThan(0);
        expect(await sessions.exists(`s:${sid}`)).toBe(0);
        const after = await Promise.all(Array.from({ length: 9 }, () => thief.get('/api/me')));
        expect(after.map((r) => r.status)).toEqual(Array(9).fill(401));
      }
    } finally {
      sessions.disconnect();
    }
  });
});
