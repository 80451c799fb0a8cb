import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';

// Two nodes, one Redis (shared) versus two nodes with their own memory (sticky).
let redis: TestRedis;
let a: TestNode, b: TestNode, sa: TestNode, sb: TestNode;

beforeAll(async () => {
  redis = await startTestRedis();
  [a, b, sa, sb] = await Promise.all([
    startNode({ REDIS_URL: redis.url, NODE_ID: 'shared-a' }),
    startNode({ REDIS_URL: redis.url, NODE_ID: 'shared-b' }),
    startNode({ SESSION_MODE: 'sticky', NODE_ID: 'sticky-a', LOGIN_LIMITER: 'memory' }),
    startNode({ SESSION_MODE: 'sticky', NODE_ID: 'sticky-b', LOGIN_LIMITER: 'memory' }),
  ]);
});
afterAll(async () => {
  await Promise.all([a, b, sa, sb].map((n) => n?.close()));
  await redis?.stop();
});

describe('shared mode', () => {
  it('a session created on A is served by B, and the counter continues', async () => {
    const onA = new Client(a.url);
    await onA.login('user1');
    expect((await onA.get('/api/me')).body.requests).toBe(1);
    const onB = onA.on(b.url);
    const r = await onB.get('/api/me');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: 'user1', node: 'shared-b', createdOn: 'shared-a', requests: 2 });
    expect((await onA.get('/api/me')).body.requests).toBe(3);
  });

  it('a cart written on B is read on A', async () => {
    const onA = new Client(a.url);
    await onA.login('user2');
    await onA.on(b.url).post('/api/cart/items', { sku: 'sku-1', qty: 4 });
    expect((await onA.get('/api/cart')).body.count).toBe(4);
  });

  it('logout on A: replaying the old cookie gets 401 on both nodes', async () => {
    const c = new Client(a.url);
    await c.login('user3');
    const replayA = c.on(a.url);
    const replayB = c.on(b.url);
    expect((await replayB.get('/api/me')).status).toBe(200);
    expect((await c.post('/api/logout')).status).toBe(200);
    expect((await replayA.get('/api/me')).status).toBe(401);
    expect((await replayB.get('/api/me')).status).toBe(401);
  });
});

describe('sticky mode', () => {
  it('a session lives only on the node that created it', async () => {
    const c = new Client(sa.url);
    await c.login('user4');
    expect((await c.get('/api/me')).status).toBe(200);
    const r = await c.on(sb.url).get('/api/me');
    expect(r.status).toBe(401);
    expect((await c.get('/api/me')).body.requests).toBe(2);
  });

  it('logout then replay: 401 on both nodes', async () => {
    const c = new Client(sa.url);
    await c.login('user5');
    const replay = c.on(sa.url);
    await c.post('/api/logout');
    expect((await replay.get('/api/me')).status).toBe(401);
    expect((await replay.on(sb.url).get('/api/me')).status).toBe(401);
  });
});

describe('garbage and forged cookies', () => {
  const cookies = ['sid=garbage', 'sid=s%3Aabc.def', 'sid=s%3A' + 'A'.repeat(32) + '.' + 'B'.repeat(43), 'sid=%E0%A4%A', 'sid=' + 'x'.repeat(4000), 'sid=s:; sid=s:other'];
  for (const cookie of cookies) {
    it(`${cookie.slice(0, 40)} → 401, never 500`, async () => {
      for (const n of [a, sa]) {
        const r = await fetch(n.url + '/api/me', { headers: { cookie } });
        expect(r.status).toBe(401);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
      }
    });
  }

  it('a valid id signed with a secret the node does not know is refused', async () => {
    const c = new Client(a.url);
    await c.login('user6');
    const [id] = decodeURIComponent(c.cookies.get('sid')!).slice(2).split('.');
    const { sign } = await import('cookie-signature');
    const forged = 's:' + sign(id!, 'not-the-secret-but-long-enough-to-pass-32');
    const r = await fetch(a.url + '/api/me', { headers: { cookie: `sid=${encodeURIComponent(forged)}` } });
    expect(r.status).toBe(401);
  });
});
