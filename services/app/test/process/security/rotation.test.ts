import { sign, unsign } from 'cookie-signature';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { SECRET_A, SECRET_B, startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';
import { csrfToken } from '../../../src/session/csrf.js';

// The rotation runbook (docs/security.md), step by step: [old] → [new, old] → [new].
let redis: TestRedis;
let oldOnly: TestNode, both: TestNode, newOnly: TestNode;
beforeAll(async () => {
  redis = await startTestRedis();
  [oldOnly, both, newOnly] = await Promise.all([
    startNode({ REDIS_URL: redis.url, NODE_ID: 'old', SESSION_SECRETS: SECRET_A }),
    startNode({ REDIS_URL: redis.url, NODE_ID: 'both', SESSION_SECRETS: `${SECRET_B},${SECRET_A}` }),
    startNode({ REDIS_URL: redis.url, NODE_ID: 'new', SESSION_SECRETS: SECRET_B }),
  ]);
});
afterAll(async () => {
  await Promise.all([oldOnly, both, newOnly].map((n) => n?.close()));
  await redis?.stop();
});

const signedValue = (c: Client) => decodeURIComponent(c.cookies.get('sid')!).slice(2);

it('cookies signed with the old secret keep working while it is listed, and stop once it is removed', async () => {
  const c = new Client(oldOnly.url);
  await c.login('user1');
  expect(unsign(signedValue(c), SECRET_A)).not.toBe(false);

  expect((await c.on(both.url).get('/api/me')).status).toBe(200); // [new, old] verifies old
  expect((await c.on(newOnly.url).get('/api/me')).status).toBe(401); // [new] alone does not
});

it('new cookies are signed with the first secret', async () => {
  const c = new Client(both.url);
  await c.login('user2');
  const value = signedValue(c);
  expect(unsign(value, SECRET_B)).not.toBe(false);
  expect(unsign(value, SECRET_A)).toBe(false);
  expect((await c.on(newOnly.url).get('/api/me')).status).toBe(200);
  expect(value).toBe(sign(value.split('.')[0]!, SECRET_B));
});

it('a CSRF token issued under the old secret keeps working while it is listed (a page open across the roll), and one from no listed secret is refused', async () => {
  const c = new Client(oldOnly.url);
  await c.login('user3');
  const oldToken = c.csrf!;
  const rolled = c.on(both.url); // [new, old]: the session and its old token, on a rolled node
  expect(rolled.csrf).toBe(oldToken);
  const added = await rolled.post('/api/cart/items', { sku: 'apple', qty: 1 });
  expect(added.status).toBe(201);
  // The same session's token under a secret no node lists: refused, so the check did run.
  const sid = signedValue(c).split('.')[0]!;
  expect(csrfToken(SECRET_A, sid)).toBe(oldToken);
  const unlisted = csrfToken('c0ffee' + SECRET_B.slice(6), sid);
  const forged = await rolled.post('/api/cart/items', { sku: 'apple', qty: 1 }, { 'x-csrf-token': unlisted });
  expect(forged.status).toBe(403);
  expect((await rolled.post('/api/logout', {})).status).toBe(200);
});
