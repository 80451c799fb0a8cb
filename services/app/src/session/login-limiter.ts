import type { Redis } from 'ioredis';
import { AppError, asStoreError } from '../errors.js';
import { type KeyLayout, tagOf, userTag } from './keys.js';

/**
 * Brute-force protection for login (OWASP Authentication and Credential Stuffing cheat sheets).
 *
 * Budgets, each a fixed window of `windowS` seconds:
 * - failures per username + client address (`maxFailures`, 5): guessing one account;
 * - failures per client address (`maxFailuresPerClient`, 100): spraying many accounts;
 * - failures per username from untrusted clients (`maxFailuresPerAccount`, 50): one account
 *   guessed from many addresses;
 * - a *trusted* client, one holding a device cookie issued to it by a successful login of that
 *   same username (device.ts), is counted on its own budget (`maxFailures` per device) and is
 *   exempt from the three above. An attacker who exhausts an address's or an account's budget
 *   therefore cannot lock out the account's owner on a device they logged in from before, and
 *   the address budget expires with the window (15 min), not after a day.
 *
 * Check and count are one atomic step, *before* the password hash: `reserve` takes one attempt
 * from every budget that applies, or none if any is spent (a Lua script in Redis; a synchronous
 * step in memory). So N guesses sent at once can never get more than the budget hashed, whatever
 * their timing; one reserved attempt becomes a failure, or is handed back on success (the
 * username's counters are cleared, the address's is decremented) or when the attempt could not
 * run (the hash queue was full).
 *
 * Shared mode counts in Redis, so the budgets hold across every node, at one script call per
 * login plus one on success.
 *
 * On Redis Cluster (key layout `slots`, keys.ts) one script can only touch one hash slot. The
 * user's budgets (username+client, account; or the device) carry the user's tag and are reserved
 * together by one script; the client address's budget has a tag of its own and is reserved by a
 * second script, *after* the first. If the second refuses, the first reservation is handed back
 * (decremented). Each budget is still checked and counted atomically before the hash, so N
 * simultaneous guesses can never get more than any budget hashed; the only cost is that for the
 * few milliseconds between the two steps a refused attempt holds one unit of the user's budgets,
 * which can only refuse another attempt early, never admit one too many. On success the user's
 * counters are cleared in the index script (same tag) and the address's is handed back by one
 * more command (`settlement.elsewhere`). Sticky mode counts in this node's memory: an attacker spread over N
 * nodes gets N times the budget, one of the costs of sticky sessions (README).
 */
export interface LoginLimiter {
  /** Takes one attempt from every budget that applies; throws RATE_LIMITED (429 + Retry-After) when one is spent. */
  reserve(who: { username: string; client: string; device?: string | null }): Promise<LoginAttempt>;
}

export interface LoginAttempt {
  /** The password was wrong: the reserved attempt stays counted. */
  failed(): Promise<void>;
  /** The password was right: the username's counters are cleared and the address's attempt handed back. */
  succeeded(): Promise<void>;
  /** The attempt did not run (e.g. the node was too busy to hash): hand every reserved attempt back. */
  cancelled(): Promise<void>;
  /**
   * What `succeeded()` does, as keys, for a caller that settles the attempt in a script of its own
   * (shared mode's login commits it with the session index: one command instead of two).
   */
  readonly settlement: Settlement;
}

/** Counter keys to delete, and counter keys to decrement (not below zero). */
export interface Settlement {
  clear: string[];
  release: string[];
  /** What cannot ride in the caller's script (another hash slot, on Redis Cluster): run it after. */
  elsewhere?: () => Promise<void>;
}

export interface LimiterOptions {
  maxFailures: number;
  windowS: number;
  maxFailuresPerClient: number;
  maxFailuresPerAccount: number;
}

interface Budget {
  key: string;
  max: number;
  /** Cleared by a successful login (the username's own counters), else decremented. */
  clearedOnSuccess: boolean;
}

/** The counters, in Redis or in memory; both atomic per call. */
interface Counters {
  /** Increments every key if none is at its max; else returns ms until the latest blocking window ends. */
  reserve(budgets: Budget[], windowS: number): Promise<number>;
  /** Deletes `clear` and decrements `release` (not below zero). */
  settle(clear: string[], release: string[]): Promise<void>;
}

const RESERVE = `
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = tonumber(ARGV[1]) * 1000 end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1], 'NX')
end
return 0
`;

const SETTLE = `
local clear = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= clear then
    redis.call('DEL', key)
  elseif tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
return 0
`;

interface LimiterRedis extends Redis {
  loginReserve(n: number, ...args: Array<string | number>): Promise<number>;
  loginSettle(n: number, ...args: Array<string | number>): Promise<number>;
}

function redisCounters(redis: Redis): Counters {
  if (!('loginReserve' in redis)) {
    redis.defineCommand('loginReserve', { lua: RESERVE });
    redis.defineCommand('loginSettle', { lua: SETTLE });
  }
  const r = redis as LimiterRedis;
  return {
    reserve: (budgets, windowS) => r.loginReserve(budgets.length, ...budgets.map((b) => b.key), windowS, ...budgets.map((b) => b.max)),
    async settle(clear, release) {
      const keys = [...clear, ...release];
      if (keys.length) await r.loginSettle(keys.length, ...keys, clear.length);
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
    async reserve(budgets, windowS) {
      const now = Date.now();
      const wait = Math.max(0, ...budgets.map((b) => ((live(b.key)?.count ?? 0) >= b.max ? live(b.key)!.resetAt - now : 0)));
      if (wait > 0) return wait;
      for (const b of budgets) {
        const w = live(b.key) ?? { count: 0, resetAt: now + windowS * 1000 };
        w.count++;
        windows.set(b.key, w);
      }
      return 0;
    },
    async settle(clear, release) {
      for (const key of clear) windows.delete(key);
      for (const key of release) {
        const w = live(key);
        if (w && w.count > 0) w.count--;
      }
    },
  };
}

/**
 * Reserves `groups` one after another (each atomically, see above); if one refuses, hands back the
 * groups already reserved and returns its wait.
 */
async function reserveInOrder(counters: Counters, groups: Budget[][], windowS: number): Promise<number> {
  for (let i = 0; i < groups.length; i++) {
    const waitMs = await counters.reserve(groups[i]!, windowS);
    if (waitMs > 0) {
      for (const done of groups.slice(0, i))
        await counters.settle(
          [],
          done.map((b) => b.key),
        );
      return waitMs;
    }
  }
  return 0;
}

export function createLoginLimiter(opts: LimiterOptions, redis: Redis | null, layout: KeyLayout = 'databases'): LoginLimiter {
  const counters = redis ? redisCounters(redis) : memoryCounters();
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw asStoreError(err);
    }
  };
  return {
    reserve: ({ username, client, device }) =>
      guard(async () => {
        const name = username.toLowerCase().slice(0, 64);
        const t = userTag(layout, name);
        const budgets: Budget[] = device
          ? [{ key: `rl:${t}d:${device}`, max: opts.maxFailures, clearedOnSuccess: true }]
          : [
              { key: `rl:${t}uc:${name}:${client}`, max: opts.maxFailures, clearedOnSuccess: true },
              { key: `rl:${t}u:${name}`, max: opts.maxFailuresPerAccount, clearedOnSuccess: true },
              { key: layout === 'slots' ? `rl:{c:${client}}` : `rl:c:${client}`, max: opts.maxFailuresPerClient, clearedOnSuccess: false },
            ];
        // One group per hash tag, the user's first: one group (one script) in the databases layout.
        const groups: Budget[][] = [];
        for (const b of budgets) {
          const group = groups.find((g) => tagOf(g[0]!.key) === tagOf(b.key));
          if (group) group.push(b);
          else groups.push([b]);
        }
        const waitMs = await reserveInOrder(counters, groups, opts.windowS);
        if (waitMs > 0) throw new AppError('RATE_LIMITED', undefined, { retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) });
        const keys = (pick: (b: Budget) => boolean) => budgets.filter(pick).map((b) => b.key);
        // What the caller's (index) script can settle: the keys on the user's tag; the rest after it.
        const own = (b: Budget) => tagOf(b.key) === t;
        const away = keys((b) => !own(b));
        return {
          settlement: {
            clear: keys((b) => own(b) && b.clearedOnSuccess),
            release: keys((b) => own(b) && !b.clearedOnSuccess),
            ...(away.length > 0 && {
              elsewhere: () =>
                guard(() =>
                  counters.settle(
                    keys((b) => !own(b) && b.clearedOnSuccess),
                    keys((b) => !own(b) && !b.clearedOnSuccess),
                  ),
                ),
            }),
          },
          failed: async () => {},
          succeeded: () =>
            guard(async () => {
              for (const group of groups)
                await counters.settle(
                  group.filter((b) => b.clearedOnSuccess).map((b) => b.key),
                  group.filter((b) => !b.clearedOnSuccess).map((b) => b.key),
                );
            }),
          cancelled: () =>
            guard(async () => {
              for (const group of groups)
                await counters.settle(
                  [],
                  group.map((b) => b.key),
                );
            }),
        };
      }),
  };
}
