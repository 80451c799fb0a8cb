import type { Redis } from 'ioredis';
import { AppError, storeUnavailable } from '../errors.js';

/**
 * Brute-force protection for login (OWASP): failures per username+client within a window, and
 * failures per client over a day. Fixed-window counters; only failures count, and a success
 * clears its username+client counter.
 *
 * Shared mode counts in Redis, so the limits hold across every node, at one MGET per login
 * (plus one pipelined round trip on a failure). Sticky mode counts in this node's memory: an
 * attacker spread over N nodes gets N times the budget, one of the costs of sticky sessions.
 */
export interface LoginLimiter {
  /** Throws RATE_LIMITED (429 + Retry-After) when either limit is reached. */
  check(username: string, client: string): Promise<LoginAttempt>;
}

export interface LoginAttempt {
  failed(): Promise<void>;
  succeeded(): Promise<void>;
}

export interface LimiterOptions {
  maxFailures: number;
  windowS: number;
  maxFailuresPerClient: number;
}

const DAY_S = 86400;

/** The counters, in Redis or in memory. */
interface Counters {
  /** Current counts and, per key, ms until its window resets (only computed for keys at or over `limits`). */
  read(keys: [string, string], limits: [number, number]): Promise<Array<{ count: number; resetMs: number }>>;
  bump(entries: Array<[key: string, windowS: number]>): Promise<void>;
  clear(key: string): Promise<void>;
}

function redisCounters(redis: Redis): Counters {
  return {
    async read(keys, limits) {
      const counts = (await redis.mget(...keys)).map((v) => Number(v ?? 0));
      return Promise.all(counts.map(async (count, i) => ({ count, resetMs: count >= limits[i]! ? Math.max(0, await redis.pttl(keys[i]!)) : 0 })));
    },
    async bump(entries) {
      const p = redis.pipeline();
      for (const [key, windowS] of entries) p.incr(key).expire(key, windowS, 'NX');
      const replies = (await p.exec()) ?? [];
      const err = replies.find(([e]) => e)?.[0];
      if (err) throw err;
    },
    async clear(key) {
      await redis.del(key);
    },
  };
}

function memoryCounters(): Counters {
  const windows = new Map<string, { count: number; resetAt: number }>();
  const live = (key: string) => {
    const w = windows.get(key);
    if (w && w.resetAt <= Date.now()) windows.delete(key);
    return windows.get(key);
  };
  // Bounded: expired windows are swept every minute.
  setInterval(() => {
    for (const key of windows.keys()) live(key);
  }, 60_000).unref();
  return {
    async read(keys) {
      return keys.map((k) => {
        const w = live(k);
        return { count: w?.count ?? 0, resetMs: w ? w.resetAt - Date.now() : 0 };
      });
    },
    async bump(entries) {
      for (const [key, windowS] of entries) {
        const w = live(key) ?? { count: 0, resetAt: Date.now() + windowS * 1000 };
        w.count++;
        windows.set(key, w);
      }
    },
    async clear(key) {
      windows.delete(key);
    },
  };
}

export function createLoginLimiter(opts: LimiterOptions, redis: Redis | null): LoginLimiter {
  const counters = redis ? redisCounters(redis) : memoryCounters();
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw err instanceof AppError ? err : storeUnavailable(err);
    }
  };
  return {
    check: (username, client) =>
      guard(async () => {
        const userKey = `rl:uc:${username.toLowerCase().slice(0, 64)}:${client}`;
        const clientKey = `rl:c:${client}`;
        const [byUser, byClient] = await counters.read([userKey, clientKey], [opts.maxFailures, opts.maxFailuresPerClient]);
        const waitMs = Math.max(byUser!.count >= opts.maxFailures ? byUser!.resetMs : 0, byClient!.count >= opts.maxFailuresPerClient ? byClient!.resetMs : 0);
        if (byUser!.count >= opts.maxFailures || byClient!.count >= opts.maxFailuresPerClient) {
          throw new AppError('RATE_LIMITED', undefined, { retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) });
        }
        return {
          failed: () => guard(() => counters.bump([[userKey, opts.windowS], [clientKey, DAY_S]])),
          succeeded: () => (byUser!.count > 0 ? guard(() => counters.clear(userKey)) : Promise.resolve()),
        };
      }),
  };
}
