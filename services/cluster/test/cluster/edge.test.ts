import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kill, start } from '../../src/cluster.js';
import { Client, startCluster } from '../../../../testkit/cluster.js';
import { waitFor } from '../../../../testkit/ports.js';

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
    // The node writes its log line as the response finishes: wait for it, not for a fixed time.
    await waitFor(`${node} to log request ${rid}`, async () => fs.readFileSync(log, 'utf8').includes(`"reqId":"${rid}"`), 10_000, 50);
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
  const routeCookie = (r: Response) => r.headers.getSetCookie().find((c) => c.startsWith('scroute='));
  it('names the node that answered, is sent only when that changes, and exists in sticky mode only', async () => {
    const first = await fetch(sticky.url + '/api/me');
    const node = first.headers.get('x-served-by')!;
    expect(routeCookie(first)).toBe(`scroute=${node}; Path=/; HttpOnly; SameSite=Lax`);
    // Pinned: the same node answers every time, and the cookie is not sent again.
    for (let i = 0; i < 6; i++) {
      const again = await fetch(sticky.url + '/api/me', { headers: { cookie: `scroute=${node}` } });
      expect(again.headers.get('x-served-by')).toBe(node);
      expect(routeCookie(again)).toBeUndefined();
    }
    // Each node can be named; an unknown or forged name goes to the pool and is re-pinned to whoever answered.
    for (const other of ['app-1', 'app-2']) expect((await fetch(sticky.url + '/api/ping', { headers: { cookie: `scroute=${other}` } })).headers.get('x-served-by')).toBe(other);
    for (const forged of ['app-9', 'node_1', '../app-1', 'x'.repeat(300)]) {
      const r = await fetch(sticky.url + '/api/ping', { headers: { cookie: `scroute=${forged}` } });
      expect(r.status).toBe(200);
      expect(routeCookie(r)).toBe(`scroute=${r.headers.get('x-served-by')}; Path=/; HttpOnly; SameSite=Lax`);
    }
    expect(routeCookie(await fetch(shared.url + '/api/me'))).toBeUndefined();
  });

  it('re-pins a client to the node that answered while its own was down, and keeps it there when that node is back', async () => {
    const client = new Client(sticky.url);
    expect((await client.login('user7')).status).toBe(200);
    const home = client.cookies.get('scroute')!;
    expect(['app-1', 'app-2']).toContain(home);
    const other = home === 'app-1' ? 'app-2' : 'app-1';
    await kill(home, { dir: sticky.dir });
    // Its session was in the dead node's memory: lost once (401), answered by the other node, which re-pins the client.
    const lost = await client.get('/api/me');
    expect(lost.status).toBe(401);
    expect(lost.headers.get('x-served-by')).toBe(other);
    expect(client.cookies.get('scroute')).toBe(other);
    expect((await client.login('user7')).status).toBe(200);
    await start(home, { dir: sticky.dir });
    // Back, and taken into the pool again by nginx (after its fail_timeout): a new client lands on it.
    await waitFor(`nginx to send a new client to ${home} again`, async () => (await fetch(sticky.url + '/api/ping')).headers.get('x-served-by') === home, 20_000, 100);
    // The client stays where its session now is.
    for (let i = 0; i < 5; i++) {
      const r = await client.get('/api/me');
      expect(r.status).toBe(200);
      expect(r.headers.get('x-served-by')).toBe(other);
    }
  }, 40_000);
});
