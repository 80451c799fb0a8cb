import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

let redis: TestRedis;
let plain: TestNode;
let secure: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  plain = await startNode({ REDIS_URL: redis.url, NODE_ID: 'plain' });
  // Behind a TLS-terminating proxy on loopback: trust that proxy only.
  secure = await startNode({ REDIS_URL: redis.url, NODE_ID: 'secure', COOKIE_SECURE: 'true', TRUST_PROXY: 'loopback' });
});
afterAll(async () => {
  await Promise.all([plain?.close(), secure?.close()]);
  await redis?.stop();
});

const sessionCookie = (r: { headers: Headers }) => r.headers.getSetCookie().find((c) => /^(__Host-)?sid=/.test(c)) ?? '';

describe('the session cookie', () => {
  it('is not connect.sid; HttpOnly; SameSite=Lax; Path=/; no Domain; no Max-Age (server-side lifetimes)', async () => {
    const r = await new Client(plain.url).login('user1');
    const c = sessionCookie(r);
    expect(c).toMatch(/^sid=/);
    expect(c).not.toMatch(/connect\.sid/);
    expect(c).toMatch(/; HttpOnly/);
    expect(c).toMatch(/; SameSite=Lax/);
    expect(c).toMatch(/; Path=\//);
    expect(c).not.toMatch(/Domain=/i);
    expect(c).not.toMatch(/Secure/);
  });

  it('with COOKIE_SECURE behind the trusted proxy: Secure and the __Host- prefix', async () => {
    const r = await new Client(secure.url).login('user2', 'pass2');
    const c = r.headers.getSetCookie().find((h) => h.startsWith('__Host-sid=')) ?? '';
    // express-session drops a Secure cookie on a request that does not look like HTTPS.
    expect(c).toBe('');
    const viaTls = await new Client(secure.url).request('POST', '/api/login', { username: 'user2', password: 'pass2' }, { 'x-forwarded-proto': 'https' });
    const cookie = sessionCookie(viaTls);
    expect(cookie).toMatch(/^__Host-sid=/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Domain=/i);
  });

  it('carries at least 128 random bits, different every login', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const c = new Client(plain.url);
      await c.login('user3');
      const id = c.sessionId();
      expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/); // uid-safe(24): 24 random bytes = 192 bits, base64url
      ids.add(id);
    }
    expect(ids.size).toBe(20);
  });
});
