import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { raw } from '../../../../../testkit/raw.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';

// Inputs that used to reach a 500 (security round 2), each reproduced as the attacker sent it.
let redis: TestRedis;
let node: TestNode, sticky: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  [node, sticky] = await Promise.all([startNode({ REDIS_URL: redis.url, NODE_ID: 'h' }), startNode({ NODE_ID: 's', SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory' })]);
});
afterAll(async () => {
  await Promise.all([node?.close(), sticky?.close()]);
  await redis?.stop();
});

describe('X-CSRF-Token of any content is a 403, never a 500', () => {
  it('43 characters that are more than 43 bytes, and other odd shapes', async () => {
    const c = new Client(node.url);
    await c.login('user1');
    const tokens = ['é'.repeat(43), 'a'.repeat(42) + 'é', '€'.repeat(43), 'a'.repeat(43), c.csrf! + 'x', c.csrf!.slice(0, 42), ' '.repeat(43), '\t' + c.csrf!.slice(1)];
    for (const token of tokens) {
      const r = await raw(node.url, {
        method: 'POST',
        path: '/api/cart/items',
        headers: { cookie: c.cookieHeader(), 'content-type': 'application/json', 'x-csrf-token': Buffer.from(token, 'latin1').toString('latin1') },
        body: Buffer.from('{"sku":"a","qty":1}'),
      });
      expect(r.status, JSON.stringify(token)).toBe(403);
      expect(JSON.parse(r.body).error.code).toBe('CSRF');
    }
    expect((await c.get('/api/cart')).body.count).toBe(0);
  });
});

describe('a corrupt compressed body is a 400 from the catalogue', () => {
  it.each(['gzip', 'deflate', 'br', 'x-gzip'])('Content-Encoding: %s with garbage', async (encoding) => {
    const r = await raw(node.url, {
      method: 'POST',
      path: '/api/login',
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      body: Buffer.from('definitely not compressed \x00\xff'),
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(['BAD_BODY', 'UNSUPPORTED_MEDIA_TYPE']).toContain(JSON.parse(r.body).error.code);
    expect(r.body).not.toMatch(/at .*\.js|Error:|zlib/i);
  });

  it('a well-formed gzip body still works, and an unknown encoding is 415', async () => {
    const ok = await raw(node.url, {
      method: 'POST',
      path: '/api/login',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: zlib.gzipSync('{"username":"user2","password":"pass2"}'),
    });
    expect(ok.status).toBe(200);
    const unknown = await raw(node.url, {
      method: 'POST',
      path: '/api/login',
      headers: { 'content-type': 'application/json', 'content-encoding': 'zstd-ish' },
      body: Buffer.from('{}'),
    });
    expect(unknown.status).toBe(415);
  });
});

describe('the body gate: JSON or nothing', () => {
  it('a bodiless POST (Content-Length: 0, no Content-Type) goes through; any body that is not JSON is 415; a body-less GET skips the parser', async () => {
    const c = new Client(node.url);
    await c.login('user4');
    const headers = { cookie: c.cookieHeader(), 'x-csrf-token': c.csrf!, origin: node.url };
    for (const [type, body, status] of [
      ['text/plain', '{"sku":"a","qty":1}', 415],
      ['application/x-www-form-urlencoded', 'sku=a&qty=1', 415],
      [undefined, '{"sku":"a","qty":1}', 415],
      ['application/json', '{"sku":"a","qty":1}', 201],
    ] as const) {
      const r = await raw(node.url, { method: 'POST', path: '/api/cart/items', headers: { ...headers, ...(type && { 'content-type': type }) }, body: Buffer.from(body) });
      expect(r.status, `${type}`).toBe(status);
    }
    // Simultaneous bodiless reads on the session: each sees the line the JSON POST added.
    const reads = await Promise.all(Array.from({ length: 10 }, () => c.get('/api/cart')));
    expect(reads.map((r) => r.body.count)).toEqual(Array(10).fill(1));
    const out = await raw(node.url, { method: 'POST', path: '/api/logout', headers: { ...headers, 'content-length': '0' } });
    expect(out.status).toBe(200);
  });

  it('a body sent chunked (Transfer-Encoding, no Content-Length) is a body: JSON is read, anything else is 415', async () => {
    const chunked = (type: string, body: string) =>
      raw(node.url, { method: 'POST', path: '/api/login', headers: { 'content-type': type, 'transfer-encoding': 'chunked' }, body: Buffer.from(body) });
    const ok = await chunked('application/json', '{"username":"user5","password":"pass5"}');
    expect(ok.status, ok.body).toBe(200);
    expect(JSON.parse(ok.body).user).toBe('user5');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const r = await chunked(type, '{"username":"user5","password":"pass5"}');
      expect(r.status, type).toBe(415);
      expect(JSON.parse(r.body).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });
});

describe('same-origin check compares the scheme too', () => {
  it('an https Origin against an http request (and the reverse mismatch of host or port) is cross-site', async () => {
    const host = new URL(node.url).host;
    for (const origin of [`https://${host}`, `http://${host}.evil.example`, `http://${host.replace(/:\d+$/, ':1')}`, 'null', 'http://']) {
      const r = await new Client(node.url).post('/api/login', { username: 'user3', password: 'pass3' }, { origin });
      expect(r.status, origin).toBe(403);
      expect(r.body.error.code).toBe('CROSS_SITE');
    }
    expect((await new Client(node.url).post('/api/login', { username: 'user3', password: 'pass3' }, { origin: `http://${host}` })).status).toBe(200);
  });
});

describe('sticky mode says how far "log out everywhere" reaches', () => {
  it('DELETE /api/sessions answers scope "node" in sticky mode and "cluster" in shared mode', async () => {
    for (const [n, scope] of [
      [sticky, 'node'],
      [node, 'cluster'],
    ] as const) {
      const c = new Client(n.url);
      await c.login('user4');
      const r = await c.del('/api/sessions');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ ended: expect.any(Number), scope });
    }
  });
});
