import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// Failed logins are limited per username+client and per client, across all nodes (Redis).
let redis: TestRedis;
let a: TestNode, b: TestNode, s1: TestNode, s2: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  const env = { LOGIN_MAX_FAILURES: '3', LOGIN_MAX_FAILURES_PER_CLIENT: '8' };
  // The sticky nodes count in Redis too (LOGIN_LIMITER defaults to redis), in databases of their own.
  const stickyRedis = redis.url.replace(/\/0$/, '/4');
  [a, b, s1, s2] = await Promise.all([
    startNode({ ...env, REDIS_URL: redis.url, NODE_ID: 'a' }),
    startNode({ ...env, REDIS_URL: redis.url, NODE_ID: 'b' }),
    startNode({ ...env, SESSION_MODE: 'sticky', REDIS_URL: stickyRedis, NODE_ID: 's1' }),
    startNode({ ...env, SESSION_MODE: 'sticky', REDIS_URL: stickyRedis, NODE_ID: 's2' }),
  ]);
});
afterAll(async () => {
  await Promise.all([a, b, s1, s2].map((n) => n?.close()));
  await redis?.stop();
});

const attempt = (n: TestNode, username: string, password: string) => new Client(n.url).post('/api/login', { username, password });

describe('shared mode', () => {
  it('after 3 failures for one username, even the right password gets 429 + Retry-After, on every node', async () => {
    for (let i = 0; i < 3; i++) expect((await attempt(i % 2 ? b : a, 'user1', 'wrong')).status).toBe(401);
    for (const n of [a, b]) {
      const r = await attempt(n, 'user1', 'pass1');
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('RATE_LIMITED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('a success clears the username counter', async () => {
    for (let i = 0; i < 2; i++) await attempt(a, 'user2', 'wrong');
    expect((await attempt(b, 'user2', 'pass2')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await attempt(a, 'user2', 'wrong')).status).toBe(401);
    expect((await attempt(a, 'user2', 'pass2')).status).toBe(200);
  });

  it('spraying many usernames from one client hits the per-client limit', async () => {
    const statuses: number[] = [];
    for (let i = 10; i < 18; i++) statuses.push((await attempt(i % 2 ? a : b, `user${i}`, 'wrong')).status);
    // 8 failures per client in all, counting the failures of the tests above (7): every username
    // is new, so only the per-client counter can produce these 429s.
    const first = statuses.indexOf(429);
    expect(first).toBeGreaterThanOrEqual(1);
    expect(statuses.slice(0, first).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(first).every((s) => s === 429)).toBe(true);
    expect((await attempt(b, 'user19', 'pass19')).status).toBe(429);
  });
});

describe('sticky mode', () => {
  it("the sessions are each node's, the budgets are not: 3 failures spread over two nodes spend them on both", async () => {
    for (let i = 0; i < 3; i++) expect((await attempt(i % 2 ? s2 : s1, 'user30', 'wrong')).status).toBe(401);
    for (const n of [s1, s2]) expect((await attempt(n, 'user30', 'pass30')).status).toBe(429);
  });
});

// No user enumeration (what an unknown user costs and answers): enumeration.test.ts.
