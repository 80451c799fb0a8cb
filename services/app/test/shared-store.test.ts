import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCodec } from '../src/session/codec.js';
import { noopObserver } from '../src/session/observer.js';
import { SharedSessionStore } from '../src/session/shared-store.js';
import { startTestRedis, type TestRedis } from './support/redis.js';

// One store lifecycle against a real redis-server, in the manner of connect-redis's own tests.
let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  await client?.quit();
  await redis?.stop();
});

const cookie = { path: '/', httpOnly: true, secure: false, sameSite: 'lax' as const };
const call = <T>(fn: (cb: (err: unknown, data?: T) => void) => unknown) =>
  new Promise<T>((ok, fail) => fn((err, data) => (err ? fail(err) : ok(data as T))));

it('set / get (extending the TTL) / touch / destroy', async () => {
  const store = new SharedSessionStore(client, { prefix: 't:', idleTimeoutS: 100, codec: createCodec(cookie), observer: noopObserver });
  const sess = { cookie: { ...cookie, originalMaxAge: null, expires: null }, user: 'alice', loginAt: 1, node: 'n', requests: 3, cart: [] } as any;

  await call((cb) => store.set('abc', sess, cb));
  const stored = await client.get('t:abc');
  expect(JSON.parse(stored!)).toEqual([1, 'alice', 1, 'n', 3, []]); // positional, no cookie object (codec.ts)
  expect(await client.ttl('t:abc')).toBeGreaterThan(98);

  await client.expire('t:abc', 10);
  const got = await call<any>((cb) => store.get('abc', cb));
  expect(got).toMatchObject({ user: 'alice', requests: 3, cookie: { httpOnly: true, path: '/' } });
  expect(await client.ttl('t:abc')).toBeGreaterThan(98); // GETEX extended it

  const before = (await client.info('commandstats')).match(/cmdstat_expire:calls=(\d+)/)?.[1] ?? '0';
  await call((cb) => store.touch('abc', sess, cb));
  const after = (await client.info('commandstats')).match(/cmdstat_expire:calls=(\d+)/)?.[1] ?? '0';
  expect(after).toBe(before); // touch sends nothing: the read already extended the TTL

  await call((cb) => store.destroy('abc', cb));
  expect(await client.exists('t:abc')).toBe(0);
  expect(await call((cb) => store.get('abc', cb))).toBeNull();
});

it('a payload that does not parse is no session, not an error', async () => {
  const store = new SharedSessionStore(client, { prefix: 't:', idleTimeoutS: 100, codec: createCodec(cookie), observer: noopObserver });
  await client.set('t:bad', '{not json');
  expect(await call((cb) => store.get('bad', cb))).toBeNull();
  await client.set('t:arr', '[1,2]');
  expect(await call((cb) => store.get('arr', cb))).toBeNull();
});
