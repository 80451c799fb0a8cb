import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// Requests that change state: a session-bound CSRF token, and same-origin login/logout.
let redis: TestRedis;
let node: TestNode, other: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  [node, other] = await Promise.all([startNode({ REDIS_URL: redis.url, NODE_ID: 'a' }), startNode({ REDIS_URL: redis.url, NODE_ID: 'b' })]);
});
afterAll(async () => {
  await Promise.all([node?.close(), other?.close()]);
  await redis?.stop();
});

describe('CSRF token', () => {
  it('login and /api/me return a token; state-changing requests without it, or with a wrong one, get 403', async () => {
    const c = new Client(node.url);
    const login = await c.login('user1');
    expect(login.body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await c.get('/api/me')).body.csrfToken).toBe(login.body.csrfToken);

    const missing = await c.post('/api/cart/items', { sku: 'a', qty: 1 }, { 'x-csrf-token': '' });
    expect(missing.status).toBe(403);
    expect(missing.body.error.code).toBe('CSRF');
    const wrong = await c.post('/api/cart/items', { sku: 'a', qty: 1 }, { 'x-csrf-token': 'x'.repeat(43) });
    expect(wrong.status).toBe(403);
    expect((await c.del('/api/sessions', { 'x-csrf-token': '' })).status).toBe(403);
    expect((await c.post('/api/logout', {}, { 'x-csrf-token': '' })).status).toBe(403);
    expect((await c.get('/api/cart')).body.count).toBe(0); // nothing was added
    expect((await c.post('/api/cart/items', { sku: 'a', qty: 1 })).status).toBe(201); // with the token
  });

  it("is bound to the session: another session's token is refused, and a new login means a new token", async () => {
    const alice = new Client(node.url);
    const mallory = new Client(node.url);
    await alice.login('user2');
    await mallory.login('user3');
    const r = await alice.post('/api/cart/items', { sku: 'a', qty: 1 }, { 'x-csrf-token': mallory.csrf! });
    expect(r.status).toBe(403);
    const before = alice.csrf;
    await alice.login('user2');
    expect(alice.csrf).not.toBe(before);
  });

  it('is valid on every node (derived from the session id and the shared secret)', async () => {
    const c = new Client(node.url);
    await c.login('user4');
    expect((await c.on(other.url).post('/api/cart/items', { sku: 'b', qty: 2 })).status).toBe(201);
  });
});

describe('cross-site requests', () => {
  it('login refuses a cross-site Origin or Sec-Fetch-Site, and accepts same-origin and non-browser clients', async () => {
    const host = new URL(node.url).host;
    const body = { username: 'user5', password: 'pass5' };
    const evil = await new Client(node.url).request('POST', '/api/login', body, { origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.body.error.code).toBe('CROSS_SITE');
    expect((await new Client(node.url).request('POST', '/api/login', body, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await new Client(node.url).request('POST', '/api/login', body, { origin: 'null' })).status).toBe(403);
    expect((await new Client(node.url).request('POST', '/api/login', body, { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await new Client(node.url).request('POST', '/api/login', body)).status).toBe(200);
  });

  it("login refuses a same-site request from another origin, and an Origin that differs from the request's only in its scheme", async () => {
    const host = new URL(node.url).host;
    const body = { username: 'user8', password: 'pass8' };
    // A sibling subdomain is same-site, not same-origin: refused as well.
    const sibling = await new Client(node.url).request('POST', '/api/login', body, { 'sec-fetch-site': 'same-site' });
    expect(sibling.status).toBe(403);
    expect(sibling.body.error.code).toBe('CROSS_SITE');
    // Same host and port over https is another origin than this http request's.
    const https = await new Client(node.url).request('POST', '/api/login', body, { origin: `https://${host}` });
    expect(https.status).toBe(403);
    expect(https.body.error.code).toBe('CROSS_SITE');
    // A navigation the user started (Sec-Fetch-Site: none) is not cross-site.
    expect((await new Client(node.url).request('POST', '/api/login', body, { 'sec-fetch-site': 'none' })).status).toBe(200);
  });

  it('logout refuses a cross-site request', async () => {
    const c = new Client(node.url);
    await c.login('user6');
    expect((await c.post('/api/logout', {}, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await c.get('/api/me')).status).toBe(200);
  });

  it('a body that is not declared as JSON (a cross-site form can send text/plain) is refused with 415', async () => {
    const c = new Client(node.url);
    await c.login('user7');
    const r = await c.request('POST', '/api/cart/items', '{"sku":"a","qty":1}', { 'content-type': 'text/plain' });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
