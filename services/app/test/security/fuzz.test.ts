import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../support/client.js';
import { startNode, type TestNode } from '../support/node.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

// Hostile input against a node backed by real Redis: random and malformed cookies, signatures,
// ids, JSON bodies and header sizes. No crash, no 500, no hang, no session adopted, and the
// node keeps serving a valid session afterwards.
let redis: TestRedis;
let node: TestNode;
let victim: Client;
let ran = 0;
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

beforeAll(async () => {
  redis = await startTestRedis();
  node = await startNode({ REDIS_URL: redis.url, NODE_ID: 'fuzz', LOGIN_MAX_FAILURES: '1000', LOGIN_MAX_FAILURES_PER_CLIENT: '100000' });
  victim = new Client(node.url);
  await victim.login('user1');
});
afterAll(async () => {
  console.log(`fuzz: ${ran} hostile requests`);
  await node?.close();
  await redis?.stop();
});

const b64 = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=%.'.split('')), maxLength: 80 });
const cookieValue = fc.oneof(
  fc.string({ maxLength: 200 }),
  b64,
  b64.map((v) => `s:${v}`),
  fc.tuple(b64, b64).map(([id, sig]) => `s%3A${id}.${sig}`),
  fc.string({ unit: 'binary', maxLength: 100 }).map(encodeURIComponent),
  fc.nat({ max: 9000 }).map((n) => 'A'.repeat(n)),
);
const cookieHeader = fc.oneof(
  cookieValue.map((v) => `sid=${v}`),
  fc.array(fc.tuple(fc.constantFrom('sid', '__Host-sid', 'scroute', 'x', ''), cookieValue), { maxLength: 5 }).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join('; ')),
  fc.string({ unit: 'grapheme-ascii', maxLength: 300 }),
);
const body = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 300 }),
  fc.record({ username: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string())), password: fc.oneof(fc.string(), fc.object()) }).map((o) => JSON.stringify(o)),
  fc.record({ sku: fc.oneof(fc.string(), fc.integer()), qty: fc.oneof(fc.integer(), fc.double(), fc.string()) }).map((o) => JSON.stringify(o)),
);
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
  path: fc.constantFrom('/api/me', '/api/login', '/api/logout', '/api/cart', '/api/cart/items', '/api/sessions', '/api/%zz', '/api/me?x=%E0'),
  cookie: cookieHeader,
  body: fc.option(body),
  contentType: fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', ''),
  csrf: fc.option(fc.string({ maxLength: 60 })),
});

/** Header values fetch refuses to send are not interesting here: drop what is not a legal header value. */
const legal = (v: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v);

it(`survives ${RUNS} hostile requests with no 500, no hang and no adopted session`, async () => {
  await fc.assert(
    fc.asyncProperty(request, async (req) => {
      const headers: Record<string, string> = {};
      if (legal(req.cookie)) headers.cookie = req.cookie;
      if (req.contentType) headers['content-type'] = req.contentType;
      if (req.csrf !== null && legal(req.csrf)) headers['x-csrf-token'] = req.csrf;
      const hasBody = req.body !== null && req.method !== 'GET';
      const res = await fetch(node.url + req.path, { method: req.method, headers, body: hasBody ? req.body! : undefined, signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      ran++;
      expect(res.status, `${req.method} ${req.path} → ${res.status} ${text.slice(0, 200)}`).toBeLessThan(500);
      expect(text).not.toMatch(/node_modules|at [\w.]+ \(/);
      // A request that did not log in never gets a user back.
      if (req.path !== '/api/login') expect(text).not.toMatch(/"user":/);
    }),
    { numRuns: RUNS, interruptAfterTimeLimit: 60_000 },
  );
  // The node still serves a valid session, with its state intact.
  const me = await victim.get('/api/me');
  expect(me.status).toBe(200);
  expect(me.body.user).toBe('user1');
}, 120_000);

it('oversized headers are refused by the HTTP layer, not by a crash', async () => {
  const res = await fetch(node.url + '/api/me', { headers: { cookie: `sid=${'x'.repeat(20_000)}` } }).catch((e: Error) => e);
  if (res instanceof Error) throw res;
  expect(res.status).toBe(431);
  expect((await fetch(node.url + '/api/ping')).status).toBe(200);
});
