import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

let redis: TestRedis;
let node: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  node = await startNode({ REDIS_URL: redis.url, NODE_ID: 'h' });
});
afterAll(async () => {
  await node?.close();
  await redis?.stop();
});

it('sends security headers and no X-Powered-By', async () => {
  const r = await fetch(node.url + '/api/me');
  expect(r.headers.get('x-powered-by')).toBeNull();
  expect(r.headers.get('x-content-type-options')).toBe('nosniff');
  expect(r.headers.get('content-security-policy')).toMatch(/frame-ancestors 'self'/);
  expect(r.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
  expect(r.headers.get('referrer-policy')).toBe('no-referrer');
  expect(r.headers.get('x-frame-options')).toBe('SAMEORIGIN');
});

it('limits JSON bodies to 8 KiB and validates strictly, naming the field', async () => {
  const c = new Client(node.url);
  expect((await c.post('/api/login', { username: 'a', password: 'b', pad: 'x'.repeat(9000) })).body.error.code).toBe('BODY_TOO_LARGE');
  const extra = await c.post('/api/login', { username: 'user1', password: 'pass1', admin: true });
  expect(extra.status).toBe(400);
  expect(extra.body.error.message).toMatch(/admin|Unrecognized/i);
  const wrongType = await c.post('/api/login', { username: 42, password: 'x' });
  expect(wrongType.status).toBe(400);
  expect(wrongType.body.error.message).toMatch(/^username: /);
  const notObject = await c.post('/api/login', '[1,2,3]');
  expect(notObject.status).toBe(400);
  expect(notObject.body.error.message).toMatch(/JSON object/);
  const long = await c.post('/api/login', { username: 'u'.repeat(65), password: 'x' });
  expect(long.body.error.message).toMatch(/^username: .*64/);
});

it('never leaks a stack trace', async () => {
  const c = new Client(node.url);
  for (const body of ['{', '{"username":', 'null', '"str"', '{"username":{"$gt":""},"password":"x"}']) {
    const r = await c.post('/api/login', body);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).not.toMatch(/at .*\.(js|ts):\d+|node_modules|Error:/);
  }
});
