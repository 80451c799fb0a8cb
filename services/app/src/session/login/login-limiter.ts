import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { LoginLimiterKind } from '../../config.js';
import { AppError, asStoreError } from '../../errors.js';
import { accountName, type KeyLayout, tagOf, userTag } from '../keys.js';

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
 * more command (`settlement.elsewhere`).
 *
 * Where the counts live (LOGIN_LIMITER, config.ts) is always a store every node shares, so the
 * budgets hold across the cluster whichever node nginx picks for each guess: Redis (shared and jwt
 * modes' own; sticky and cookie modes use one for this alone), or PostgreSQL in database mode (two
 * functions with the Lua scripts' semantics, one statement each). `memory` counts in the node's
 * own memory: for one node only, since N nodes give an attacker N times every budget.
 *
 * "Log out everywhere" also revokes the user's device cookies: it stores a cut-off per user, and a
 * device cookie issued before it is no longer trusted (`revokeDevices`).
 */
export interface LoginLimiter {
  /**
   * Takes one attempt from every budget that applies; throws RATE_LIMITED (429 + Retry-After) when
   * one is spent. `device`: the device cookie the request presented for this username (device.ts).
   */
  reserve(who: { username: string; client: string; device?: TrustedDevice | null }): Promise<LoginAttempt>;
  /** "Log out everywhere": the user's device cookies issued until now are no longer trusted. */
  revokeDevices(username: string): Promise<void>;
  /** Deletes expired counters, where the store does not expire them itself (PostgreSQL). */
  prune(): Promise<void>;
}

/** A device cookie that verified for the username (device.ts): its id, and when it was issued (epoch ms). */
export interface TrustedDevice {
  id: string;
  issuedAt: number;
}

/** Where the counters live: a store every node shares (redis, postgres), or this node's memory. */
export type LimiterStore = { kind: 'redis'; redis: Redis; layout?: KeyLayout } | { kind: 'postgres'; pool: Pool; onQuery?: (statement: string) => void } | { kind: 'memory' };

/** How long a device cookie lives (device.ts): a device cut-off is kept as long. */
export const DEVICE_MAX_AGE_S = 180 * 86400;

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

/** The counters, in Redis, PostgreSQL or memory; each call atomic. */
interface Counters {
  /** Increments every key if none is at its max; else returns ms until the latest blocking window ends. */
  reserve(budgets: Budget[], windowS: number): Promise<number>;
  /** Deletes `clear` and decrements `release` (not below zero). */
  settle(clear: string[], release: string[]): Promise<void>;
  /** A timestamp kept under `key` for `ttlS` (a device cut-off); null when there is none. */
  mark(key: string): Promise<number | null>;
  setMark(key: string, at: number, ttlS: number): Promise<void>;
  prune(): Promise<void>;
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

// A release is one DECR in the usual case (the attempt's own unit is still there). Below zero it is
// undone: a key that was missing (DECR made it, so it has no TTL: every counter gets one when
// created) is deleted, one that stood at 0 goes back to 0 with its window kept. Never below zero,
// as a GET before the DECR guaranteed at one command more per release.
const SETTLE = `
local clear = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= clear then
    redis.call('DEL', key)
  elseif redis.call('DECR', key) < 0 then
    if redis.call('PTTL', key) == -1 then redis.call('DEL', key) else redis.call('INCR', key) end
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
    async mark(key) {
      const v = await r.get(key);
      return v === null ? null : Number(v);
    },
    async setMark(key, at, ttlS) {
      await r.set(key, String(at), 'EX', ttlS);
    },
    prune: async () => {}, // keys expire by themselves
  };
}

/**
 * The PostgreSQL counters (database mode): one row per budget window, and two functions with the
 * Lua scripts' semantics, each called as one statement (one transaction). Both lock every row they
 * need in key order (`login_reserve` creating the missing ones first), so concurrent logins queue on
 * the rows they share and never deadlock; an expired window counts as empty, as an expired Redis key.
 */
export const LIMITER_SCHEMA = `
CREATE TABLE IF NOT EXISTS login_budgets (
  key      text PRIMARY KEY,
  count    integer NOT NULL,
  reset_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS login_budgets_reset ON login_budgets (reset_at);
CREATE TABLE IF NOT EXISTS login_marks (
  key     text PRIMARY KEY,
  at      bigint NOT NULL,
  expires timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION login_reserve(keys text[], maxes integer[], window_s integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  wait bigint := 0;
  row record;
BEGIN
  INSERT INTO login_budgets (key, count, reset_at)
    SELECT k, 0, clock_timestamp() FROM unnest(keys) AS k ORDER BY k
    ON CONFLICT (key) DO NOTHING;
  PERFORM 1 FROM login_budgets WHERE key = ANY (keys) ORDER BY key FOR UPDATE;
  FOR row IN
    SELECT b.count, b.reset_at, m.max FROM login_budgets b
      JOIN unnest(keys, maxes) AS m(key, max) ON m.key = b.key
  LOOP
    IF row.reset_at > clock_timestamp() AND row.count >= row.max THEN
      wait := greatest(wait, ceil(extract(epoch FROM row.reset_at - clock_timestamp()) * 1000)::bigint);
    END IF;
  END LOOP;
  IF wait > 0 THEN
    RETURN wait;
  END IF;
  UPDATE login_budgets SET
      count = CASE WHEN reset_at > clock_timestamp() THEN count + 1 ELSE 1 END,
      reset_at = CASE WHEN reset_at > clock_timestamp() THEN reset_at ELSE clock_timestamp() + make_interval(secs => window_s) END
    WHERE key = ANY (keys);
  RETURN 0;
END $$;
CREATE OR REPLACE FUNCTION login_settle(clear text[], release text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  -- The rows in key order first, as login_reserve takes them: in any other order a settle and a
  -- reserve of the same user (and every login shares its address's row) wait for each other.
  PERFORM 1 FROM login_budgets WHERE key = ANY (clear || release) ORDER BY key FOR UPDATE;
  DELETE FROM login_budgets WHERE key = ANY (clear);
  UPDATE login_budgets SET count = count - 1 WHERE key = ANY (release) AND count > 0 AND reset_at > clock_timestamp();
END $$;
`;

function pgCounters(pool: Pool, onQuery: (statement: string) => void = () => {}): Counters {
  const query = async (name: string, text: string, values: unknown[]) => {
    onQuery(name);
    return (await pool.query({ name, text, values })).rows;
  };
  return {
    async reserve(budgets, windowS) {
      const rows = await query('login_reserve', 'SELECT login_reserve($1, $2, $3) AS wait', [budgets.map((b) => b.key), budgets.map((b) => b.max), windowS]);
      return Number(rows[0].wait);
    },
    async settle(clear, release) {
      if (clear.length + release.length) await query('login_settle', 'SELECT login_settle($1, $2)', [clear, release]);
    },
    async mark(key) {
      const rows = await query('login_mark', 'SELECT at FROM login_marks WHERE key = $1 AND expires > now()', [key]);
      return rows.length ? Number(rows[0].at) : null;
    },
    async setMark(key, at, ttlS) {
      await query(
        'login_set_mark',
        `INSERT INTO login_marks (key, at, expires) VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at, expires = EXCLUDED.expires`,
        [key, at, ttlS],
      );
    },
    async prune() {
      await query('login_prune', 'DELETE FROM login_budgets WHERE reset_at < now()', []);
      await query('login_prune_marks', 'DELETE FROM login_marks WHERE expires < now()', []);
    },
  };
}

function memoryCounters(): Counters {
  const windows = new Map<string, { count: number; resetAt: number }>();
  const marks = new Map<string, { at: number; expires: number }>();
  const live = (key: string) => {
    const w = windows.get(key);
    if (w && w.resetAt <= Date.now()) windows.delete(key);
    return windows.get(key);
  };
  // Bounded: expired windows are swept every minute.
  setInterval(() => {
    for (const key of windows.keys()) live(key);
    for (const [key, m] of marks) if (m.expires <= Date.now()) marks.delete(key);
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
    async mark(key) {
      const m = marks.get(key);
      if (m && m.expires <= Date.now()) marks.delete(key);
      return marks.get(key)?.at ?? null;
    },
    async setMark(key, at, ttlS) {
      marks.set(key, { at, expires: Date.now() + ttlS * 1000 });
    },
    prune: async () => {},
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

export function createLoginLimiter(opts: LimiterOptions, store: LimiterStore): LoginLimiter {
  const counters = store.kind === 'redis' ? redisCounters(store.redis) : store.kind === 'postgres' ? pgCounters(store.pool, store.onQuery) : memoryCounters();
  const layout: KeyLayout = (store.kind === 'redis' && store.layout) || 'databases';
  const deviceCutoff = (name: string) => `rl:${userTag(layout, name)}dv:${name}`;
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw asStoreError(err);
    }
  };
  return {
    revokeDevices: (username) =>
      guard(async () => {
        const name = accountName(username);
        await counters.setMark(deviceCutoff(name), Date.now(), DEVICE_MAX_AGE_S);
      }),
    prune: () => guard(() => counters.prune()),
    reserve: ({ username, client, device: presented }) =>
      guard(async () => {
        const name = accountName(username);
        const t = userTag(layout, name);
        // A device cookie issued before the user's last "log out everywhere" is trusted no more.
        let device: string | null = null;
        if (presented) {
          const cutoff = await counters.mark(deviceCutoff(name));
          if (cutoff === null || presented.issuedAt > cutoff) device = presented.id;
        }
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

/**
 * The limiter on the store the configuration names (LOGIN_LIMITER): the mode's Redis connection for
 * budgets (`aux`), database mode's pool, or this node's memory (one node only: said in the log).
 */
export function limiterFor(
  config: { loginLimits: LimiterOptions; loginLimiter: LoginLimiterKind },
  stores: { redis?: Redis | null; pg?: Pool | null; layout?: KeyLayout; onQuery?: (statement: string) => void },
): LoginLimiter {
  switch (config.loginLimiter) {
    case 'redis':
      if (!stores.redis) throw new Error('LOGIN_LIMITER=redis needs a Redis connection');
      return createLoginLimiter(config.loginLimits, { kind: 'redis', redis: stores.redis, layout: stores.layout });
    case 'postgres':
      if (!stores.pg) throw new Error('LOGIN_LIMITER=postgres needs a PostgreSQL pool');
      return createLoginLimiter(config.loginLimits, { kind: 'postgres', pool: stores.pg, onQuery: stores.onQuery });
    case 'memory':
      return createLoginLimiter(config.loginLimits, { kind: 'memory' });
  }
}
