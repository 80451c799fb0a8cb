import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Reply } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { waitFor } from '../../../../testkit/ports.js';
import { startTestPostgres, type TestPostgres } from '../../../../testkit/postgres.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';
import { MODE_DESCRIPTORS, needsPostgres, needsRedis, SESSION_MODES, type SessionMode } from '../../src/modes.js';

// Every row of the HTTP contract (docs/http-contract.md), in every mode of services/app/src/modes.ts,
// against one node and the real stores its mode needs. What a mode must do, and what it must
// refuse with 501 NOT_IN_MODE, is read from its descriptor: a new mode gets these tests by being
// registered there.
let redis: TestRedis | undefined;
let postgres: TestPostgres | undefined;
const defaults = (mode: SessionMode) => ({ mode, loginLimiter: MODE_DESCRIPTORS[mode].loginLimiter });

beforeAll(async () => {
  [redis, postgres] = await Promise.all([
    SESSION_MODES.some((m) => needsRedis(defaults(m))) ? startTestRedis() : undefined,
    SESSION_MODES.some((m) => needsPostgres(defaults(m))) ? startTestPostgres() : undefined,
  ]);
}, 90_000);
afterAll(async () => {
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

/** A client holding whichever credential the mode gives: its cookies, and a bearer token when the login answers one. */
class ModeClient extends Client {
  bearer: string | undefined;

  override async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const r = await super.request(method, path, body, { ...(this.bearer && { authorization: `Bearer ${this.bearer}` }), ...headers });
    if (path === '/api/login' && typeof r.body?.accessToken === 'string') this.bearer = r.body.accessToken;
    return r;
  }

  override on(base: string): ModeClient {
    const c = Object.assign(new ModeClient(base), { csrf: this.csrf, bearer: this.bearer });
    for (const [k, v] of this.cookies) c.cookies.set(k, v);
    return c;
  }
}

describe.each(SESSION_MODES.map((mode, i) => ({ mode, i, ...MODE_DESCRIPTORS[mode] })))('$mode mode: $summary', ({ mode, i, capabilities: can, credential, sessions }) => {
  let node: TestNode;
  const nodeId = `${mode}-node`;
  // Each mode its own pair of Redis databases (sessions, then the limiter and the rest).
  const env = (id: string) => ({
    SESSION_MODE: mode,
    NODE_ID: id,
    ...(redis && { REDIS_URL: redis.url.replace(/\/0$/, `/${2 * i}`) }),
    ...(postgres && { DATABASE_URL: postgres.url }),
  });
  const ready = (n: TestNode) => waitFor(`${mode} node ready`, async () => (await fetch(n.internalUrl + '/readyz')).status === 200, 15_000);
  const client = () => new ModeClient(node.url);
  const notInMode = (r: Reply) => {
    expect(r.status).toBe(501);
    expect(r.body.error).toMatchObject({ code: 'NOT_IN_MODE', message: expect.stringMatching(new RegExp(`^${mode} mode`)) });
  };

  beforeAll(async () => {
    node = await startNode(env(nodeId));
    await ready(node); // database mode: its schema exists
  }, 60_000);
  afterAll(async () => {
    await node?.close();
  });

  describe('POST /api/login', () => {
    it(`logs in and answers {user, node}, the credential (${credential}) and a CSRF token only where the credential is ambient`, async () => {
      const c = client();
      const r = await c.login('user1');
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.body).toMatchObject({ user: 'user1', node: nodeId });
      const cookie = r.headers.getSetCookie().find((h) => h.startsWith('sid='));
      if (credential === 'cookie') {
        expect(cookie).toMatch(/HttpOnly/);
        expect(r.body).not.toHaveProperty('accessToken');
      } else {
        expect(cookie).toBeUndefined();
        expect(r.body.accessToken).toEqual(expect.any(String));
      }
      if (can.csrf) expect(r.body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
      else expect(r.body).not.toHaveProperty('csrfToken');
    });

    it(`a second login issues a new credential; the one before it ${sessions === 'client' ? 'still works (nothing on the server to end)' : 'stops working'}`, async () => {
      const c = client();
      await c.login('user2');
      const stale = c.on(node.url);
      const first = [c.cookies.get('sid'), c.bearer];
      await c.login('user2');
      expect([c.cookies.get('sid'), c.bearer]).not.toEqual(first);
      expect((await stale.get('/api/me')).status).toBe(sessions === 'client' ? 200 : 401);
      expect((await c.get('/api/me')).status).toBe(200);
    });

    it('answers a wrong password and an unknown user with the same 401 body', async () => {
      const wrong = await client().post('/api/login', { username: 'user3', password: 'nope' });
      const unknown = await client().post('/api/login', { username: 'user99999', password: 'nope' });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(unknown.body).toEqual(wrong.body);
      expect(wrong.headers.getSetCookie()).toEqual([]);
    });

    it('rejects malformed JSON, a missing field and an oversized body with 400 and a message', async () => {
      const c = client();
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
    it(`reports user, node, mode and login time${can.state ? ", and counts this session's calls" : ', and no counter (no state beyond the identity)'}`, async () => {
      const c = client();
      const login = await c.login('user4');
      for (let n = 1; n <= 3; n++) {
        const r = await c.get('/api/me');
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ user: 'user4', node: nodeId, mode, loginAt: login.body.loginAt, createdOn: nodeId });
        if (can.state) expect(r.body.requests).toBe(n);
        else expect(r.body).not.toHaveProperty('requests');
      }
    });

    it('answers 401 JSON when not logged in', async () => {
      const r = await client().get('/api/me');
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHENTICATED');
    });
  });

  describe('POST /api/logout', () => {
    it(`ends the session; a copy of the credential taken before it is ${can.revokesStolenCredential ? 'refused' : 'still accepted (the mode cannot revoke it)'}`, async () => {
      const c = client();
      await c.login('user5');
      const replay = c.on(node.url);
      expect((await c.post('/api/logout')).status).toBe(200);
      if (credential === 'cookie') expect(c.cookies.has('sid')).toBe(false);
      expect((await replay.get('/api/me')).status).toBe(can.revokesStolenCredential ? 401 : 200);
    });

    it(can.csrf ? 'needs the CSRF token (the cookie is an ambient credential)' : 'needs no CSRF token (a browser never sends the credential by itself)', async () => {
      const c = client();
      await c.login('user8');
      const r = await c.post('/api/logout', {}, { 'x-csrf-token': 'A'.repeat(43) });
      if (can.csrf) {
        expect(r.status).toBe(403);
        expect(r.body.error.code).toBe('CSRF');
      } else {
        expect(r.status).toBe(200);
      }
    });
  });

  describe('cart', () => {
    it(can.state ? 'keeps a cart in the session' : 'has no cart: 501 NOT_IN_MODE', async () => {
      const c = client();
      await c.login('user6');
      if (!can.state) {
        notInMode(await c.get('/api/cart'));
        notInMode(await c.post('/api/cart/items', { sku: 'book-1', qty: 2 }));
        return;
      }
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

    it(can.state ? 'validates items, naming the field' : 'answers 501 before it reads an item', async () => {
      const c = client();
      await c.login('user7');
      const r = await c.post('/api/cart/items', { sku: 'ok', qty: 0 });
      if (!can.state) return notInMode(r);
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(/^qty: /);
      const s = await c.post('/api/cart/items', { sku: 'x y', qty: 1 });
      expect(s.body.error.message).toMatch(/^sku: /);
    });

    it('needs a login', async () => {
      expect((await client().get('/api/cart')).status).toBe(401);
    });
  });

  describe("a user's sessions", () => {
    it(can.listsSessions ? 'GET /api/sessions lists them, the current one marked' : 'GET /api/sessions: 501 NOT_IN_MODE', async () => {
      const c = client();
      await c.login('user9');
      const r = await c.get('/api/sessions');
      if (!can.listsSessions) return notInMode(r);
      expect(r.status).toBe(200);
      expect(r.body.sessions).toEqual([expect.objectContaining({ node: nodeId, current: true })]);
    });

    it(can.endsAllSessions ? 'DELETE /api/sessions ends every one of them' : 'DELETE /api/sessions: 501 NOT_IN_MODE', async () => {
      const c = client();
      await c.login('user10');
      const other = client();
      await other.login('user10');
      const r = await c.del('/api/sessions');
      if (!can.endsAllSessions) {
        notInMode(r);
        expect((await other.get('/api/me')).status).toBe(200);
        return;
      }
      expect(r.status).toBe(200);
      expect((await other.get('/api/me')).status).toBe(401);
      expect((await c.on(node.url).get('/api/me')).status).toBe(401);
    });
  });

  describe('health', () => {
    it('GET /healthz is 200 and /readyz is 200 naming the mode, on the internal port only', async () => {
      expect((await fetch(node.internalUrl + '/healthz')).status).toBe(200);
      const r = await fetch(node.internalUrl + '/readyz');
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ status: 'ready', mode });
      // The public port has no health routes, under any spelling Express would otherwise match.
      for (const path of ['/healthz', '/readyz', '/HEALTHZ', '/Readyz', '/healthz/', '/readyz/', '/readyz?x=1']) {
        expect((await fetch(node.url + path)).status, path).toBe(404);
      }
      expect((await fetch(node.internalUrl + '/metrics')).status).toBe(200);
    });

    it('/readyz goes 503 while draining', async () => {
      const other = await startNode(env(`${mode}-drain`));
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
        expect(r.headers.get('x-served-by'), path).toBe(nodeId);
      }
      const nf = await fetch(node.url + '/nope');
      expect(nf.status).toBe(404);
      expect(((await nf.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    });
  });

  describe('demo accounts', () => {
    it('alice and bob can log in', async () => {
      expect((await client().login('alice')).body.user).toBe('alice');
      expect((await client().login('bob')).body.user).toBe('bob');
    });
  });
});
