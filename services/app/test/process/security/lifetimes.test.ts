import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSessionStore } from '../../../src/session/stores/local-store.js';
import { SESSION_PREFIX } from '../../../src/session/modes/shared.js';
import { Client, type Reply } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// Idle and absolute timeouts, enforced by the server (the cookie itself has no expiry). The claim
// is a lower bound (a session is not ended before its deadline) and that it does end: each request
// is timed, and a verdict is drawn only where its timing decides it, so a loaded machine (a slow
// answer) cannot make the test fail. The nodes run in this process: one clock for both sides.
const IDLE_MS = 2000;
// The absolute timeout is well past the idle test's length (about 9 s), so that the idle timeout,
// not the absolute one, is what ends the session there.
const ABSOLUTE_MS = 12_000;
let redis: TestRedis;
let a: TestNode, b: TestNode, sticky: TestNode;
let direct: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  direct = new Redis(redis.url);
  const env = { REDIS_URL: redis.url, SESSION_IDLE_TIMEOUT: `${IDLE_MS / 1000}s`, SESSION_ABSOLUTE_TIMEOUT: `${ABSOLUTE_MS / 1000}s` };
  [a, b, sticky] = await Promise.all([
    startNode({ ...env, NODE_ID: 'a' }),
    startNode({ ...env, NODE_ID: 'b' }),
    startNode({ ...env, NODE_ID: 's', SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory' }),
  ]);
});
afterAll(async () => {
  direct?.disconnect();
  await Promise.all([a, b, sticky].map((n) => n?.close()));
  await redis?.stop();
});

/** A request with when it was sent and when it was answered: the server handled it in between. */
interface Timed {
  r: Reply;
  sent: number;
  answered: number;
}
async function timed(send: () => Promise<Reply>): Promise<Timed> {
  const sent = Date.now();
  const r = await send();
  return { r, sent, answered: Date.now() };
}
/** Resolves at `at` (epoch ms): a request is sent then, not a fixed time after something unknown. */
const until = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

/** Sessions the nodes destroyed for their absolute timeout (session_cluster_sessions_destroyed_total), summed. */
async function endedAtAbsolute(nodes: readonly TestNode[]): Promise<number> {
  let n = 0;
  for (const node of new Set(nodes)) {
    const text = await node.metrics.registry.getSingleMetricAsString('session_cluster_sessions_destroyed_total');
    n += Number(/reason="absolute_timeout"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  }
  return n;
}

describe.each([
  ['shared', () => [a, b] as const, async (sid: string) => (await direct.exists(SESSION_PREFIX + sid)) === 1],
  ['sticky', () => [sticky, sticky] as const, async (sid: string) => (sticky.handle.sessions.store as LocalSessionStore).has(sid)],
])('%s mode', (_mode, nodes, stored) => {
  it('an idle session lives while it is used, and ends once idle for the idle timeout, on every node', async () => {
    const [n1, n2] = nodes();
    const c = new Client(n1.url);
    let last = await timed(() => c.login('user1'));
    expect(last.r.status).toBe(200);
    const loggedIn = last;
    // Used every 0.5 s, alternately on both nodes, for longer than the idle timeout: it lives. A
    // request may be refused only if the server could have seen the session idle for the timeout.
    for (let i = 0; i < 5; i++) {
      await until(last.answered + 500);
      const t = await timed(() => (i % 2 ? c.on(n2.url) : c).get('/api/me'));
      if (t.answered - last.sent < IDLE_MS) expect(t.r.status, `request ${i}, ${t.answered - last.sent} ms after the previous one was sent`).toBe(200);
      last = t;
    }
    expect(last.r.status).toBe(200);
    expect(last.sent - loggedIn.answered, 'used for longer than the idle timeout').toBeGreaterThan(IDLE_MS);
    // Then left idle for longer each time, until it has ended: never before the idle timeout, and
    // surely once idle for longer than it (a 200 restarts the idle time).
    for (let idle = 1500; last.r.status === 200; idle += 500) {
      await until(last.answered + idle);
      const t = await timed(() => c.get('/api/me'));
      expect([200, 401]).toContain(t.r.status);
      if (t.r.status === 401) expect(t.answered - last.sent, 'ended before the idle timeout').toBeGreaterThanOrEqual(IDLE_MS);
      else expect(t.sent - last.answered, 'still alive after the idle timeout').toBeLessThanOrEqual(IDLE_MS);
      last = t;
    }
    expect(last.answered - loggedIn.sent, 'the idle timeout ended it, not the absolute one').toBeLessThan(ABSOLUTE_MS);
    expect((await c.on(n2.url).get('/api/me')).status).toBe(401);
    expect((await c.get('/api/me')).status).toBe(401);
  });

  it('an active session still ends at the absolute timeout, on every node', async () => {
    const [n1, n2] = nodes();
    const c = new Client(n1.url);
    const endedBefore = await endedAtAbsolute(nodes());
    const login = await timed(() => c.login('user2'));
    expect(login.r.status).toBe(200);
    // Used every 0.3 s (never idle for the idle timeout) until it is refused: alive before the
    // absolute deadline (login + 12 s), refused once past it.
    let last = login;
    while (last.r.status === 200) {
      await until(last.answered + 300);
      const t = await timed(() => c.get('/api/me'));
      const neverIdle = t.answered - last.sent < IDLE_MS;
      if (t.answered < login.sent + ABSOLUTE_MS && neverIdle) expect(t.r.status, `${t.answered - login.sent} ms after the login`).toBe(200);
      if (t.sent > login.answered + ABSOLUTE_MS) expect(t.r.status, `${t.sent - login.answered} ms after the login`).toBe(401);
      expect([200, 401]).toContain(t.r.status);
      last = t;
    }
    expect(last.answered - login.sent, 'ended before the absolute timeout').toBeGreaterThanOrEqual(ABSOLUTE_MS);
    // Destroyed when it was refused (not merely refused, and left to idle out): gone from the store, counted once.
    expect(await stored(c.sessionId()), 'still in the store after the absolute timeout refused it').toBe(false);
    expect(await endedAtAbsolute(nodes())).toBe(endedBefore + 1);
    expect((await c.on(n2.url).get('/api/me')).status).toBe(401);
  });
});
