import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';

// The node's metrics, after real traffic against real Redis: names, labels, and what they count.
let redis: TestRedis;
let node: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  node = await startNode({ REDIS_URL: redis.url, NODE_ID: 'metrics-node', LOGIN_MAX_FAILURES: '2' });
});
afterAll(async () => {
  await node?.close();
  await redis?.stop();
});

it('counts requests by route template, logins by result and the session store, with no user or session id in any label', async () => {
  const c = new Client(node.url);
  await c.login('user1');
  const sid = c.sessionId();
  await c.get('/api/me');
  await c.post('/api/cart/items', { sku: 'sku-1', qty: 1 });
  await c.get('/api/sessions?user=user1');
  for (let i = 0; i < 3; i++) await new Client(node.url).post('/api/login', { username: 'user2', password: 'wrong' });
  await new Client(node.url).post('/api/login', { username: 'user3' });
  await c.post('/api/logout');

  const text = await node.metrics.registry.metrics();
  const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
  expect(value('session_cluster_http_requests_total{route="/api/me",method="GET",status="200",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_http_requests_total{route="/api/cart/items",method="POST",status="201",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_http_requests_total{route="/api/sessions",method="GET",status="200",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_logins_total{result="ok",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_logins_total{result="bad_credentials",node="metrics-node"}')).toBe(2);
  expect(value('session_cluster_logins_total{result="rate_limited",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_logins_total{result="invalid",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_sessions_created_total{node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_sessions_destroyed_total{reason="logout",node="metrics-node"}')).toBe(1);
  expect(value('session_cluster_session_store_duration_seconds_count{node="metrics-node",operation="get"}')).toBeGreaterThanOrEqual(3);
  expect(value('session_cluster_session_store_duration_seconds_count{node="metrics-node",operation="set"}')).toBeGreaterThanOrEqual(3);
  expect(value('session_cluster_node_info{mode="shared",version="test",node="metrics-node"}')).toBe(1);
  expect(text).toMatch(/^session_cluster_process_cpu_seconds_total/m);

  // Labels are templates and enums: no user name, no session id, no query string.
  const labelValues = [...text.matchAll(/\w+="([^"]*)"/g)].map((m) => m[1]!);
  for (const bad of ['user1', 'user2', 'user3', sid, sid.slice(0, 8), '?user='])
    expect(
      labelValues.some((v) => v.includes(bad)),
      bad,
    ).toBe(false);
  // Every metric is ours (prefixed), counters end in _total and durations in _seconds.
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    expect(name).toMatch(/^session_cluster_/);
    if (type === 'counter') expect(name).toMatch(/_total$/);
    if (type === 'histogram' && name!.includes('duration')) expect(name).toMatch(/_seconds$/);
  }
});

it('reports active sessions from DBSIZE of the session database (no SCAN)', async () => {
  await new Client(node.url).login('user4');
  await new Client(node.url).login('user5');
  const keys = await node.redis!.sessions!.dbsize();
  const text = await node.metrics.registry.metrics();
  expect(Number(/^session_cluster_sessions_active\{node="metrics-node"\} (\d+)$/m.exec(text)?.[1])).toBe(keys);
  expect(keys).toBeGreaterThanOrEqual(2);
  const stats = await node.redis!.sessions!.info('commandstats');
  expect(stats).not.toMatch(/cmdstat_(scan|keys):/);
});

it('counts the Redis commands each request sends: a read is one GETEX, a write one EVALSHA more, a login three', async () => {
  const sent = async () => {
    const m = (await node.metrics.redisCommands.get()).values;
    const out: Record<string, number> = {};
    for (const v of m) out[`${v.labels.connection}:${v.labels.command}`] = v.value;
    return out;
  };
  const delta = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(b)
        .filter(([k, v]) => v !== (a[k] ?? 0))
        .map(([k, v]) => [k, v - (a[k] ?? 0)]),
    );
  const c = new Client(node.url);
  await c.login('user4');
  await c.get('/api/me'); // scripts are loaded (EVALSHA hits from here on)
  let before = await sent();
  await c.get('/api/cart');
  expect(delta(before, await sent())).toEqual({ 'sessions:getex': 1 });
  before = await sent();
  await c.get('/api/me');
  expect(delta(before, await sent())).toEqual({ 'sessions:getex': 1, 'sessions:evalsha': 1 });
  before = await sent();
  await new Client(node.url).login('user4');
  // Reserve an attempt (EVALSHA), write the session (SET), index it and settle the attempt (one EVALSHA).
  expect(delta(before, await sent())).toEqual({ 'aux:evalsha': 2, 'sessions:set': 1 });
});
