import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { SECRET_A, SECRET_B, startNode, type TestNode } from '../../../../../testkit/node.js';
import { sealedCookie } from '../../../src/session/credentials/sealed-cookie.js';

// cookie mode: the whole session sealed in the cookie, nothing on the server. Two nodes with the
// same secrets (no Redis at all): any node opens any node's cookie.
let a: TestNode;
let b: TestNode;
let rotated: TestNode;
let short: TestNode;
beforeAll(async () => {
  [a, b, rotated, short] = await Promise.all([
    startNode({ SESSION_MODE: 'cookie', LOGIN_LIMITER: 'memory', NODE_ID: 'cookie-a' }),
    startNode({ SESSION_MODE: 'cookie', LOGIN_LIMITER: 'memory', NODE_ID: 'cookie-b' }),
    // After a rotation: a new first secret seals, the old one still opens.
    startNode({ SESSION_MODE: 'cookie', LOGIN_LIMITER: 'memory', NODE_ID: 'cookie-rotated', SESSION_SECRETS: `${SECRET_B},${SECRET_A}` }),
    // An idle timeout under a minute: reads must still keep a session in use alive.
    startNode({ SESSION_MODE: 'cookie', LOGIN_LIMITER: 'memory', NODE_ID: 'cookie-short', SESSION_IDLE_TIMEOUT: '30' }),
  ]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), rotated?.close(), short?.close()]);
});

const sealedValue = (c: Client) => c.cookies.get('sid')!;

describe('the contract, with the state in the cookie', () => {
  it('login, counter, cart and logout work across nodes with nothing stored', async () => {
    const c = new Client(a.url);
    const login = await c.login('user1');
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ user: 'user1', node: 'cookie-a' });
    expect(login.body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const setCookie = login.headers.getSetCookie().find((h) => h.startsWith('sid='))!;
    expect(setCookie).toMatch(/^sid=v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax$/);
    // The contents are encrypted: the user name is not readable in the cookie.
    expect(Buffer.from(sealedValue(c).split('.')[2]!, 'base64url').toString('latin1')).not.toContain('user1');

    expect((await c.get('/api/me')).body.requests).toBe(1);
    const onB = c.on(b.url);
    const me = await onB.get('/api/me');
    expect(me.body).toMatchObject({ user: 'user1', node: 'cookie-b', mode: 'cookie', requests: 2, createdOn: 'cookie-a' });
    c.cookies.set('sid', onB.cookies.get('sid')!);
    const add = await c.post('/api/cart/items', { sku: 'apple', qty: 2 });
    expect(add.status).toBe(201);
    expect(add.body).toEqual({ items: [{ sku: 'apple', qty: 2 }], count: 2 });
    expect((await c.on(b.url).get('/api/cart')).body.count).toBe(2);
    expect((await c.post('/api/logout', {})).status).toBe(200);
    expect(c.cookies.has('sid')).toBe(false);
    expect((await c.get('/api/me')).status).toBe(401);
  });
  // 501 for listing and ending sessions, and the CSRF check: test/contract.test.ts, from the mode's capabilities.
});

describe('what the cookie cannot do', () => {
  it('logout cannot revoke a copy taken before it: the stolen cookie still works (the weakness, shown)', async () => {
    const victim = new Client(a.url);
    await victim.login('user4');
    const thief = victim.on(b.url);
    expect((await victim.post('/api/logout', {})).status).toBe(200);
    const replay = await thief.get('/api/me');
    expect(replay.status).toBe(200);
    expect(replay.body.user).toBe('user4');
    expect(a.handle.sessions.capabilities.revokesStolenCredential).toBe(false);
  });

  it('replaying an older cookie rolls the session back: the server cannot tell it from the current one (the weakness, shown)', async () => {
    const c = new Client(a.url);
    await c.login('user10');
    const old = c.on(a.url); // a copy of the cookie right after login
    for (let i = 0; i < 6; i++) await c.get('/api/me');
    for (const sku of ['a', 'b', 'c']) expect((await c.post('/api/cart/items', { sku, qty: 1 })).status).toBe(201);
    expect((await c.get('/api/cart')).body.count).toBe(3);
    const before = (await c.get('/api/me')).body.requests;
    // The replayed copy is the session as it was: the counter starts over, the cart is empty.
    const replayed = await old.get('/api/me');
    expect(replayed.status).toBe(200);
    console.log(
      `cookie mode: a replayed login cookie rolls the counter back from ${before} to ${replayed.body.requests} and the cart from 3 lines to ${(await old.get('/api/cart')).body.count}`,
    );
    expect(before).toBe(7);
    expect(replayed.body.requests).toBe(1);
    expect((await old.get('/api/cart')).body.count).toBe(0);
  });

  it('concurrent changes race in the browser: each response carries a whole cookie and the last one wins', async () => {
    const c = new Client(a.url);
    await c.login('user5');
    const skus = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const replies = await Promise.all(skus.map((sku) => c.on(a.url).post('/api/cart/items', { sku, qty: 1 })));
    expect(replies.every((r) => r.status === 201)).toBe(true);
    // Every request started from the same cookie: each answer holds only its own line.
    expect(replies.map((r) => r.body.count)).toEqual(skus.map(() => 1));
  });

  it('the largest cart the API allows (50 lines of 32-character SKUs) still fits in 4096 bytes, with its margin', async () => {
    const c = new Client(a.url);
    await c.login('user6');
    for (let i = 0; i < 50; i++) expect((await c.post('/api/cart/items', { sku: `s${String(i).padStart(31, '0')}`, qty: 99 })).status).toBe(201);
    const size = Buffer.byteLength(`sid=${sealedValue(c)}; Path=/; HttpOnly; SameSite=Lax`);
    console.log(`cookie mode: the largest cart makes a ${size}-byte cookie (limit 4096)`);
    expect(size).toBeLessThanOrEqual(4096);
    expect((await c.get('/api/cart')).body.items).toHaveLength(50);
  });

  it('a save that would not fit in 4096 bytes is refused with 413 SESSION_TOO_LARGE, and no cookie is sent', async () => {
    const credential = sealedCookie({ name: 'sid', secrets: [SECRET_A], secure: false, idleTimeoutS: 60 });
    const headers = new Map<string, unknown>();
    const res = { getHeader: (n: string) => headers.get(n.toLowerCase()), setHeader: (n: string, v: unknown) => headers.set(n.toLowerCase(), v) } as never;
    const cart = (lines: number) => Array.from({ length: lines }, (_, i) => ({ sku: `s${String(i).padStart(31, '0')}`, qty: 99 }));
    await credential.save({} as never, res, 'sid-1', { user: 'u', loginAt: 1, node: 'n', requests: 1, cart: cart(50) });
    expect(String((headers.get('set-cookie') as string[])[0])).toMatch(/^sid=v1\./);
    headers.clear();
    await expect(credential.save({} as never, res, 'sid-1', { user: 'u', loginAt: 1, node: 'n', requests: 1, cart: cart(80) })).rejects.toMatchObject({
      code: 'SESSION_TOO_LARGE',
      status: 413,
    });
    expect(headers.has('set-cookie')).toBe(false);
  });
});

describe('hostile cookies', () => {
  it('tampered, truncated, re-sealed with an unknown secret or garbage: anonymous (401), never a 500', async () => {
    const c = new Client(a.url);
    await c.login('user7');
    const good = sealedValue(c);
    const [v, kid, body] = good.split('.') as [string, string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const foreign = sealedCookie({ name: 'sid', secrets: ['f'.repeat(16) + '0123456789abcdef0123456789abcdef'], secure: false, idleTimeoutS: 60 }).seal({
      sid: 'x',
      seen: Date.now(),
      user: 'admin',
      loginAt: Date.now(),
    });
    const hostile = [
      `${v}.${kid}.${flip(body, 20)}`,
      `${v}.${kid}.${flip(body, body.length - 3)}`,
      `${v}.${kid}.${body.slice(0, body.length - 10)}`,
      `${v}.${kid}.${body.slice(0, 20)}`,
      `${v}.AAAAAAAA.${body}`,
      foreign,
      `v2.${kid}.${body}`,
      'garbage',
      '',
      '%ZZ',
      'v1.' + 'A'.repeat(8) + '.' + 'A'.repeat(5000),
    ];
    for (const value of hostile) {
      const r = await fetch(a.url + '/api/me', { headers: { cookie: `sid=${value}` } });
      expect(r.status, value.slice(0, 40)).toBe(401);
    }
    // The real one still opens.
    expect((await c.get('/api/me')).status).toBe(200);
  });

  it('the idle timeout counts from the sealed timestamp: a cookie last written longer ago than it is refused on every node, one just within it opens', async () => {
    // Sealed as a node seals them (the same secret and name), with `seen` set a minute either side
    // of the idle timeout: the server keeps nothing, so the timestamp in the cookie is all it has.
    const idleMs = a.config.session.idleTimeoutS * 1000;
    const sealer = sealedCookie({ name: 'sid', secrets: [SECRET_A], secure: false, idleTimeoutS: a.config.session.idleTimeoutS });
    const sealedAt = (seen: number) => sealer.seal({ sid: `idle-${seen}`, seen, user: 'user10', loginAt: seen, node: 'cookie-a', requests: 1 });
    const now = Date.now();
    const stale = sealedAt(now - idleMs - 60_000);
    const fresh = sealedAt(now - idleMs + 60_000);
    for (const node of [a, b]) {
      const refused = await fetch(node.url + '/api/me', { headers: { cookie: `sid=${stale}` } });
      expect(refused.status, `${node.config.nodeId}: idle for longer than the idle timeout`).toBe(401);
      expect(
        refused.headers.getSetCookie().some((h) => h.startsWith('sid=v1.')),
        'an idle-expired cookie is not renewed',
      ).toBe(false);
      const opened = await fetch(node.url + '/api/me', { headers: { cookie: `sid=${fresh}` } });
      expect(opened.status, `${node.config.nodeId}: within the idle timeout`).toBe(200);
      expect(((await opened.json()) as { user: string }).user).toBe('user10');
    }
  });

  it('a session only read has its cookie renewed once a tenth of the idle timeout has passed (30 s idle: after 3 s), not on every read', async () => {
    const idleS = short.config.session.idleTimeoutS;
    const sealer = sealedCookie({ name: 'sid', secrets: [SECRET_A], secure: false, idleTimeoutS: idleS });
    // GET /api/cart writes nothing: a Set-Cookie, if any, is the idle refresh.
    const readWithCookieSealedAt = async (seen: number) => {
      const cookie = sealer.seal({ sid: `read-${seen}`, seen, user: 'user12', loginAt: seen, node: 'cookie-short', requests: 1 });
      const r = await fetch(short.url + '/api/cart', { headers: { cookie: `sid=${cookie}` } });
      expect(r.status).toBe(200);
      const renewed = r.headers.getSetCookie().find((h) => h.startsWith('sid=v1.'));
      return renewed === undefined ? null : sealer.open(renewed.slice('sid='.length).split(';')[0]!);
    };
    // Last written two thirds of the idle timeout ago: renewed, the idle timeout counting from now.
    const before = Date.now();
    const renewed = await readWithCookieSealedAt(before - (idleS * 1000 * 2) / 3);
    expect(renewed?.user, 'a session in use is renewed before its idle timeout').toBe('user12');
    expect(renewed!.seen).toBeGreaterThanOrEqual(before);
    // Written a second ago: no Set-Cookie (one on every read would cost bytes on every response).
    expect(await readWithCookieSealedAt(Date.now() - 1000)).toBeNull();
  });

  it('the same cookie sealed under another cookie name does not open (the name is bound)', async () => {
    const c = new Client(a.url);
    await c.login('user8');
    const value = sealedValue(c);
    const other = sealedCookie({ name: '__Host-sid', secrets: [SECRET_A], secure: true, idleTimeoutS: 60 });
    expect(other.open(value)).toBeNull();
  });

  it('key rotation: a cookie sealed with the old first secret opens on a node whose list has it second', async () => {
    const c = new Client(a.url);
    await c.login('user9');
    const onRotated = c.on(rotated.url);
    const r = await onRotated.get('/api/me');
    expect(r.status).toBe(200);
    expect(r.body.user).toBe('user9');
    // ...and the rotated node seals with its new first secret: another kid.
    expect(onRotated.cookies.get('sid')!.split('.')[1]).not.toBe(c.cookies.get('sid')!.split('.')[1]);
  });
});
