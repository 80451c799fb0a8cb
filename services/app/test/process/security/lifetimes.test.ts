import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// Idle and absolute timeouts, enforced by the server (the cookie itself has no expiry).
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let redis: TestRedis;
let a: TestNode, b: TestNode, sticky: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  const env = { REDIS_URL: redis.url, SESSION_IDLE_TIMEOUT: '2s', SESSION_ABSOLUTE_TIMEOUT: '4s' };
  [a, b, sticky] = await Promise.all([
    startNode({ ...env, NODE_ID: 'a' }),
    startNode({ ...env, NODE_ID: 'b' }),
    startNode({ ...env, NODE_ID: 's', SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory' }),
  ]);
});
afterAll(async () => {
  await Promise.all([a, b, sticky].map((n) => n?.close()));
  await redis?.stop();
});

describe.each([
  ['shared', () => [a, b] as const],
  ['sticky', () => [sticky, sticky] as const],
])('%s mode', (_mode, nodes) => {
  it('an idle session expires after the idle timeout, on every node', async () => {
    const [n1, n2] = nodes();
    const c = new Client(n1.url);
    await c.login('user1');
    await sleep(1200);
    expect((await c.get('/api/me')).status).toBe(200); // activity extends the idle window
    await sleep(1200);
    expect((await c.on(n2.url).get('/api/me')).status).toBe(200);
    await sleep(2300);
    expect((await c.get('/api/me')).status).toBe(401);
    expect((await c.on(n2.url).get('/api/me')).status).toBe(401);
  });

  it('an active session still ends at the absolute timeout', async () => {
    const [n1, n2] = nodes();
    const c = new Client(n1.url);
    await c.login('user2');
    const started = Date.now();
    while (Date.now() - started < 3500) {
      expect((await c.get('/api/me')).status).toBe(200);
      await sleep(500);
    }
    await sleep(Math.max(0, 4100 - (Date.now() - started)));
    expect((await c.get('/api/me')).status).toBe(401);
    expect((await c.on(n2.url).get('/api/me')).status).toBe(401);
  });
});
