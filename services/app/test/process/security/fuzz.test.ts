import zlib from 'node:zlib';
import { sign } from 'cookie-signature';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { SECRET_A, startNode, type TestNode } from '../../../../../testkit/node.js';
import { raw } from '../../../../../testkit/raw.js';
import { MAX_REQUEST_HEADER_BYTES } from '../../../src/http/server.js';
import { waitFor } from '../../../../../testkit/ports.js';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';
import { startTestPostgres, type TestPostgres } from '../../../../../testkit/postgres.js';
import pg from 'pg';

// Hostile input against a node backed by real Redis: random and malformed cookies, *validly
// signed* cookies for unknown, logged-out and expired ids, signatures, JSON bodies, compressed
// bodies, CSRF tokens, content types, origins, header sizes, and request paths (health, metrics
// and static files under every spelling). No crash, no 500, no hang, no session adopted, nothing
// internal served, and the node keeps serving a valid session afterwards. Every case must run:
// the count is asserted, and FUZZ_RUNS below the floor is refused rather than passing on nothing.
//
// The store under the node: shared mode's Redis, or database mode's PostgreSQL (FUZZ_STORE=database,
// set by fuzz-database.test.ts): the same hostile cookies against both server-side stores.
const STORE = process.env.FUZZ_STORE === 'database' ? 'database' : 'shared';
let redis: TestRedis | undefined;
let postgres: TestPostgres | undefined;
let node: TestNode;
let victim: Client;
let ran = 0;
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const FLOOR = 100;

/** Validly signed session cookies whose ids must never be adopted. */
const signedIds: { unknown: string[]; loggedOut: string[]; expired: string[] } = { unknown: [], loggedOut: [], expired: [] };
const signed = (id: string) => `sid=${encodeURIComponent(`s:${sign(id, SECRET_A)}`)}`;

beforeAll(async () => {
  if (!Number.isInteger(RUNS) || RUNS < FLOOR) throw new Error(`FUZZ_RUNS must be a whole number of at least ${FLOOR}; got ${process.env.FUZZ_RUNS}`);
  const limits = { LOGIN_MAX_FAILURES: '1000', LOGIN_MAX_FAILURES_PER_CLIENT: '100000', LOGIN_MAX_FAILURES_PER_ACCOUNT: '100000' };
  let forget: (sid: string) => Promise<unknown>;
  let closeStore: () => Promise<unknown>;
  if (STORE === 'database') {
    postgres = await startTestPostgres();
    node = await startNode({ SESSION_MODE: 'database', DATABASE_URL: postgres.url, NODE_ID: 'fuzz', ...limits });
    await waitFor('the schema', async () => (await fetch(node.internalUrl + '/readyz')).status === 200, 15_000);
    const sql = new pg.Client({ connectionString: postgres.url });
    await sql.connect();
    forget = (sid) => sql.query('DELETE FROM sessions WHERE sid = $1', [sid]);
    closeStore = () => sql.end();
  } else {
    redis = await startTestRedis();
    node = await startNode({ REDIS_URL: redis.url, NODE_ID: 'fuzz', ...limits });
    const sessions = new Redis(redis.url);
    forget = (sid) => sessions.del(`s:${sid}`);
    closeStore = async () => sessions.disconnect();
  }
  victim = new Client(node.url);
  await victim.login('user1');
  for (let i = 0; i < 5; i++) {
    signedIds.unknown.push(`unknown-${i}-${'x'.repeat(20)}`);
    const out = new Client(node.url);
    await out.login(`user${i + 2}`);
    signedIds.loggedOut.push(out.sessionId());
    await out.post('/api/logout');
    const gone = new Client(node.url);
    await gone.login(`user${i + 7}`);
    signedIds.expired.push(gone.sessionId());
    await forget(gone.sessionId()); // what an idle expiry leaves: a valid signature, no session
  }
  await closeStore();
});
afterAll(async () => {
  await node?.close();
  await redis?.stop();
  await postgres?.stop();
});

/** Every key of Object.prototype: a username looked up with `in` on a plain object once answered 500 for each. */
const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);
const b64 = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=%.'.split('')), maxLength: 80 });
const latin1 = (max: number) =>
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((c) => c !== 0x7f)
      .map((c) => String.fromCharCode(c)),
    maxLength: max,
  });
const cookieValue = fc.oneof(
  latin1(200),
  b64,
  b64.map((v) => `s:${v}`),
  fc.tuple(b64, b64).map(([id, sig]) => `s%3A${id}.${sig}`),
  fc.nat({ max: 9000 }).map((n) => 'A'.repeat(n)),
);
const signedCookie = fc
  .constantFrom('unknown', 'loggedOut', 'expired')
  .chain((kind) => fc.nat({ max: 4 }).map((i) => ({ kind, cookie: signed(signedIds[kind as keyof typeof signedIds][i]!) })));
const cookieHeader = fc.oneof(
  cookieValue.map((v) => ({ kind: 'random', cookie: `sid=${v}` })),
  signedCookie,
  signedCookie,
  fc
    .array(fc.tuple(fc.constantFrom('sid', '__Host-sid', 'scroute', 'device', 'x', ''), cookieValue), { maxLength: 5 })
    .map((kv) => ({ kind: 'random', cookie: kv.map(([k, v]) => `${k}=${v}`).join('; ') })),
);
const bodyText = fc.oneof(
  fc.json({ maxDepth: 4 }),
  latin1(300),
  fc
    .record({
      username: fc.oneof(fc.string(), fc.constantFrom(...PROTOTYPE_KEYS), fc.integer(), fc.constant(null), fc.array(fc.string())),
      password: fc.oneof(fc.string(), fc.object()),
    })
    .map((o) => JSON.stringify(o)),
  fc.record({ sku: fc.oneof(fc.string(), fc.integer()), qty: fc.oneof(fc.integer(), fc.double(), fc.string()) }).map((o) => JSON.stringify(o)),
);
const encoding = fc.constantFrom('', 'identity', 'gzip', 'deflate', 'br', 'x-gzip', 'GZIP', 'gzip, gzip', 'compress', 'garbage');
/** A body, compressed as declared (sometimes), or declared compressed and not (the corrupt case). */
const body = fc.tuple(bodyText, encoding, fc.boolean()).map(([text, enc, honest]) => {
  const bytes = Buffer.from(text, 'latin1');
  const compress = { gzip: zlib.gzipSync, 'x-gzip': zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync }[enc.toLowerCase()];
  return { encoding: enc, bytes: honest && compress ? compress(bytes) : bytes };
});
const paths = [
  '/api/me',
  '/api/login',
  '/api/logout',
  '/api/cart',
  '/api/cart/items',
  '/api/sessions',
  '/api/%zz',
  '/api/me?x=%E0',
  '/API/ME',
  // Health and metrics live on the internal port only; static files must not escape their folder.
  '/healthz',
  '/readyz',
  '/HEALTHZ',
  '/Readyz',
  '/healthz/',
  '/readyz/',
  '/%68ealthz',
  '/healthz%2f',
  '/readyz;x',
  '/metrics',
  '/METRICS/',
  '/',
  '/index.html',
  '/INDEX.HTML',
  '/app.js',
  '/app.js/',
  '/./app.js',
  '/%2e%2e/package.json',
  '/..%2fpackage.json',
  '/.env',
  '/public/../../package.json',
];
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'HEAD', 'OPTIONS'),
  path: fc.constantFrom(...paths),
  cookie: cookieHeader,
  body: fc.option(body),
  contentType: fc.constantFrom(
    'application/json',
    'text/plain',
    'application/json; charset=utf-16',
    'application/json; charset=latin1',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '',
  ),
  csrf: fc.option(fc.oneof(latin1(60), fc.constant('é'.repeat(43)), b64)),
  origin: fc.option(fc.constantFrom('null', 'http://evil.example', 'https://127.0.0.1', 'http://127.0.0.1', 'file://', '%%%', 'http://[::1]:1')),
  fetchSite: fc.option(fc.constantFrom('same-origin', 'cross-site', 'same-site', 'none', 'bogus')),
});

it(`survives ${RUNS} hostile requests with no 500, no hang, no adopted session and nothing internal served`, async () => {
  await fc.assert(
    fc.asyncProperty(request, async (req) => {
      const headers: Record<string, string> = { cookie: req.cookie.cookie };
      if (req.contentType) headers['content-type'] = req.contentType;
      if (req.csrf !== null) headers['x-csrf-token'] = req.csrf;
      if (req.origin !== null) headers.origin = req.origin;
      if (req.fetchSite !== null) headers['sec-fetch-site'] = req.fetchSite;
      const sendBody = req.body !== null && req.method !== 'GET' && req.method !== 'HEAD';
      if (sendBody && req.body!.encoding) headers['content-encoding'] = req.body!.encoding;
      const res = await raw(node.url, { method: req.method, path: req.path, headers, body: sendBody ? req.body!.bytes : undefined });
      ran++;
      const what = `${req.method} ${req.path} [${req.cookie.kind}] → ${res.status} ${res.body.slice(0, 200)}`;
      expect(res.status, what).toBeLessThan(500);
      expect(res.body, what).not.toMatch(/node_modules|at [\w.<>]+ \(|"status":"(ok|ready)"|session_cluster_|"name":\s*"session-cluster|SESSION_SECRETS/);
      // A request that did not log in never gets a user back, and a signed but dead id is never adopted.
      if (req.path.toLowerCase() !== '/api/login') expect(res.body, what).not.toMatch(/"user":/);
      const setSid = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('sid='));
      if (setSid && req.cookie.kind !== 'random') expect(setSid, what).not.toContain(req.cookie.cookie.slice(4, 40));
    }),
    { numRuns: RUNS },
  );
  expect(ran).toBe(RUNS);
  // The node still serves a valid session, with its state intact.
  const me = await victim.get('/api/me');
  expect(me.status).toBe(200);
  expect(me.body.user).toBe('user1');
}, 240_000);

it('every Object.prototype key as a username is an unknown user: 401 BAD_CREDENTIALS, never a 500', async () => {
  expect(PROTOTYPE_KEYS).toEqual(expect.arrayContaining(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']));
  for (const username of PROTOTYPE_KEYS) {
    const r = await raw(node.url, {
      method: 'POST',
      path: '/api/login',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ username, password: 'x' })),
    });
    expect(`${username}: ${r.status} ${r.body}`).toBe(`${username}: 401 {"error":{"code":"BAD_CREDENTIALS","message":"Invalid username or password."}}`);
  }
}, 60_000);

it('validly signed cookies for unknown, logged-out and expired ids are never adopted, on any route', async () => {
  for (const [kind, ids] of Object.entries(signedIds)) {
    expect(ids.length, kind).toBe(5);
    for (const id of ids) {
      for (const path of ['/api/me', '/api/cart', '/api/sessions']) {
        const r = await raw(node.url, { method: 'GET', path, headers: { cookie: signed(id) } });
        expect(r.status, `${kind} ${path}`).toBe(401);
      }
      const login = await raw(node.url, {
        method: 'POST',
        path: '/api/login',
        headers: { cookie: signed(id), 'content-type': 'application/json' },
        body: Buffer.from('{"username":"user20","password":"pass20"}'),
      });
      expect(login.status).toBe(200);
      const issued = [login.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('sid='))!;
      expect(decodeURIComponent(issued)).not.toContain(id); // a fresh id, not the one the client chose
    }
  }
});

it("headers up to nginx's limits are read (a garbage cookie is anonymous); beyond the node's own, the HTTP layer refuses them, not a crash", async () => {
  // nginx forwards up to 4 header lines of 16 KiB (nginx.conf); the node accepts all of that (http/server.ts).
  const within = await fetch(node.url + '/api/me', { headers: { cookie: `sid=${'x'.repeat(15_000)}`, 'x-a': 'a'.repeat(15_000), 'x-b': 'b'.repeat(15_000) } });
  expect(within.status).toBe(401);
  const beyond = await raw(node.url, { method: 'GET', path: '/api/me', headers: { cookie: `sid=${'x'.repeat(MAX_REQUEST_HEADER_BYTES)}` } });
  expect(beyond.status).toBe(431);
  expect((await fetch(node.url + '/api/ping')).status).toBe(200);
});
