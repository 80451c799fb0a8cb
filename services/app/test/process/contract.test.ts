import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';

// Every row of the HTTP contract (docs/http-contract.md), against one shared-mode node and a real Redis.
let redis: TestRedis;
let node: TestNode;

beforeAll(async () => {
  redis = await startTestRedis();
  node = await startNode({ REDIS_URL: redis.url, NODE_ID: 'node-a' });
});
afterAll(async () => {
  await node?.close();
  await redis?.stop();
});

describe('POST /api/login', () => {
  it('logs in, returns {user, node} and an HttpOnly session cookie', async () => {
    const c = new Client(node.url);
    const r = await c.login('user1');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: 'user1', node: 'node-a' });
    const cookie = r.headers.getSetCookie().find((h) => h.startsWith('sid='));
    expect(cookie).toMatch(/HttpOnly/);
  });

  it('issues a new session id at login (the pre-login id stops working)', async () => {
    const c = new Client(node.url);
    await c.login('user2');
    const first = c.cookies.get('sid');
    const stale = c.on(node.url);
    await c.login('user2');
    expect(c.cookies.get('sid')).not.toBe(first);
    expect((await stale.get('/api/me')).status).toBe(401);
    expect((await c.get('/api/me')).status).toBe(200);
  });

  it('answers a wrong password and an unknown user with the same 401 body', async () => {
    const wrong = await new Client(node.url).post('/api/login', { username: 'user3', password: 'nope' });
    const unknown = await new Client(node.url).post('/api/login', { username: 'user99999', password: 'nope' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.headers.getSetCookie()).toEqual([]);
  });

  it('rejects malformed JSON, a missing field and an oversized body with 400 and a message', async () => {
    const c = new Client(node.url);
    const bad = await c.post('/api/login', '{"username": "alice",');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_JSON');
    const missing = await c.post('/api/login', { username: 'alice' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/^password: /);
    const huge = await c.post('/api/login', { username: 'alice', password: 'x'.repeat(20_000) });
    expect(huge.status).toBe(400);
    expect(huge.body.error.code).toBe('BODY_TOO_LARGE');
  });
});

describe('GET /api/me', () => {
  it("counts this session's /api/me calls and reports user, node and login time", async () => {
    const c = new Client(node.url);
    const login = await c.login('user4');
    for (let i = 1; i <= 3; i++) {
      const r = await c.get('/api/me');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ user: 'user4', node: 'node-a', loginAt: login.body.loginAt, requests: i });
    }
  });

  it('answers 401 JSON when not logged in', async () => {
    const r = await new Client(node.url).get('/api/me');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('UNAUTHENTICATED');
  });
});

describe('POST /api/logout', () => {
  it('destroys the session server-side: the old cookie is refused afterwards', async () => {
    const c = new Client(node.url);
    await c.login('user5');
    const replay = c.on(node.url);
    expect((await c.post('/api/logout')).status).toBe(200);
    expect((await replay.get('/api/me')).status).toBe(401);
  });
});

describe('cart', () => {
  it('keeps a cart in the session', async () => {
    const c = new Client(node.url);
    await c.login('user6');
    expect((await c.get('/api/cart')).body).toEqual({ items: [], count: 0 });
    expect((await c.post('/api/cart/items', { sku: 'book-1', qty: 2 })).status).toBe(201);
    await c.post('/api/cart/items', { sku: 'book-1', qty: 1 });
    await c.post('/api/cart/items', { sku: 'pen', qty: 5 });
    expect((await c.get('/api/cart')).body).toEqual({
      items: [
        { sku: 'book-1', qty: 3 },
        { sku: 'pen', qty: 5 },
      ],
      count: 8,
    });
  });

  it('validates items, naming the field', async () => {
    const c = new Client(node.url);
    await c.login('user7');
    const r = await c.post('/api/cart/items', { sku: 'ok', qty: 0 });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^qty: /);
    const s = await c.post('/api/cart/items', { sku: 'x y', qty: 1 });
    expect(s.body.error.message).toMatch(/^sku: /);
  });

  it('needs a login', async () => {
    expect((await new Client(node.url).get('/api/cart')).status).toBe(401);
  });
});

describe('health', () => {
  it('GET /healthz is 200 and /readyz is 200 while Redis is up, on the internal port only', async () => {
    expect((await fetch(node.internalUrl + '/healthz')).status).toBe(200);
    const ready = await fetch(node.internalUrl + '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', mode: 'shared' });
    // The public port has no health routes, under any spelling Express would otherwise match.
    for (const path of ['/healthz', '/readyz', '/HEALTHZ', '/Readyz', '/healthz/', '/readyz/', '/readyz?x=1']) {
      expect((await fetch(node.url + path)).status, path).toBe(404);
    }
    expect((await fetch(node.internalUrl + '/metrics')).status).toBe(200);
  });

  it('/readyz goes 503 while draining', async () => {
    const other = await startNode({ REDIS_URL: redis.url, NODE_ID: 'node-drain' });
    other.handle.startDraining();
    const r = await fetch(other.internalUrl + '/readyz');
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ reason: 'draining' });
    // Every response while draining retires its keep-alive connection.
    expect((await fetch(other.url + '/api/me')).headers.get('connection')).toBe('close');
    expect((await fetch(node.url + '/api/me')).headers.get('connection')).toBe('keep-alive');
    await other.close();
  });
});

describe('every response', () => {
  it('carries X-Served-By, including errors and 404s', async () => {
    for (const path of ['/api/ping', '/api/me', '/nope', '/api/nope']) {
      const r = await fetch(node.url + path);
      expect(r.headers.get('x-served-by'), path).toBe('node-a');
    }
    const nf = await fetch(node.url + '/nope');
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});

describe('demo accounts', () => {
  it('alice and bob can log in', async () => {
    expect((await new Client(node.url).login('alice')).body.user).toBe('alice');
    expect((await new Client(node.url).login('bob')).body.user).toBe('bob');
  });
});
