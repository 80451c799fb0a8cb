import { createHash, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { SignJWT, base64url } from 'jose';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SECRET_A, SECRET_B, startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../../src/session/credentials/jwt.js';

// jwt mode: a signed bearer token; two nodes verify each other's tokens; Redis holds only
// revocation (and the login limiter).
let redis: TestRedis;
let a: TestNode;
let b: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  [a, b] = await Promise.all([
    startNode({ SESSION_MODE: 'jwt', REDIS_URL: redis.url, NODE_ID: 'jwt-a', SESSION_SECRETS: `${SECRET_A},${SECRET_B}` }),
    startNode({ SESSION_MODE: 'jwt', REDIS_URL: redis.url, NODE_ID: 'jwt-b', SESSION_SECRETS: SECRET_A }),
  ]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await redis?.stop();
});

async function login(node: TestNode, user = 'user1') {
  const r = await fetch(node.url + '/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user, password: user.replace('user', 'pass') }),
  });
  return {
    status: r.status,
    body: (await r.json()) as { user: string; node: string; loginAt: number; accessToken: string; expiresIn: number; csrfToken?: string },
    headers: r.headers,
  };
}
const redisCli = (port: number, cmd: string, key: string, db: number) => execFileSync('redis-cli', ['-p', String(port), '-n', String(db), cmd, key], { encoding: 'utf8' }).trim();
const call = (node: TestNode, path: string, token: string | null, init: RequestInit = {}) =>
  fetch(node.url + path, { ...init, headers: { ...(token !== null && { authorization: `Bearer ${token}` }), 'content-type': 'application/json', ...init.headers } });
const me = (node: TestNode, token: string | null) => call(node, '/api/me', token);

/** The HS256 key a secret gives (as the node derives it), and its kid: for forging tokens in tests. */
const keyOf = (secret: string) => new Uint8Array(hkdfSync('sha256', secret, 'session-cluster jwt', 'HS256 v1', 32));
const kidOf = (secret: string) => createHash('sha256').update(`jwt-kid:${secret}`).digest('base64url').slice(0, 8);
const sign = (claims: Record<string, unknown>, opts: { secret?: string; alg?: string; kid?: string; exp?: string | number; iss?: string; aud?: string; iat?: number } = {}) =>
  new SignJWT({ loginAt: Date.now(), issuedAt: Date.now(), node: 'jwt-a', ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', kid: opts.kid ?? kidOf(opts.secret ?? SECRET_A) })
    .setIssuer(opts.iss ?? JWT_ISSUER)
    .setAudience(opts.aud ?? JWT_AUDIENCE)
    .setSubject('user1')
    .setJti('forged-jti-000000000000')
    .setIssuedAt(opts.iat)
    .setExpirationTime(opts.exp ?? '5m')
    .sign(keyOf(opts.secret ?? SECRET_A));

describe('the contract with a bearer token', () => {
  it('login answers {user, node, loginAt, accessToken, expiresIn} and no cookie, never to be cached; every node accepts the token', async () => {
    const r = await login(a);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(r.body).sort()).toEqual(['accessToken', 'expiresIn', 'loginAt', 'node', 'user']);
    expect(r.body.expiresIn).toBe(900);
    expect(r.headers.getSetCookie().filter((c) => c.startsWith('sid='))).toEqual([]);
    const [header, payload] = r.body.accessToken
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(new TextDecoder().decode(base64url.decode(p))));
    expect(header).toMatchObject({ alg: 'HS256', typ: 'JWT', kid: kidOf(SECRET_A) });
    expect(payload).toMatchObject({ iss: JWT_ISSUER, aud: JWT_AUDIENCE, sub: 'user1', node: 'jwt-a' });
    expect(payload.exp - payload.iat).toBe(900);
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const node of [a, b]) {
      const m = await me(node, r.body.accessToken);
      expect(m.status).toBe(200);
      const body = await m.json();
      expect(body).toMatchObject({ user: 'user1', mode: 'jwt', loginAt: r.body.loginAt, createdOn: 'jwt-a' });
      expect(body).not.toHaveProperty('requests');
      expect(body).not.toHaveProperty('csrfToken');
    }
  });
  // 401 without a token, 501 for the cart and the session list, no CSRF: test/contract.test.ts, from the mode's capabilities.
});

describe('attacks on the token', () => {
  it('alg none, HS/RS confusion, a retired key, expiry, wrong iss/aud, tampering and garbage: all 401, never 500', async () => {
    const { body } = await login(a, 'user4');
    const [h, p, s] = body.accessToken.split('.') as [string, string, string];
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs256 = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', kid: kidOf(SECRET_A) }).sign(privateKey);
    const retired = 'c0ffee' + SECRET_B.slice(6); // a secret no node holds (any more)
    const hostile: Record<string, string> = {
      'alg none': `${enc({ alg: 'none', typ: 'JWT', kid: kidOf(SECRET_A) })}.${p}.`,
      'alg none, signature kept': `${enc({ alg: 'none', kid: kidOf(SECRET_A) })}.${p}.${s}`,
      'RS256 signed with an RSA key': rs256,
      'HS256 keyed with the raw secret instead of the derived key': await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'HS256', kid: kidOf(SECRET_A) })
        .sign(new TextEncoder().encode(SECRET_A)),
      'a retired key': await sign({}, { secret: retired }),
      'a known kid, another key': await sign({}, { secret: retired, kid: kidOf(SECRET_A) }),
      expired: await sign({}, { exp: Math.floor(Date.now() / 1000) - 5 }),
      'wrong issuer': await sign({}, { iss: 'someone-else' }),
      'wrong audience': await sign({}, { aud: 'another-api' }),
      'payload changed (sub: admin)': `${h}.${enc({ ...claims, sub: 'admin' })}.${s}`,
      'signature truncated': `${h}.${p}.${s.slice(0, -4)}`,
      'two parts': `${h}.${p}`,
      garbage: 'not-a-token',
      huge: 'a'.repeat(9000) + '.b.c',
    };
    for (const [what, token] of Object.entries(hostile)) {
      const r = await me(a, token);
      expect(r.status, what).toBe(401);
    }
    for (const header of ['Bearer', 'Bearer ', `Basic ${body.accessToken}`, `bearer ${body.accessToken}x`, `Bearer ${body.accessToken} extra`]) {
      const r = await fetch(a.url + '/api/me', { headers: { authorization: header } });
      expect(r.status, header.slice(0, 20)).toBe(401);
    }
    // Issued in the future beyond the allowed clock skew (5 s): refused; within it: accepted.
    const at = Math.floor(Date.now() / 1000);
    expect((await me(a, await sign({}, { iat: at + 60 }))).status).toBe(401);
    expect((await me(a, await sign({}, { iat: at + 3 }))).status).toBe(200);
    // A token signed with the second secret (rotation): node a holds it, node b does not.
    const bySecondKey = await sign({}, { secret: SECRET_B });
    expect((await me(a, bySecondKey)).status).toBe(200);
    expect((await me(b, bySecondKey)).status).toBe(401);
  });

  it('a token replayed after logout is refused on every node, even by 16 requests racing the logout (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const { body } = await login(a, 'user5');
      const token = body.accessToken;
      const racing = Array.from({ length: 16 }, (_, i) => me(i % 2 ? a : b, token).then((r) => r.status));
      const logout = await call(a, '/api/logout', token, { method: 'POST', body: '{}' });
      expect(logout.status).toBe(200);
      for (const status of await Promise.all(racing)) expect([200, 401]).toContain(status);
      // Once the logout has answered, every copy on every node is refused.
      const after = await Promise.all(Array.from({ length: 16 }, (_, i) => me(i % 2 ? a : b, token).then((r) => r.status)));
      expect(after, `round ${round}`).toEqual(after.map(() => 401));
      // The denylist entry lives as long as the token would have (a key per logout, in the aux database).
      const jti = JSON.parse(new TextDecoder().decode(base64url.decode(token.split('.')[1]!))).jti as string;
      expect(Number(await redisCli(redis.port, 'TTL', `jwt:deny:${jti}`, 1))).toBeGreaterThan(800);
    }
  });

  it('log out everywhere voids every token of the user issued before it, on every node; a later login works', async () => {
    const first = (await login(a, 'user6')).body.accessToken;
    const second = (await login(b, 'user6')).body.accessToken;
    const other = (await login(a, 'user7')).body.accessToken;
    const r = await call(b, '/api/sessions', first, { method: 'DELETE' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ended: null, scope: 'cluster' });
    for (const node of [a, b]) {
      expect((await me(node, first)).status).toBe(401);
      expect((await me(node, second)).status).toBe(401);
      expect((await me(node, other)).status).toBe(200);
    }
    await new Promise((res) => setTimeout(res, 5));
    expect((await me(b, (await login(a, 'user6')).body.accessToken)).status).toBe(200);
  });

  it('log out everywhere also voids a token issued by a node whose clock runs 4 s ahead (inside the allowed skew), on every node', async () => {
    // Both nodes run in this process: the clock is moved ahead while node a issues the token.
    const realNow = Date.now.bind(Date);
    const ahead = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 4000);
    let token: string;
    try {
      token = (await login(a, 'user12')).body.accessToken;
    } finally {
      ahead.mockRestore();
    }
    expect((await me(b, token)).status).toBe(200);
    // Logged out everywhere from another device (whose own token is denied by the logout itself).
    const other = (await login(b, 'user12')).body.accessToken;
    expect((await call(b, '/api/sessions', other, { method: 'DELETE' })).status).toBe(200);
    for (const node of [a, b]) expect((await me(node, token)).status, `a token issued before the cut-off, on ${node.url}`).toBe(401);
  });

  it('a denylist that lost its data fails closed: after FLUSHDB every token issued before is refused on every node, a logged-out one too, even by 16 requests at once; a new login works', async () => {
    const loggedOut = (await login(a, 'user10')).body.accessToken;
    expect((await call(a, '/api/logout', loggedOut, { method: 'POST', body: '{}' })).status).toBe(200);
    const live = (await login(b, 'user11')).body.accessToken;
    expect((await me(a, live)).status).toBe(200);
    expect((await me(b, loggedOut)).status).toBe(401);
    // The revocation data is lost (FLUSHDB of the aux database: the denylist and the epoch with it).
    execFileSync('redis-cli', ['-p', String(redis.port), '-n', '1', 'FLUSHDB'], { encoding: 'utf8' });
    // Both nodes at once: whichever begins the new epoch, no token older than it is let back in.
    const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => me(i % 2 ? a : b, i % 4 < 2 ? live : loggedOut).then((r) => r.status)));
    expect(statuses).toEqual(statuses.map(() => 401));
    const fresh = (await login(a, 'user11')).body.accessToken;
    for (const node of [a, b]) {
      expect((await me(node, fresh)).status).toBe(200);
      expect((await me(node, loggedOut)).status).toBe(401);
    }
  });

  it('Redis down: 503 STORE_UNAVAILABLE with Retry-After, not a 500, and back by itself', async () => {
    const { body } = await login(a, 'user8');
    await redis.kill();
    try {
      const r = await me(a, body.accessToken);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
    } finally {
      await redis.restart();
    }
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await me(a, (await login(a, 'user9')).body.accessToken).catch(() => ({ status: 0 }))).status;
      if (status !== 200) await new Promise((res) => setTimeout(res, 200));
    }
    expect(status).toBe(200);
  });
});
