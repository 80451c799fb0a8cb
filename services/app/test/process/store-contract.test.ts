import http from 'node:http';
import express from 'express';
import session, { Cookie, type SessionData, type Store } from 'express-session';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodec } from '../../src/session/stores/codec.js';
import { LocalSessionStore } from '../../src/session/stores/local-store.js';
import { appMergePolicy } from '../../src/session/stores/merge.js';
import { noopObserver } from '../../src/session/stores/observer.js';
import { PgSessionStore, SCHEMA } from '../../src/session/stores/pg-store.js';
import { SharedSessionStore } from '../../src/session/stores/shared-store.js';
import { SECRET_A } from '../../../../testkit/node.js';
import { waitFor } from '../../../../testkit/ports.js';
import { startTestPostgres, type TestPostgres } from '../../../../testkit/postgres.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';

// The store contract, for every store of every mode: the scenarios of connect-redis's own test
// suite (its lifecycle test, ported as it is) and of express-session's (a store behind the real
// middleware). Deliberate deviations are listed in docs/store-contract.md; each one is asserted
// here as the behaviour it is, not skipped.

let redis: TestRedis;
let client: Redis;
let postgres: TestPostgres;
let pool: pg.Pool;
beforeAll(async () => {
  [redis, postgres] = await Promise.all([startTestRedis(), startTestPostgres()]);
  client = new Redis(redis.url);
  pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on('error', () => {});
  // The server accepts connections before it accepts queries ("the database system is starting up").
  await waitFor(
    'PostgreSQL answers queries',
    () =>
      pool.query(SCHEMA).then(
        () => true,
        () => false,
      ),
    30_000,
  );
}, 90_000);
afterAll(async () => {
  client?.disconnect();
  await pool?.end();
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

const cookie = { path: '/', httpOnly: true, secure: false, sameSite: 'lax' as const };
const codec = createCodec(cookie);
const IDLE = 86400; // connect-redis's default TTL, so its lifecycle test runs unchanged

interface Subject {
  name: string;
  /** A store on the subject's backend (its idle timeout IDLE unless given). */
  make(idleTimeoutS?: number): Store & { length(cb?: any): any; ids?(cb?: any): any };
  /** Seconds the store will keep `sid` (not extending it; at most 0, or -2, once gone), or null where the store has no TTL to read. */
  ttl(sid: string): Promise<number | null>;
  /** Stores a payload that does not decode under `sid`, behind the store's back (where the test can reach the backend). */
  corrupt?(sid: string): Promise<unknown>;
  /** True while the backend holds `sid` as a live session (read without extending it). */
  holds(sid: string): Promise<boolean>;
  /** Two stores made here are two nodes on one backend (false: each store has its own memory). */
  sharedBackend: boolean;
}

/** The memory store made last, whose entries the sticky subject's ttl() and holds() read. */
let local: { store: LocalSessionStore; idleTimeoutS: number } | undefined;

const subjects: Subject[] = [
  {
    name: 'shared (Redis)',
    make: (idleTimeoutS = IDLE) => new SharedSessionStore(client, { prefix: 'sess:', idleTimeoutS, codec, observer: noopObserver, merge: appMergePolicy }),
    ttl: (sid) => client.ttl(`sess:${sid}`),
    corrupt: (sid) => client.set(`sess:${sid}`, '{not json'),
    holds: async (sid) => (await client.exists(`sess:${sid}`)) === 1,
    sharedBackend: true,
  },
  {
    name: 'sticky (memory)',
    make: (idleTimeoutS = IDLE) => {
      local = { store: new LocalSessionStore({ idleTimeoutS, codec, observer: noopObserver, merge: appMergePolicy }), idleTimeoutS };
      return local.store;
    },
    // lastSeen() is the entry's expiry less the idle timeout.
    ttl: async (sid) => {
      const seen = local!.store.lastSeen(sid);
      return seen === undefined ? -2 : Math.ceil((seen + local!.idleTimeoutS * 1000 - Date.now()) / 1000);
    },
    holds: async (sid) => local!.store.has(sid),
    sharedBackend: false,
  },
  {
    name: 'database (PostgreSQL)',
    make: (idleTimeoutS = IDLE) => new PgSessionStore(pool, { idleTimeoutS, codec, observer: noopObserver, merge: appMergePolicy }),
    ttl: async (sid) => {
      const r = await pool.query('SELECT ceil(extract(epoch FROM expires - now()))::int AS s FROM sessions WHERE sid = $1', [sid]);
      return (r.rows[0] as { s: number } | undefined)?.s ?? -2;
    },
    corrupt: (sid) => pool.query("INSERT INTO sessions (sid, sess, expires) VALUES ($1, '{not json', now() + interval '1 hour')", [sid]),
    holds: async (sid) => (await pool.query('SELECT 1 FROM sessions WHERE sid = $1 AND expires > now()', [sid])).rowCount === 1,
    sharedBackend: true,
  },
];

describe.each(subjects)('$name store: connect-redis lifecycle', (subject) => {
  it('set/get/ttl/touch/length/ids/all/destroy/clear, with promises', async () => {
    const store = subject.make() as any;
    await store.clear();

    const sess = { foo: 'bar' };
    await store.set('123', sess);
    expect(await store.get('123')).toEqual(sess); // exactly what was set: no cookie invented, nothing dropped
    const t1 = await subject.ttl('123');
    if (t1 !== null) expect(t1).toBeGreaterThanOrEqual(IDLE - 1);

    let expires = new Date(Date.now() + 60_000).toISOString();
    await store.set('456', { cookie: { expires } });
    const t2 = await subject.ttl('456');
    if (t2 !== null) expect(t2).toBeLessThanOrEqual(60);

    const expires2 = new Date(Date.now() + 90_000).toISOString();
    await store.touch('456', { cookie: { expires: expires2 } });
    const t3 = await subject.ttl('456');
    if (t3 !== null) expect(t3).toBeGreaterThan(60);

    expect(await store.length()).toBe(2);
    expect((await store.ids()).sort()).toEqual(['123', '456']);
    const all = (await store.all()).sort((a: any, b: any) => (a.id > b.id ? 1 : -1));
    expect(all).toEqual([
      { id: '123', foo: 'bar' },
      { id: '456', cookie: { expires } },
    ]);

    await store.destroy('456');
    expect(await store.length()).toBe(1);
    await store.clear();
    expect(await store.length()).toBe(0);

    const count = 1000;
    const c = new Cookie();
    for (let sid = 0; sid < count; sid++) {
      c.expires = new Date(Date.now() + 10_000); // connect-redis uses 1 s: too tight for 1,000 writes on a loaded 2-core machine
      await store.set(`s${sid}`, { cookie: c });
    }
    expect(await store.length()).toBe(count);
    await store.clear();
    expect(await store.length()).toBe(0);

    expires = new Date(Date.now() + 90_000).toISOString();
    await store.set('789', { cookie: { expires } });
    expect(await store.length()).toBe(1);
    expires = new Date(Date.now() - 90_000).toISOString(); // in the past: the session is deleted
    await store.set('789', { cookie: { expires } });
    expect(await store.length()).toBe(0);
  });

  it('the same lifecycle with callbacks', async () => {
    const store = subject.make();
    const call = <T>(fn: (cb: (err: unknown, data?: T) => void) => unknown) => new Promise<T>((ok, fail) => fn((err, data) => (err ? fail(err) : ok(data as T))));
    await call((cb) => store.clear!(cb));
    await call((cb) => store.set('cb1', { n: 1 } as any, cb));
    expect(await call((cb) => store.get('cb1', cb))).toEqual({ n: 1 });
    expect(await call((cb) => store.get('missing', cb))).toBeNull();
    await call((cb) => store.destroy('cb1', cb));
    expect(await call((cb) => store.get('cb1', cb))).toBeNull();
    await call((cb) => store.clear!(cb));
  });

  it('all() skips an entry that does not decode instead of throwing', async () => {
    const store = subject.make() as any;
    await store.clear();
    await store.set('good', { ok: true });
    if (subject.corrupt) {
      await subject.corrupt('bad');
      expect((await store.all()).map((s: any) => s.id)).toEqual(['good']);
      expect(await store.get('bad')).toBeNull();
    } else {
      expect((await store.all()).map((s: any) => s.id)).toEqual(['good']); // the memory store holds only what it encoded
    }
    await store.clear();
  });
});

/** The session stored under `sid`, loaded as express-session loads it for a request (the store remembers what it read). */
const load = (store: Store, sid: string) => new Promise<any>((ok, fail) => store.load(sid, (err: unknown, s: any) => (err ? fail(err) : ok(s))));

describe.each(subjects)('$name store: expiry, and merges of concurrent saves', (subject) => {
  it('touch with a cookie expiry moves the TTL to that expiry (not to the idle timeout); a read extends it to the idle timeout', async () => {
    const store = subject.make() as any;
    await store.clear();
    await store.set('tt', { cookie: { expires: new Date(Date.now() + 60_000).toISOString() } });
    await store.touch('tt', { cookie: { expires: new Date(Date.now() + 90_000).toISOString() } });
    const touched = await subject.ttl('tt');
    expect(touched).toBeGreaterThan(60);
    expect(touched).toBeLessThanOrEqual(90);

    // A session with an hour left (the touch of a cookie expiry set it so) is extended by a read.
    await store.set('rd', { n: 1 });
    await store.touch('rd', { cookie: { expires: new Date(Date.now() + 3_600_000).toISOString() } });
    expect(await subject.ttl('rd')).toBeLessThanOrEqual(3600);
    expect(await store.get('rd')).toEqual({ n: 1 });
    expect(await subject.ttl('rd')).toBeGreaterThanOrEqual(IDLE - 2);
    await store.clear();
  });

  it('a set of a session the store never loaded replaces the TTL of what was there, as SET EX does', async () => {
    const store = subject.make() as any;
    await store.clear();
    await store.set('re', { n: 1 });
    expect(await subject.ttl('re')).toBeGreaterThanOrEqual(IDLE - 2);
    await store.set('re', { n: 2, cookie: { expires: new Date(Date.now() + 60_000).toISOString() } });
    const ttl = await subject.ttl('re');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    expect((await store.get('re')).n).toBe(2);
    await store.clear();
  });

  it('neither a save nor a touch brings back a session that expired while the request ran', async () => {
    const store = subject.make(1) as any; // an idle timeout of 1 s
    await store.clear();
    await store.set('exp', { v: 1 });
    const loaded = await load(store, 'exp');
    await waitFor('the session to expire', async () => !(await subject.holds('exp')), 5000, 25);
    loaded.v = 2;
    await expect(store.set('exp', loaded)).rejects.toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    await store.touch('exp', { cookie: { expires: new Date(Date.now() + 60_000).toISOString() } });
    expect(await subject.holds('exp')).toBe(false);
    expect(await store.get('exp')).toBeNull();
    expect(await store.length()).toBe(0);
  });

  it('of two saves of one loaded session, a field one deleted stays deleted and a field one did not touch keeps what the other wrote (5 rounds)', async () => {
    const store = subject.make() as any;
    // Two nodes where the backend is shared (the second save loses the compare-and-set and merges), one node's queue otherwise.
    const peer = subject.sharedBackend ? (subject.make() as any) : store;
    await store.clear();
    for (let round = 0; round < 5; round++) {
      const sid = `mrg${round}`;
      await store.set(sid, { v: 1, keep: 'k', gone: 'g' });
      const [a, b] = await Promise.all([load(store, sid), load(peer, sid)]);
      delete a.gone;
      a.v = 2;
      b.w = 'new';
      await Promise.all([store.set(sid, a), peer.set(sid, b)]);
      const { cookie: _cookie, ...stored } = await store.get(sid);
      expect(stored, `round ${round}`).toEqual({ v: 2, keep: 'k', w: 'new' });
      // The request saved last answers with what is stored, the other's change included.
      const seen = [a, b].map((saved) => {
        const { cookie: _c, ...data } = JSON.parse(JSON.stringify(saved));
        return data;
      });
      expect(seen, `round ${round}`).toContainEqual(stored);
    }
    await store.clear();
  });
});

/**
 * Every method a store implements, called both ways: without a callback it returns a promise of
 * the result; with one it returns nothing and calls the callback exactly once, with the result.
 */
const METHODS: Array<{ name: string; call(store: any, cb?: (err: unknown, data?: unknown) => void): unknown; result: unknown }> = [
  { name: 'set', call: (s, cb) => s.set('m1', { n: 1 }, cb), result: null },
  { name: 'get', call: (s, cb) => s.get('m1', cb), result: { n: 1 } },
  { name: 'get (missing)', call: (s, cb) => s.get('none', cb), result: null },
  { name: 'touch', call: (s, cb) => s.touch('m1', { n: 1 }, cb), result: null },
  { name: 'touch (cookie expiry)', call: (s, cb) => s.touch('m1', { n: 1, cookie: { expires: new Date(Date.now() + 60_000).toISOString() } }, cb), result: null },
  { name: 'ids', call: (s, cb) => s.ids(cb), result: ['m1'] },
  { name: 'all', call: (s, cb) => s.all(cb), result: [{ id: 'm1', n: 1 }] },
  { name: 'length', call: (s, cb) => s.length(cb), result: 1 },
  { name: 'destroy', call: (s, cb) => s.destroy('m1', cb), result: null },
  { name: 'length (after destroy)', call: (s, cb) => s.length(cb), result: 0 },
  { name: 'clear', call: (s, cb) => s.clear(cb), result: null },
];

/** Calls `method` with a callback; resolves with every call of the callback (after a turn of the event loop, so a second call would be seen). */
async function callbackCalls(store: Store, method: (typeof METHODS)[number]): Promise<{ returned: unknown; calls: unknown[][] }> {
  const calls: unknown[][] = [];
  let returned: unknown;
  await new Promise<void>((ok) => {
    returned = method.call(store, (...args) => {
      calls.push(args);
      ok();
    });
  });
  await new Promise((r) => setImmediate(r));
  return { returned, calls };
}

describe.each(subjects)('$name store: every method with a promise and with a callback', (subject) => {
  it('without a callback: a promise of the result', async () => {
    const store = subject.make() as any;
    await store.clear();
    for (const method of METHODS) {
      const returned = method.call(store);
      expect(returned, method.name).toBeInstanceOf(Promise);
      expect(await returned, method.name).toEqual(method.result);
    }
  });

  it('with a callback: nothing returned, the callback called once with (null, result)', async () => {
    const store = subject.make();
    await (store as any).clear();
    for (const method of METHODS) {
      const { returned, calls } = await callbackCalls(store, method);
      expect(returned, method.name).toBeUndefined();
      expect(calls, method.name).toEqual([[null, method.result]]);
    }
  });

  it('a callback that throws is called once: its error surfaces as an uncaught exception, never fed back into it', async () => {
    const store = subject.make() as any;
    await store.set('cbt', { n: 1 });
    // Vitest's own handlers report any uncaught exception as a failure: set aside while this one is expected.
    const handlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    try {
      const bug = new Error("the caller's bug");
      const uncaught = new Promise<unknown>((ok) => process.once('uncaughtException', ok));
      const calls: unknown[][] = [];
      store.get('cbt', (...args: unknown[]) => {
        calls.push(args);
        throw bug;
      });
      expect(await uncaught).toBe(bug);
      await new Promise((r) => setImmediate(r));
      expect(calls).toEqual([[null, { n: 1 }]]);
    } finally {
      for (const h of handlers) process.on('uncaughtException', h);
    }
    await store.destroy('cbt');
  });

  it('a failed save (the session destroyed meanwhile): a rejection, or one call of the callback with the error', async () => {
    const store = subject.make() as any;
    await store.set('gone', { v: 1 });
    const loaded = () => new Promise<any>((ok, fail) => store.load('gone', (err: unknown, s: any) => (err ? fail(err) : ok(s))));
    const [a, b] = [await loaded(), await loaded()];
    await store.destroy('gone');
    a.v = 2;
    b.v = 3;
    await expect(store.set('gone', a)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const { returned, calls } = await callbackCalls(store, { name: 'set', call: (s, cb) => s.set('gone', b, cb), result: null });
    expect(returned).toBeUndefined();
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(await store.get('gone')).toBeNull();
  });
});

/** Stores whose backend is unreachable: nothing listens on port 1. */
const unreachable: Array<{ name: string; make(): { store: Store; close(): Promise<void> } }> = [
  {
    name: 'shared (Redis)',
    make() {
      const down = new Redis({ port: 1, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
      return {
        store: new SharedSessionStore(down, { prefix: 'sess:', idleTimeoutS: 100, codec, observer: noopObserver, merge: appMergePolicy }),
        close: async () => down.disconnect(),
      };
    },
  },
  {
    name: 'database (PostgreSQL)',
    make() {
      const down = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/postgres', connectionTimeoutMillis: 1000 });
      return { store: new PgSessionStore(down, { idleTimeoutS: 100, codec, observer: noopObserver, merge: appMergePolicy }), close: () => down.end() };
    },
  },
];

describe.each(unreachable)('$name store when its backend is unreachable', (subject) => {
  // touch without a cookie expiry sends nothing (the read extended the expiry): it succeeds.
  // Every other method must fail, never resolve as if it worked.
  const failing = METHODS.filter((m) => m.name !== 'touch');

  it('rejects (promise) or calls back once (callback) with STORE_UNAVAILABLE, on every operation', async () => {
    const { store, close } = subject.make();
    for (const method of failing) {
      await expect(method.call(store) as Promise<unknown>, method.name).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
      const { returned, calls } = await callbackCalls(store, method);
      expect(returned, method.name).toBeUndefined();
      expect(calls, method.name).toHaveLength(1);
      expect(calls[0]![0], method.name).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    }
    await close();
  });
});

/** A tiny app behind the real express-session middleware, with the given store. */
async function appWith(store: Store) {
  const app = express();
  app.use(session({ secret: SECRET_A, store, resave: false, saveUninitialized: false, unset: 'keep', cookie }));
  app.get('/set/:v', (req, res, next) => {
    (req.session as any).v = req.params.v;
    req.session.save((err) => (err ? next(err) : res.json({ id: req.sessionID })));
  });
  app.get('/get', (req, res) => res.json({ v: (req.session as any).v ?? null, id: req.sessionID }));
  app.get('/regenerate', (req, res, next) => req.session.regenerate((err) => (err ? next(err) : res.json({ id: req.sessionID }))));
  app.get('/destroy', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));
  app.get('/reload', (req, res, next) => req.session.reload((err) => (err ? next(err) : res.json({ v: (req.session as any).v }))));
  app.use((err: any, _req: express.Request, res: express.Response, _next: express.NextFunction) => res.status(err.status ?? 500).json({ code: err.code ?? 'ERR' }));
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  let jar = '';
  const get = async (path: string, useJar = true) => {
    const res = await fetch(base + path, { headers: useJar && jar ? { cookie: jar } : {} });
    const set = res.headers.getSetCookie()[0];
    if (set) jar = set.split(';')[0]!;
    return { status: res.status, body: (await res.json()) as any, setCookie: set };
  };
  return { get, setJar: (v: string) => (jar = v), jar: () => jar, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe.each(subjects)('$name store behind express-session', (subject) => {
  it('saves only a modified session, keeps it across requests, and never adopts an unknown id', async () => {
    const store = subject.make() as any;
    await store.clear();
    const app = await appWith(store);
    const anon = await app.get('/get');
    expect(anon.setCookie).toBeUndefined(); // unmodified: not saved, no cookie
    expect(await store.length()).toBe(0);

    const first = await app.get('/set/one');
    expect(first.setCookie).toMatch(/^connect\.sid=/);
    expect((await app.get('/get')).body).toEqual({ v: 'one', id: first.body.id });
    expect(await store.length()).toBe(1);

    // A validly shaped but unknown id: a fresh session, never the forged id.
    const jar = app.jar();
    app.setJar('connect.sid=s%3Aunknown-id.forged');
    const forged = await app.get('/get');
    expect(forged.body.v).toBeNull();
    expect(forged.body.id).not.toBe('unknown-id');
    app.setJar(jar);
    await app.close();
    await store.clear();
  });

  it("regenerate issues a new id and ends the old one; destroy ends it; reload sees another request's change", async () => {
    const store = subject.make() as any;
    const app = await appWith(store);
    const { body: s1 } = await app.get('/set/a');
    const { body: s2 } = await app.get('/regenerate');
    expect(s2.id).not.toBe(s1.id);
    expect(await store.get(s1.id)).toBeNull();

    await app.get('/set/b');
    const other = await appWith(store);
    other.setJar(app.jar());
    await other.get('/set/c');
    expect((await app.get('/reload')).body.v).toBe('c');

    await app.get('/destroy');
    expect((await other.get('/get')).body.v).toBeNull();
    await Promise.all([app.close(), other.close()]);
    await store.clear();
  });

  it('a save after the session was destroyed does not bring it back', async () => {
    const store = subject.make() as any;
    const app = await appWith(store);
    const { body } = await app.get('/set/x');
    // Load it as a request would, destroy it behind that request's back, then save the request's copy.
    const loaded = await new Promise<any>((ok, fail) => store.load(body.id, (err: unknown, s: any) => (err ? fail(err) : ok(s))));
    await store.destroy(body.id);
    loaded.v = 'revived?';
    const err = await new Promise((ok) => loaded.save((e: unknown) => ok(e)));
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(await store.get(body.id)).toBeNull();
    await app.close();
  });
});

describe('shared store: one command per unmodified read, one script per write', () => {
  it('GETEX extends the idle TTL, touch sends nothing, and a save is one compare-and-set', async () => {
    const store = new SharedSessionStore(client, { prefix: 't:', idleTimeoutS: 100, codec, observer: noopObserver, merge: appMergePolicy });
    const sess = { cookie: { ...cookie, originalMaxAge: null, expires: null }, user: 'alice', loginAt: 1, node: 'n', requests: 3, cart: [] } as unknown as SessionData;
    await store.set('abc', sess);
    expect(JSON.parse((await client.get('t:abc'))!)).toEqual([1, 'alice', 1, 'n', 3, []]);
    await client.expire('t:abc', 10);
    const stats = async () => Object.fromEntries([...(await client.info('commandstats')).matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
    const before = await stats();
    const got = (await store.get('abc')) as any;
    expect(await client.ttl('t:abc')).toBeGreaterThan(98);
    await store.touch('abc', got);
    const afterRead = await stats();
    expect((afterRead.getex ?? 0) - (before.getex ?? 0)).toBe(1);
    expect((afterRead.expire ?? 0) - (before.expire ?? 0)).toBe(0);
    expect((afterRead.get ?? 0) - (before.get ?? 0)).toBe(0);

    const loaded = store.createSession({ sessionID: 'abc' } as any, got) as any;
    loaded.requests += 1;
    await new Promise<void>((ok, fail) => store.set('abc', loaded, (err) => (err ? fail(err) : ok())));
    const afterWrite = await stats();
    expect((afterWrite.evalsha ?? 0) + (afterWrite.eval ?? 0) - (afterRead.evalsha ?? 0) - (afterRead.eval ?? 0)).toBe(1);
    expect(JSON.parse((await client.get('t:abc'))!)).toEqual([1, 'alice', 1, 'n', 4, []]);
  });
});
