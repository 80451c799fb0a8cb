import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { startTestRedisCluster, type TestRedisCluster } from '../../../../testkit/redis-cluster.js';
import { userTag } from '../../src/session/keys.js';
import type { RedisUserSessionIndex } from '../../src/session/user-index/user-index.js';

// Shared mode on a real Redis Cluster (3 primaries + 3 replicas, redis-server processes): the key
// layout of session/keys.ts keeps every script on one hash slot (Redis answers CROSSSLOT
// otherwise), spreads sessions over every primary, and keeps the limiter's guarantees.
let cluster: TestRedisCluster;
let a: TestNode, b: TestNode;
const clients: Redis[] = [];
beforeAll(async () => {
  cluster = await startTestRedisCluster();
  const env = { REDIS_CLUSTER_NODES: cluster.nodes, LOGIN_MAX_FAILURES: '3', LOGIN_MAX_FAILURES_PER_CLIENT: '1000', LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000' };
  [a, b] = await Promise.all([startNode({ ...env, NODE_ID: 'a' }), startNode({ ...env, NODE_ID: 'b' })]);
}, 120_000);
afterAll(async () => {
  await Promise.all([a, b].map((n) => n?.close()));
  for (const c of clients) c.disconnect();
  routed?.disconnect();
  await cluster?.stop();
});

/** A plain connection to one server of the cluster (to count what it holds). */
function server(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1' });
  clients.push(r);
  return r;
}

async function keysOn(port: number, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await server(port).scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

let routed: Cluster | undefined;
/** A Cluster client of the test's own (keys routed to their slot's primary). */
function cc(): Cluster {
  routed ??= new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }]);
  return routed;
}

describe('key layout', () => {
  it("a login's session id carries the user's tag: session and index share a slot, and ~60 logins spread over all 3 primaries", async () => {
    const logins: Client[] = [];
    for (let i = 0; i < 60; i++) {
      const c = new Client((i % 2 ? a : b).url);
      expect((await c.login(`user${1 + (i % 20)}`)).status).toBe(200);
      logins.push(c);
    }
    const sid = logins[0]!.sessionId();
    expect(sid.startsWith(userTag('slots', 'user1'))).toBe(true);
    const any = server(cluster.ports[0]!);
    expect(await any.cluster('KEYSLOT', `s:${sid}`)).toBe(await any.cluster('KEYSLOT', `idx:${userTag('slots', 'user1')}user1`));

    const primaries = await cluster.primaries();
    expect(primaries).toHaveLength(3);
    const perPrimary = await Promise.all(primaries.map(async (p) => (await keysOn(p, 's:*')).length));
    console.log(`sessions per primary after 60 logins: ${perPrimary.join(', ')}`);
    expect(perPrimary.reduce((x, y) => x + y, 0)).toBe(60);
    for (const n of perPrimary) expect(n).toBeGreaterThan(0);
  });

  it('anonymous requests store nothing, and a forged tagged id is not adopted', async () => {
    const c = new Client(a.url);
    expect((await c.get('/api/me')).status).toBe(401);
    c.cookies.set('sid', encodeURIComponent(`s:${userTag('slots', 'user3')}forged.bad`));
    expect((await c.get('/api/me')).status).toBe(401);
    expect((await c.login('user3')).status).toBe(200);
    expect(c.sessionId()).not.toContain('forged');
  });
});

describe('session lifecycle across two nodes', () => {
  it('login, read, write and logout work against the cluster, on either node', async () => {
    const c = new Client(a.url);
    expect((await c.login('user4')).status).toBe(200);
    const onB = c.on(b.url);
    expect((await onB.get('/api/me')).body.user).toBe('user4');
    expect((await onB.post('/api/cart/items', { sku: 'SKU-1', qty: 2 })).status).toBe(201);
    expect((await c.get('/api/cart')).body.items).toEqual([{ sku: 'SKU-1', qty: 2 }]);
    const listed = await c.get('/api/sessions');
    expect(listed.status).toBe(200);
    expect(listed.body.sessions.some((s: { current: boolean }) => s.current)).toBe(true);
    expect((await c.post('/api/logout')).status).toBe(200);
    expect((await onB.get('/api/me')).status).toBe(401);
  });

  it('"log out everywhere" ends every session of the user while other requests of those sessions race it', async () => {
    const devices: Client[] = [];
    for (let i = 0; i < 5; i++) {
      const c = new Client((i % 2 ? a : b).url);
      expect((await c.login('user5')).status).toBe(200);
      devices.push(c);
    }
    const reads = devices.slice(1).flatMap((d) => Array.from({ length: 10 }, () => d.get('/api/me')));
    const [ended, ...raced] = await Promise.all([devices[0]!.del('/api/sessions'), ...reads]);
    expect(ended.status).toBe(200);
    expect(ended.body.ended).toBeGreaterThanOrEqual(5);
    for (const r of raced) expect([200, 401]).toContain(r.status);
    for (const d of devices) expect((await d.get('/api/me')).status).toBe(401);
    const tag = userTag('slots', 'user5');
    // The index is gone from whichever primary owns its slot: every primary is looked at.
    for (const p of await cluster.primaries()) expect(await keysOn(p, `idx:${tag}user5`), `primary ${p}`).toEqual([]);
    expect(await cc().exists(`idx:${tag}user5`)).toBe(0);
  });

  it('the index janitor sweeps every shard: a user whose sessions are gone loses the index and the schedule, without CROSSSLOT', async () => {
    const c = new Client(a.url);
    expect((await c.login('user11')).status).toBe(200);
    const tag = userTag('slots', 'user11');
    // Every session of the user disappears (as if idle-expired; the first test logged user11 in too)
    // and the user's check falls due now.
    const members = await cc().zrange(`idx:${tag}user11`, '0', '-1');
    expect(members).toContain(c.sessionId());
    for (const m of members) await cc().del(`s:${m}`);
    expect(await cc().zscore(`idx-due:${tag}`, 'user11')).not.toBeNull();
    await cc().zadd(`idx-due:${tag}`, 0, 'user11');
    const index = a.handle.sessions.index as RedisUserSessionIndex;
    const swept = await index.sweep();
    expect(swept.checked).toBeGreaterThanOrEqual(1);
    expect(swept.pruned).toBeGreaterThanOrEqual(members.length);
    expect(swept.deleted).toBeGreaterThanOrEqual(1);
    expect(await cc().exists(`idx:${tag}user11`)).toBe(0);
    expect(await cc().zscore(`idx-due:${tag}`, 'user11')).toBeNull();
  });
});

describe('login limiter on the cluster', () => {
  it('of 40 simultaneous guesses at most the budget (3) are hashed, across two nodes', async () => {
    const guesses = Array.from({ length: 40 }, (_, i) => `wrong-${i}`);
    const replies = await Promise.all(guesses.map((p, i) => new Client((i % 2 ? a : b).url).post('/api/login', { username: 'user6', password: p })));
    const statuses = replies.map((r) => r.status);
    const hashed = statuses.filter((s) => s === 401 || s === 200);
    expect(hashed.length, statuses.join(',')).toBeLessThanOrEqual(3);
    expect(statuses.every((s) => s === 401 || s === 429 || s === 503)).toBe(true);
    expect((await new Client(a.url).post('/api/login', { username: 'user6', password: 'pass6' })).status).toBe(429);
  });

  it("a refusal by the address's budget hands back the user's reservation (two slots, reserved in order)", async () => {
    const n = await startNode({
      REDIS_CLUSTER_NODES: cluster.nodes,
      NODE_ID: 'c',
      LOGIN_MAX_FAILURES: '3',
      LOGIN_MAX_FAILURES_PER_CLIENT: '2',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
    });
    try {
      await cc().del('rl:{c:127.0.0.1}'); // earlier tests counted failures from this address
      // Spend this address's budget (2) on two other accounts...
      for (const u of ['user7', 'user8']) expect((await new Client(n.url).post('/api/login', { username: u, password: 'wrong' })).status).toBe(401);
      // ...then an attempt on user9 is refused by it, and user9's own counters are left as they were.
      expect((await new Client(n.url).post('/api/login', { username: 'user9', password: 'pass9' })).status).toBe(429);
      const tag = userTag('slots', 'user9');
      const counts = await Promise.all((await cluster.primaries()).map(async (p) => Promise.all((await keysOn(p, `rl:${tag}*user9*`)).map((k) => server(p).get(k)))));
      for (const v of counts.flat()) expect(Number(v)).toBe(0);
      // The client budget's key is tagged by the address, in its own slot.
      const any = server(cluster.ports[0]!);
      expect(await any.cluster('KEYSLOT', 'rl:{c:127.0.0.1}')).not.toBe(await any.cluster('KEYSLOT', `rl:${tag}u:user9`));
    } finally {
      await n.close();
    }
  });

  it("a successful login clears the user's counters (index script) and hands back the address's (second slot)", async () => {
    const n = await startNode({
      REDIS_CLUSTER_NODES: cluster.nodes,
      NODE_ID: 'd',
      LOGIN_MAX_FAILURES: '3',
      LOGIN_MAX_FAILURES_PER_CLIENT: '1000',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
    });
    try {
      const clientKey = 'rl:{c:127.0.0.1}';
      const rc = cc();
      const before = Number((await rc.get(clientKey)) ?? 0);
      expect((await new Client(n.url).post('/api/login', { username: 'user10', password: 'wrong' })).status).toBe(401);
      expect((await new Client(n.url).login('user10')).status).toBe(200);
      // One failure stays counted on the address; the success's reservation was handed back.
      expect(Number(await rc.get(clientKey))).toBe(before + 1);
      const tag = userTag('slots', 'user10');
      for (const p of await cluster.primaries()) expect(await keysOn(p, `rl:${tag}*user10*`)).toEqual([]);
    } finally {
      await n.close();
    }
  });
});
