import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// The attacks of security round 2 on login, each reproduced first: guesses sent at once, a
// lock-out button for anyone on the same address, and a login flood that starves the node.
let redis: TestRedis;
let a: TestNode, b: TestNode, s1: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  const env = { LOGIN_MAX_FAILURES: '3', LOGIN_MAX_FAILURES_PER_CLIENT: '20', LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000' };
  [a, b, s1] = await Promise.all([
    startNode({ ...env, REDIS_URL: redis.url, NODE_ID: 'a' }),
    startNode({ ...env, REDIS_URL: redis.url, NODE_ID: 'b' }),
    startNode({ ...env, SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory', NODE_ID: 's1', LOGIN_MAX_FAILURES_PER_CLIENT: '1000' }),
  ]);
});
afterAll(async () => {
  await Promise.all([a, b, s1].map((n) => n?.close()));
  await redis?.stop();
});

/** Each scenario starts with fresh budgets (they share one client address, 127.0.0.1). */
async function freshBudgets() {
  const aux = new Redis(redis.url.replace(/\/0$/, '/1'));
  await aux.flushdb();
  aux.disconnect();
}

const login = (c: Client, username: string, password: string) => c.post('/api/login', { username, password });

describe('guesses sent at once', () => {
  it.each([
    ['shared, across two nodes', () => [a, b]],
    ['sticky, one node', () => [s1]],
  ])('%s: of 40 simultaneous guesses at most the budget (3) are hashed, every round', async (_name, nodes) => {
    for (let round = 0; round < 4; round++) {
      const user = `user${_name.startsWith('shared') ? 1 + round : 5 + round}`;
      const right = user.replace('user', 'pass');
      const guesses = Array.from({ length: 40 }, (_, i) => (i === 39 - round * 10 ? right : `wrong-${i}`));
      const ns = nodes();
      const replies = await Promise.all(guesses.map((p, i) => login(new Client(ns[i % ns.length]!.url), user, p)));
      const statuses = replies.map((r) => r.status);
      // Hashed = answered 401 or 200. On a loaded machine a reservation can also time out (503
      // STORE_UNAVAILABLE): that fails closed, it never hashes more.
      const hashed = statuses.filter((s) => s === 401 || s === 200);
      expect(hashed.length, statuses.join(',')).toBeLessThanOrEqual(3);
      expect(statuses.filter((s) => s !== 503).length).toBeGreaterThanOrEqual(1);
      expect(statuses.every((s) => s === 401 || s === 429 || s === 200 || s === 503)).toBe(true);
      for (const r of replies.filter((x) => x.status === 503)) expect(r.body.error.code).toBe('STORE_UNAVAILABLE');
      // Whatever the timing, the account now refuses more guesses from this address.
      expect((await login(new Client(ns[0]!.url), user, 'again-wrong')).status).toBe(429);
    }
  });
});

describe('no lock-out button (shared mode)', () => {
  beforeEach(freshBudgets);
  it('20 failures with throwaway names lock out untrusted logins from the address for at most the window, never a device that logged in before', async () => {
    // alice's browser logged in before the attack: it holds a device cookie.
    const alice = new Client(a.url);
    expect((await alice.login('user10')).status).toBe(200);
    expect(alice.cookies.get('device')).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}\.[0-9a-z]+\.[A-Za-z0-9_-]{43}$/);
    const setCookie = (await alice.login('user10')).headers.getSetCookie().find((c) => c.startsWith('device='))!;
    expect(setCookie).toMatch(/; Path=\/api\/login;/); // sent to the login route only
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);

    // The attacker, on the same address, sprays throwaway names until the address budget is spent.
    const spray = [];
    for (let i = 0; i < 30; i++) spray.push(await login(new Client(i % 2 ? a.url : b.url), `user${9000 + i}`, 'x'));
    expect(spray.filter((r) => r.status === 401).length).toBe(20);
    const blocked = spray.find((r) => r.status === 429)!;
    expect(Number(blocked.headers.get('retry-after'))).toBeLessThanOrEqual(15 * 60); // the window, not a day

    // A new visitor on that address is held off (the address is under attack)...
    expect((await login(new Client(a.url), 'user11', 'pass11')).status).toBe(429);
    // ...but alice, on her known device, logs in with her password, on either node,
    expect((await alice.login('user10')).status).toBe(200);
    const onB = alice.on(b.url);
    expect((await onB.login('user10')).status).toBe(200);
    // and a stolen device cookie is no master key: it is bound to its user, and has its own budget.
    const thief = alice.on(a.url);
    expect((await login(thief, 'user12', 'pass12')).status).toBe(429); // another user: untrusted, address spent
    const wrong = await Promise.all(Array.from({ length: 6 }, () => login(thief, 'user10', 'guess')));
    expect(wrong.filter((r) => r.status === 401).length).toBeLessThanOrEqual(3);
    expect(wrong.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(3);
  });

  it('"log out everywhere" revokes the device cookies issued before it, on every node; one issued after it is trusted', async () => {
    // alice's old browser holds a device cookie; she then logs out everywhere (it may be in a thief's hands).
    const old = new Client(a.url);
    expect((await old.login('user16')).status).toBe(200);
    const revoked = old.cookies.get('device')!;
    expect(revoked).toBeDefined();
    const r = await old.on(b.url).del('/api/sessions');
    expect(r.status).toBe(200);
    // The cut-off is a millisecond timestamp: the next device cookie is issued strictly after it.
    const cutAt = Date.now();
    await new Promise<void>((ok) => {
      const tick = () => (Date.now() > cutAt + 1 ? ok() : setTimeout(tick, 1));
      tick();
    });
    const current = new Client(b.url);
    expect((await current.login('user16')).status).toBe(200);
    const renewed = current.cookies.get('device')!;
    expect(renewed).not.toBe(revoked);

    // The attacker spends the address budget (20) with throwaway names.
    for (let i = 0; i < 20; i++) expect((await login(new Client(i % 2 ? a.url : b.url), `user${9100 + i}`, 'x')).status).toBe(401);
    for (const node of [a, b]) {
      const withRevoked = new Client(node.url);
      withRevoked.cookies.set('device', revoked);
      const withRenewed = new Client(node.url);
      withRenewed.cookies.set('device', renewed);
      // The revoked cookie is an untrusted client on a spent address; the renewed one has its own budget.
      expect((await login(withRevoked, 'user16', 'pass16')).status, `${node.url}: a device cookie issued before "log out everywhere"`).toBe(429);
      expect((await login(withRenewed, 'user16', 'pass16')).status, `${node.url}: a device cookie issued after it`).toBe(200);
    }
  });

  it('a forged or re-signed device cookie is ignored', async () => {
    const c = new Client(s1.url);
    await c.login('user13');
    const [name, id, issued, sig] = c.cookies.get('device')!.split('.') as [string, string, string, string];
    const other = Buffer.from('user14').toString('base64url');
    const later = (Number.parseInt(issued, 36) + 60_000).toString(36); // a younger issue date, to outlive a revocation
    for (const forged of [`${other}.${id}.${issued}.${sig}`, `${name}.${id}.${issued}.${'A'.repeat(43)}`, `${name}.${id}.${later}.${sig}`, `${name}.${id}.${sig}`, 'garbage']) {
      const f = new Client(s1.url);
      f.cookies.set('device', forged);
      // Trusted or not, a right password works; what matters is that a forged cookie never lifts a limit:
      // spend user14's budget on this address, then the forged cookie must still be refused.
      for (let i = 0; i < 3; i++) await login(new Client(s1.url), 'user14', `w${i}`);
      expect((await login(f, 'user14', 'pass14')).status, forged).toBe(429);
    }
  });
});

describe('after a burst, success clears the account counter', () => {
  beforeEach(freshBudgets);
  it('2 failures, then the right password, then 3 more failures are allowed again', async () => {
    const c = new Client(a.url);
    c.cookies.set('device', 'none');
    for (let i = 0; i < 2; i++) expect((await login(new Client(b.url), 'user15', 'wrong')).status).toBe(401);
    expect((await login(new Client(a.url), 'user15', 'pass15')).status).toBe(200);
    const after = await Promise.all(Array.from({ length: 3 }, () => login(new Client(b.url), 'user15', 'wrong')));
    expect(after.map((r) => r.status)).toEqual([401, 401, 401]);
  });
});

// No user enumeration (what an unknown user costs and answers): enumeration.test.ts.
