import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { startTestPostgres, type TestPostgres } from '../../../../../testkit/postgres.js';
import { waitFor } from '../../../../../testkit/ports.js';

// database mode: two nodes, one real PostgreSQL. The same guarantees as the Redis store: any node
// serves any session, concurrent writes merge, a destroyed session stays destroyed.
let db: TestPostgres;
let a: TestNode;
let b: TestNode;
let sql: pg.Pool;
beforeAll(async () => {
  db = await startTestPostgres();
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
  sql.on('error', () => {}); // its idle connections break when the test kills PostgreSQL
  const start = (id: string) => startNode({ SESSION_MODE: 'database', DATABASE_URL: db.url, NODE_ID: id, SESSION_IDLE_TIMEOUT: '30' });
  [a, b] = await Promise.all([start('db-a'), start('db-b')]);
  await waitFor('both nodes ready (schema created)', async () => (await Promise.all([a, b].map((n) => fetch(n.internalUrl + '/readyz')))).every((r) => r.status === 200), 15_000);
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await sql?.end();
  await db?.stop();
});

/** Statements the nodes sent, by name (their session_cluster_db_queries_total), summed. */
async function queries(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of [a, b]) {
    const text = await n.metrics.registry.getSingleMetricAsString('session_cluster_db_queries_total');
    for (const m of text.matchAll(/statement="([^"]+)"[^}]*\} (\d+)/g)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  }
  return out;
}
const delta = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).flatMap(([k, v]) => (v - (before[k] ?? 0) > 0 ? [[k, v - (before[k] ?? 0)]] : [])));

describe('the contract on PostgreSQL', () => {
  it('login on one node, counter and cart on the other, list, logout: the row is the session', async () => {
    const c = new Client(a.url);
    expect((await c.login('user1')).status).toBe(200);
    const row = await sql.query('SELECT user_name, node FROM sessions WHERE user_name = $1', ['user1']);
    expect(row.rows).toEqual([{ user_name: 'user1', node: 'db-a' }]);
    expect((await c.get('/api/me')).body.requests).toBe(1);
    const onB = c.on(b.url);
    expect((await onB.get('/api/me')).body).toMatchObject({ user: 'user1', node: 'db-b', mode: 'database', requests: 2 });
    expect((await onB.post('/api/cart/items', { sku: 'apple', qty: 2 })).status).toBe(201);
    expect((await c.get('/api/cart')).body.count).toBe(2);
    const list = await c.get('/api/sessions');
    expect(list.body.sessions).toHaveLength(1);
    expect(list.body.sessions[0]).toMatchObject({ node: 'db-a', current: true });
    expect((await c.post('/api/logout', {})).status).toBe(200);
    expect((await sql.query('SELECT count(*)::int AS n FROM sessions WHERE user_name = $1', ['user1'])).rows[0].n).toBe(0);
    expect((await onB.get('/api/me')).status).toBe(401);
  });

  it('costs one statement per read, one more per counted write, and states what a login costs', async () => {
    const c = new Client(a.url);
    await c.login('user2');
    let before = await queries();
    await c.get('/api/cart');
    expect(delta(before, await queries())).toEqual({ session_read: 1 });
    before = await queries();
    await c.get('/api/me');
    expect(delta(before, await queries())).toEqual({ session_read: 1, session_cas: 1 });
    before = await queries();
    await new Client(b.url).login('user2');
    const login = delta(before, await queries());
    console.log(`database mode: a login sends ${JSON.stringify(login)}`);
    // The budgets reserved before the hash and settled after it (login-limiter.ts), the session, the cap.
    expect(login).toEqual({ login_reserve: 1, session_insert: 1, index_cap: 1, login_settle: 1 });
  });
});

describe('concurrency', () => {
  it('simultaneous counted reads and cart adds on both nodes lose nothing (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const c = new Client(a.url);
      await c.login('user3');
      const skus = Array.from({ length: 10 }, (_, i) => `r${round}-${i}`);
      const replies = await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => c.on(i % 2 ? a.url : b.url).get('/api/me')),
        ...skus.map((sku, i) => c.on(i % 2 ? a.url : b.url).post('/api/cart/items', { sku, qty: 1 })),
      ]);
      const ok = replies.filter((r) => r.status === 200 || r.status === 201);
      expect(ok.length, `round ${round}: ${replies.map((r) => r.status).join(',')}`).toBe(replies.length);
      const cart = await c.get('/api/cart');
      expect(cart.body.items.map((i: { sku: string }) => i.sku).sort()).toEqual([...skus].sort());
      expect((await c.get('/api/me')).body.requests).toBe(21);
    }
  });

  it('a destroyed session stays destroyed: 16 requests racing the logout, none writes it back (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const victim = new Client(a.url);
      await victim.login('user4');
      const sid = (await sql.query('SELECT sid FROM sessions WHERE user_name = $1', ['user4'])).rows[0].sid as string;
      const racing = Promise.all(Array.from({ length: 16 }, (_, i) => victim.on(i % 2 ? a.url : b.url).get('/api/me')));
      expect((await victim.post('/api/logout', {})).status).toBe(200);
      for (const r of await racing) expect([200, 401]).toContain(r.status);
      expect((await sql.query('SELECT count(*)::int AS n FROM sessions WHERE sid = $1', [sid])).rows[0].n, `round ${round}`).toBe(0);
      const after = await Promise.all(Array.from({ length: 8 }, (_, i) => victim.on(i % 2 ? a.url : b.url).get('/api/me')));
      expect(after.map((r) => r.status)).toEqual(after.map(() => 401));
    }
  });
});

describe('login budgets in PostgreSQL (login_reserve)', () => {
  const guess = (n: TestNode, username: string, password: string) => new Client(n.url).post('/api/login', { username, password });
  const budget = () => a.config.loginLimits.maxFailures;

  it('after the budget of failures for one username, spread over both nodes, even the right password is 429 + Retry-After on both', async () => {
    for (let i = 0; i < budget(); i++) expect((await guess(i % 2 ? b : a, 'user11', `wrong-${i}`)).status).toBe(401);
    for (const n of [a, b]) {
      const r = await guess(n, 'user11', 'pass11');
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('RATE_LIMITED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('of 40 simultaneous guesses over both nodes at most the rest of the budget are hashed, every round (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const user = `user${12 + round}`;
      // One guess first, so the budget's rows exist and the 40 meet on them, not on creating them.
      expect((await guess(b, user, 'first-wrong')).status).toBe(401);
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => guess(i % 2 ? b : a, user, `wrong-${i}`)));
      const statuses = replies.map((r) => r.status);
      // Hashed = answered 401. A reservation that times out on a loaded machine (503) fails closed.
      expect(statuses.filter((s) => s === 401).length, statuses.join(',')).toBeLessThanOrEqual(budget() - 1);
      expect(statuses.every((s) => s === 401 || s === 429 || s === 503)).toBe(true);
      expect((await guess(a, user, user.replace('user', 'pass'))).status, `round ${round}`).toBe(429);
    }
  });
});

describe('expiry and failure', () => {
  it('expired rows are never read and are pruned through the expiry index', async () => {
    const c = new Client(a.url);
    await c.login('user5');
    await sql.query("UPDATE sessions SET expires = now() - interval '1 second' WHERE user_name = 'user5'");
    // A read that writes nothing (the cart) as well as one that counts: the row is not read, not only not written.
    expect((await c.get('/api/cart')).status).toBe(401);
    expect((await c.get('/api/me')).status).toBe(401);
    // The janitor's statement can use the expiry index (on a table this small the planner prefers a
    // scan; with scans priced out it shows it has the index to use).
    const conn = await sql.connect();
    try {
      await conn.query('SET enable_seqscan = off');
      const plan = await conn.query('EXPLAIN SELECT sid FROM sessions WHERE expires < now() LIMIT 1000');
      expect(plan.rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n')).toMatch(/Index (Only )?Scan (using|on) sessions_expires/);
    } finally {
      conn.release(true);
    }
    const store = a.handle.sessions.store as unknown as { prune(): Promise<number> };
    expect(await store.prune()).toBeGreaterThanOrEqual(1);
    expect((await sql.query("SELECT count(*)::int AS n FROM sessions WHERE user_name = 'user5'")).rows[0].n).toBe(0);
  });

  it('a read extends the idle expiry once less than 90 % of the idle timeout is left, even when that timeout is under a minute, and not before', async () => {
    // These nodes run with an idle timeout of 30 s: a read refreshes once less than 27 s are left.
    const c = new Client(a.url);
    await c.login('user20');
    const left = async () => Number((await sql.query("SELECT extract(epoch FROM expires - now()) AS s FROM sessions WHERE user_name = 'user20'")).rows[0].s);
    // 29.9 s left: too fresh to be worth a row version; the read (milliseconds later) writes nothing.
    await sql.query("UPDATE sessions SET expires = now() + interval '29.9 seconds' WHERE user_name = 'user20'");
    const pinned = (await sql.query("SELECT expires FROM sessions WHERE user_name = 'user20'")).rows[0].expires as Date;
    expect((await c.get('/api/cart')).status).toBe(200);
    expect((await sql.query("SELECT expires FROM sessions WHERE user_name = 'user20'")).rows[0].expires).toEqual(pinned);
    // 5 s left: a session in use, only read, must not run out; the read puts it back at 30 s.
    await sql.query("UPDATE sessions SET expires = now() + interval '5 seconds' WHERE user_name = 'user20'");
    expect((await c.on(b.url).get('/api/cart')).status).toBe(200);
    expect(await left()).toBeGreaterThan(25);
  });

  it('PostgreSQL killed: 503 STORE_UNAVAILABLE with Retry-After within the timeout, readiness 503; back by itself', async () => {
    const c = new Client(a.url);
    await c.login('user6');
    await db.kill();
    try {
      for (const call of [() => c.get('/api/me'), () => new Client(a.url).login('user7')]) {
        const started = Date.now();
        const r = await call();
        expect(r.status).toBe(503);
        expect(r.body.error.code).toBe('STORE_UNAVAILABLE');
        expect(r.headers.get('retry-after')).toBe('1');
        expect(Date.now() - started).toBeLessThan(2500);
      }
      expect((await fetch(a.internalUrl + '/readyz')).status).toBe(503);
    } finally {
      await db.restart();
    }
    await waitFor('readyz 200 after PostgreSQL restart', async () => (await fetch(a.internalUrl + '/readyz')).status === 200, 20_000);
    // Durable: the session written before the crash is still there.
    await waitFor('the old session readable again', async () => (await c.get('/api/me')).status === 200, 10_000);
  });
});
