import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startCluster } from '../../../testkit/cluster.js';

// What nginx adds at the edge, checked through the real nginx in front of real nodes.
let shared: Awaited<ReturnType<typeof startCluster>>;
let sticky: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  const started = await Promise.allSettled([
    startCluster({ mode: 'shared', nodes: 2, nodeEnv: { LOG_LEVEL: 'info', LOGIN_MAX_FAILURES: '2' } }),
    startCluster({ mode: 'sticky', nodes: 2 }),
  ]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    throw (failed as PromiseRejectedResult).reason;
  }
  [shared, sticky] = started.map((s) => (s as PromiseFulfilledResult<typeof shared>).value) as [typeof shared, typeof sticky];
});
afterAll(async () => {
  await Promise.all([shared?.stop(), sticky?.stop()]);
});

describe('request ids', () => {
  it("every response has nginx's X-Request-Id, a client cannot choose it, and the serving node logged it", async () => {
    const r = await fetch(shared.url + '/api/me', { headers: { 'x-request-id': 'chosen-by-client' } });
    const rid = r.headers.get('x-request-id');
    expect(rid).toMatch(/^[0-9a-f]{32}$/);
    const node = r.headers.get('x-served-by')!;
    const log = path.join(shared.dir, 'logs', `${node}.log`);
    await new Promise((res) => setTimeout(res, 200));
    expect(fs.readFileSync(log, 'utf8')).toContain(`"reqId":"${rid}"`);
  });
});

describe('client addresses', () => {
  it('a client cannot reset its login limit by sending its own X-Forwarded-For', async () => {
    const attempt = (xff: string) => new Client(shared.url).post('/api/login', { username: 'user1', password: 'wrong' }, { 'x-forwarded-for': xff });
    expect((await attempt('203.0.113.1')).status).toBe(401);
    expect((await attempt('203.0.113.2')).status).toBe(401);
    for (const xff of ['203.0.113.3', '198.51.100.7, 127.0.0.1', 'unknown']) {
      const r = await attempt(xff);
      expect(r.status).toBe(429);
    }
  });
});

describe('node health endpoints', () => {
  it('are not exposed through the load balancer, which has its own', async () => {
    for (const path of ['/readyz', '/healthz', '/HEALTHZ', '/Readyz', '/healthz/', '/readyz/', '/%68ealthz', '/api/../readyz']) {
      const r = await fetch(shared.url + path);
      expect(r.status, path).toBe(404);
      expect(await r.text(), path).not.toMatch(/"status":"(ok|ready)"/);
    }
    expect((await fetch(shared.url + '/lb/healthz')).status).toBe(200);
  });
});

describe('the route cookie', () => {
  it('is set once, at the edge, in sticky mode only', async () => {
    const first = await fetch(sticky.url + '/api/me');
    const cookie = first.headers.getSetCookie().find((c) => c.startsWith('scroute='));
    expect(cookie).toMatch(/^scroute=[0-9a-f]{32}; Path=\/; HttpOnly; SameSite=Lax$/);
    const again = await fetch(sticky.url + '/api/me', { headers: { cookie: cookie!.split(';')[0]! } });
    expect(again.headers.getSetCookie().some((c) => c.startsWith('scroute='))).toBe(false);
    const onShared = await fetch(shared.url + '/api/me');
    expect(onShared.headers.getSetCookie().some((c) => c.startsWith('scroute='))).toBe(false);
  });
});
