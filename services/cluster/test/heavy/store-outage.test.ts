import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kill, readState, start } from '../../src/cluster.js';
import { signal } from '../../src/lib/pids.js';
import { waitFor } from '../../src/lib/ports.js';
import { Client, everyNodeReady, servedBy, startCluster } from '../../../../testkit/cluster.js';

// A Redis outage is a shared dependency failing, not a node failing. Through nginx, with all
// three nodes up: session routes answer 503 + Retry-After (JSON, from the catalogue) on every
// request, routes that need no session and the page keep answering 200 from every node, and no
// node is ejected for it. A crashed Redis (SIGKILL) and a hung one (SIGSTOP) both.
let cluster: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  cluster = await startCluster({ mode: 'shared', nodes: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

const redisPid = () => readState(cluster.dir)!.parts.find((p) => p.name === 'redis')!.pid; // current: redis is restarted above
const nodeInternal = (name: string) => `http://127.0.0.1:${cluster.parts.find((p) => p.name === name)!.ports!.metrics}`;

// What bounds a session request's answer while Redis is away: a node's command timeout (500 ms)
// for a hung Redis, nothing for a dead one (a command fails at once). The bound checked here is
// generous, 10 times the timeout, because the claim is not a latency figure: it is that no request
// hangs (nginx would end one with its 504 after 30 s) and none waits for a retry or a reconnect.
// That a dead Redis costs no timeout at all is shown where it can be told apart from one:
// services/app/test/process/redis-outage.test.ts (a 20 s timeout, answers within 10 s).
const NEVER_HANGS_MS = 5000;

async function duringOutage(c: Client, maxMs = NEVER_HANGS_MS) {
  const session: Array<{ status: number; ms: number; code?: string; retry: string | null; type: string | null }> = [];
  for (let i = 0; i < 24; i++) {
    const t = performance.now();
    const r = i % 3 === 2 ? await c.post('/api/cart/items', { sku: 'x', qty: 1 }) : await c.get(i % 3 ? '/api/cart' : '/api/me');
    session.push({ status: r.status, ms: performance.now() - t, code: r.body?.error?.code, retry: r.headers.get('retry-after'), type: r.headers.get('content-type') });
  }
  for (const r of session) {
    expect(r.status).toBe(503); // never nginx's 502
    expect(r.code).toBe('STORE_UNAVAILABLE');
    expect(r.retry).toBe('1');
    expect(r.type).toMatch(/application\/json/);
    expect(r.ms).toBeLessThan(maxMs);
  }
  // Routes without a session, and the page, from every node: nothing was ejected.
  const pings = await Promise.all(Array.from({ length: 30 }, () => fetch(cluster.url + '/api/ping')));
  expect(pings.map((r) => r.status)).toEqual(Array(30).fill(200));
  expect(new Set(pings.map(servedBy)).size).toBe(3);
  const page = await fetch(cluster.url + '/');
  expect(page.status).toBe(200);
  expect(await page.text()).toMatch(/<html/i);
}

describe('Redis SIGKILLed', () => {
  it('session routes 503 + Retry-After on every request, the rest 200 from all three nodes; recovery by itself', async () => {
    const c = new Client(cluster.url);
    expect((await c.login('user1')).status).toBe(200);
    await kill('redis', { dir: cluster.dir, signal: 'KILL' });
    await duringOutage(c);
    // A new login fails the same way, never a 500 or a 502.
    const login = await new Client(cluster.url).login('user2');
    expect(login.status).toBe(503);
    await start('redis', { dir: cluster.dir });
    await waitFor('session routes back', async () => (await new Client(cluster.url).login('user3')).status === 200, 15_000);
  }, 60_000);
});

describe('Redis hung (SIGSTOP)', () => {
  it('a session request answers 503 once the command timeout runs out (never hangs), readiness goes 503, the same through nginx', async () => {
    const c = new Client(cluster.url);
    // Every node back from the previous test's outage first: a node still reconnecting answers 503.
    await everyNodeReady(cluster.dir);
    expect((await c.login('user4')).status).toBe(200);
    signal(redisPid(), 'SIGSTOP');
    try {
      // REDIS_COMMAND_TIMEOUT_MS is 500: a hung command fails then, it does not hang.
      await duringOutage(c);
      for (const node of ['app-1', 'app-2', 'app-3']) {
        const r = await fetch(nodeInternal(node) + '/readyz');
        expect(r.status, node).toBe(503);
        expect(await r.json()).toMatchObject({ reason: 'store unavailable' });
      }
    } finally {
      signal(redisPid(), 'SIGCONT');
    }
    await everyNodeReady(cluster.dir);
    // The session written before the hang is intact: nothing was lost, only delayed.
    const me = await c.get('/api/me');
    expect(me.status).toBe(200);
    expect(me.body.user).toBe('user4');
  }, 90_000); // 24 requests of 0.5 s each, and two waits of up to 15 s for every node's readiness
});

describe('a node that really dies', () => {
  it('is still routed around', async () => {
    await kill('app-2', { dir: cluster.dir, signal: 'KILL' });
    const pings = await Promise.all(Array.from({ length: 30 }, () => fetch(cluster.url + '/api/ping')));
    expect(pings.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(pings.map(servedBy)).not.toContain('app-2');
    await start('app-2', { dir: cluster.dir });
  });
});
