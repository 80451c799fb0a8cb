import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSessionStore } from '../../../src/session/stores/local-store.js';
import type { LocalUserSessionIndex, RedisUserSessionIndex } from '../../../src/session/user-index/user-index.js';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// GET /api/sessions and DELETE /api/sessions ("log out everywhere"), and the index behind them.
let redis: TestRedis;
let a: TestNode, b: TestNode, sticky: TestNode;
let aux: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  [a, b, sticky] = await Promise.all([
    startNode({ REDIS_URL: redis.url, NODE_ID: 'a', SESSIONS_PER_USER_MAX: '3' }),
    startNode({ REDIS_URL: redis.url, NODE_ID: 'b', SESSIONS_PER_USER_MAX: '3' }),
    startNode({ NODE_ID: 's', SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory', SESSIONS_PER_USER_MAX: '3' }),
  ]);
  aux = new Redis(redis.url.replace(/\/0$/, '/1'));
});
afterAll(async () => {
  await aux?.quit();
  await Promise.all([a, b, sticky].map((n) => n?.close()));
  await redis?.stop();
});

describe('shared mode', () => {
  it("lists the caller's sessions across nodes, marking the current one, without exposing full ids", async () => {
    const onA = new Client(a.url);
    const onB = new Client(b.url);
    await onA.login('user1');
    await onB.login('user1');
    await new Client(a.url).login('user2'); // someone else's session is not listed
    const r = await onA.get('/api/sessions');
    expect(r.status).toBe(200);
    expect(r.body.sessions).toHaveLength(2);
    expect(r.body.sessions.map((s: { node: string }) => s.node).sort()).toEqual(['a', 'b']);
    expect(r.body.sessions.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    for (const s of r.body.sessions) {
      expect(s.id).toHaveLength(8);
      expect(s.lastSeenAt).toBeGreaterThanOrEqual(s.createdAt - 1000);
    }
  });

  it('DELETE /api/sessions ends every session of the user on every node', async () => {
    const devices = [new Client(a.url), new Client(b.url), new Client(a.url)];
    for (const d of devices) await d.login('user3');
    const other = new Client(b.url);
    await other.login('user4');
    const r = await devices[0]!.del('/api/sessions');
    expect(r.status).toBe(200);
    expect(r.body.ended).toBe(3);
    for (const d of devices) {
      expect((await d.get('/api/me')).status).toBe(401);
      expect((await d.on(d.base === a.url ? b.url : a.url).get('/api/me')).status).toBe(401);
    }
    expect((await other.get('/api/me')).status).toBe(200);
    expect(await aux.exists('idx:user3')).toBe(0);
  });

  it('the per-user index is bounded: the oldest session is ended beyond the cap, and the index expires', async () => {
    const devices = Array.from({ length: 5 }, () => new Client(a.url));
    for (const d of devices) await d.login('user5');
    expect(await aux.zcard('idx:user5')).toBe(3);
    const ttl = await aux.ttl('idx:user5');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(a.config.session.absoluteTimeoutS);
    const statuses = await Promise.all(devices.map(async (d) => (await d.get('/api/me')).status));
    expect(statuses).toEqual([401, 401, 200, 200, 200]);
  });

  it('logout removes the session from the index', async () => {
    const d = new Client(a.url);
    await d.login('user6');
    expect(await aux.zcard('idx:user6')).toBe(1);
    await d.post('/api/logout');
    expect(await aux.zcard('idx:user6')).toBe(0);
  });
});

describe('index hygiene (shared)', () => {
  const sessions = () => new Redis(redis.url);
  const evicted = async (n: TestNode) =>
    Number(/reason="evicted"[^}]*} (\d+)/.exec(await n.metrics.registry.getSingleMetricAsString('session_cluster_sessions_destroyed_total'))?.[1] ?? 0);

  it('a login prunes members whose session is gone, so dead entries never count towards the cap or as evictions', async () => {
    const db = sessions();
    const devices = Array.from({ length: 3 }, () => new Client(a.url));
    for (const d of devices) await d.login('user10');
    // Two of them expire (what an idle timeout leaves behind: an index member with no session).
    for (const d of devices.slice(0, 2)) await db.del(`s:${d.sessionId()}`);
    const before = await evicted(a);
    const fresh = [new Client(b.url), new Client(a.url)];
    for (const d of fresh) await d.login('user10');
    expect(await aux.zcard('idx:user10')).toBe(3); // the live one and the two new ones; the dead two are gone
    expect(await evicted(a)).toBe(before); // nothing live was pushed out
    expect((await devices[2]!.get('/api/me')).status).toBe(200);
    // One more login is over the cap: now the oldest *live* session is ended, and counted once.
    const beforeB = await evicted(b);
    await new Client(b.url).login('user10');
    expect((await evicted(a)) + (await evicted(b)) - before - beforeB).toBe(1);
    expect((await devices[2]!.get('/api/me')).status).toBe(401);
    db.disconnect();
  });

  it('a login checks a full index of live sessions with one EXISTS, and each member only when one is gone', async () => {
    const db = sessions();
    const exists = async () => Number(/cmdstat_exists:calls=(\d+)/.exec(await db.info('commandstats'))?.[1] ?? 0);
    const devices = Array.from({ length: 3 }, () => new Client(a.url));
    for (const d of devices) await d.login('user15');
    let before = await exists();
    await new Client(b.url).login('user15'); // 3 live members besides the new one: one EXISTS over them
    expect((await exists()) - before).toBe(1);
    await db.del(`s:${devices[2]!.sessionId()}`); // one of the 3 others gone (the login above ended the oldest)
    before = await exists();
    await new Client(a.url).login('user15'); // the count falls short: then each of the 3 other members on its own
    expect((await exists()) - before).toBe(1 + 3);
    db.disconnect();
  });

  it('"log out everywhere" counts only sessions that still existed', async () => {
    const db = sessions();
    const devices = [new Client(a.url), new Client(b.url)];
    for (const d of devices) await d.login('user11');
    await db.del(`s:${devices[1]!.sessionId()}`);
    expect((await devices[0]!.del('/api/sessions')).body).toEqual({ ended: 1, scope: 'cluster' });
    db.disconnect();
  });
});

describe('sticky mode', () => {
  it('the index forgets a session the moment the store drops it (logout, expiry, sweep): no per-user state outlives its sessions', async () => {
    const node = await startNode({ NODE_ID: 'hyg', SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory', SESSION_IDLE_TIMEOUT: '1', SESSION_ABSOLUTE_TIMEOUT: '60' });
    try {
      const clients = Array.from({ length: 6 }, () => new Client(node.url));
      await Promise.all(clients.map((c, i) => c.login(`user${12 + (i % 3)}`)));
      await clients[0]!.post('/api/logout');
      const stats = () =>
        fetch(node.internalUrl + '/metrics')
          .then((r) => r.text())
          .then((t) => Number(/session_cluster_sessions_active\{[^}]*} (\d+)/.exec(t)?.[1]));
      expect(await stats()).toBe(5);
      await new Promise((r) => setTimeout(r, 1300)); // past the idle timeout
      const index = node.handle.sessions.index as LocalUserSessionIndex;
      expect(index.stats).toEqual({ users: 3, sessions: 5 }); // logout already took its entry out
      (node.handle.sessions.store as LocalSessionStore).sweep();
      expect(await stats()).toBe(0);
      expect(index.stats).toEqual({ users: 0, sessions: 0 });
    } finally {
      await node.close();
    }
  });

  it('the per-user cap holds on the node: beyond it the oldest sessions are ended, and simultaneous logins leave exactly the cap', async () => {
    const cap = sticky.config.session.maxPerUser;
    const devices = Array.from({ length: cap + 2 }, () => new Client(sticky.url));
    for (const d of devices) expect((await d.login('user8')).status).toBe(200);
    const statuses = await Promise.all(devices.map(async (d) => (await d.get('/api/me')).status));
    expect(statuses).toEqual([401, 401, ...Array(cap).fill(200)]);
    expect((await devices.at(-1)!.get('/api/sessions')).body.sessions).toHaveLength(cap);
    // The same bound when the logins arrive together: one more than the cap, fewer than the
    // username's login budget (attempts in flight hold it), so every one of them logs in.
    const burst = Array.from({ length: cap + 1 }, () => new Client(sticky.url));
    for (const r of await Promise.all(burst.map((d) => d.login('user9')))) expect(r.status).toBe(200);
    const alive = await Promise.all(burst.map(async (d) => (await d.get('/api/me')).status));
    expect(alive.filter((s) => s === 200)).toHaveLength(cap);
    expect(alive.filter((s) => s === 401)).toHaveLength(1);
    const survivor = burst[alive.indexOf(200)]!;
    expect((await survivor.get('/api/sessions')).body.sessions).toHaveLength(cap);
  });

  it('a login over a logged-in session (a new id) leaves one index entry: the replaced session is forgotten at once', async () => {
    const index = sticky.handle.sessions.index as LocalUserSessionIndex;
    const before = index.stats.sessions;
    const c = new Client(sticky.url);
    await c.login('user19');
    const first = c.sessionId();
    await c.login('user19'); // the same browser again: the old session is destroyed and replaced
    expect(c.sessionId()).not.toBe(first);
    expect(index.stats.sessions).toBe(before + 1);
    expect((await c.get('/api/sessions')).body.sessions).toHaveLength(1);
    await c.post('/api/logout');
    expect(index.stats.sessions).toBe(before);
  });

  it("lists and ends this node's sessions of the user", async () => {
    const devices = [new Client(sticky.url), new Client(sticky.url)];
    for (const d of devices) await d.login('user7');
    const list = await devices[1]!.get('/api/sessions');
    expect(list.body.sessions).toHaveLength(2);
    expect((await devices[1]!.del('/api/sessions')).body.ended).toBe(2);
    for (const d of devices) expect((await d.get('/api/me')).status).toBe(401);
  });
});

describe('index janitor (shared)', () => {
  it('removes the members of users who never come back within a sweep of their sessions expiring, and then the index itself, without SCAN', async () => {
    const node = await startNode({ REDIS_URL: redis.url, NODE_ID: 'janitor', SESSION_IDLE_TIMEOUT: '1', SESSION_ABSOLUTE_TIMEOUT: '3600' });
    try {
      const index = node.handle.sessions.index as RedisUserSessionIndex;
      await Promise.all(['user16', 'user16', 'user17'].map((u) => new Client(node.url).login(u)));
      const keeper = new Client(node.url);
      await keeper.login('user18');
      expect(await aux.zcard('idx:user16')).toBe(2);
      expect(await aux.ttl('idx:user16')).toBeGreaterThan(3000); // the key itself would live an absolute timeout
      // Nobody comes back; keeper keeps reading (its session stays alive).
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 400));
        expect((await keeper.get('/api/cart')).status).toBe(200);
      }
      const stats = await index.sweep();
      expect(stats.pruned).toBeGreaterThanOrEqual(3);
      expect(await aux.exists('idx:user16', 'idx:user17')).toBe(0);
      expect(await aux.zcard('idx:user18')).toBe(1); // a live session stays listed
      // Nothing on the way scanned the keyspace.
      expect(await aux.info('commandstats')).not.toMatch(/cmdstat_(scan|keys):/);
    } finally {
      await node.close();
    }
  });
});
