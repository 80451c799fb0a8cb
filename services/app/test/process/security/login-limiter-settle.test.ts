import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../../../../../testkit/redis.js';
import { createLoginLimiter } from '../../../src/session/login/login-limiter.js';

// A settled login hands its reserved attempt back on the client address's budget with one DECR
// (the usual case): these are the cases around it, against a real Redis. A release never leaves a
// counter below zero, never leaves one without its window (TTL), and a budget spent stays spent.
let redis: TestRedis;
let r: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  r = new Redis(redis.url);
});
afterAll(async () => {
  r?.disconnect();
  await redis?.stop();
});
beforeEach(async () => {
  await r.flushdb();
});

const opts = { maxFailures: 3, windowS: 900, maxFailuresPerClient: 5, maxFailuresPerAccount: 50 };
const CLIENT = 'rl:c:10.0.0.1';
const who = { username: 'alice', client: '10.0.0.1' };

describe('login limiter: handing attempts back (Redis)', () => {
  it('a success clears the user budgets and takes the client budget back to 0, its window kept', async () => {
    const limiter = createLoginLimiter(opts, { kind: 'redis', redis: r });
    const attempt = await limiter.reserve(who);
    expect(await r.get(CLIENT)).toBe('1');
    await attempt.succeeded();
    expect(await r.get(CLIENT)).toBe('0');
    expect(await r.pttl(CLIENT)).toBeGreaterThan(0);
    expect(await r.exists('rl:uc:alice:10.0.0.1', 'rl:u:alice')).toBe(0);
  });

  it('a release of a counter at 0 leaves it at 0 with its window, not at -1', async () => {
    const limiter = createLoginLimiter(opts, { kind: 'redis', redis: r });
    const attempt = await limiter.reserve(who);
    await attempt.succeeded();
    await attempt.cancelled(); // a second hand-back of the same attempt
    expect(await r.get(CLIENT)).toBe('0');
    expect(await r.pttl(CLIENT)).toBeGreaterThan(0);
  });

  it('a release of a counter that expired meanwhile leaves no key behind (none without a TTL)', async () => {
    const limiter = createLoginLimiter(opts, { kind: 'redis', redis: r });
    const attempt = await limiter.reserve(who);
    await r.del(CLIENT); // its window ended while the password was hashed
    await attempt.succeeded();
    expect(await r.exists(CLIENT)).toBe(0);
  });

  it('failures still spend the budget: the sixth attempt from one address is refused, and releases never make room below zero', async () => {
    const limiter = createLoginLimiter(opts, { kind: 'redis', redis: r });
    for (let i = 0; i < 5; i++) await (await limiter.reserve({ username: `u${i}`, client: '10.0.0.1' })).failed();
    expect(await r.get(CLIENT)).toBe('5');
    await expect(limiter.reserve({ username: 'u9', client: '10.0.0.1' })).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await r.get(CLIENT)).toBe('5'); // a refused attempt takes nothing
  });
});
