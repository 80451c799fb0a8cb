import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError, storeUnavailable } from '../errors.js';

/**
 * Brute-force protection for login (OWASP): consecutive failures per username+client, and
 * failures per client over a day. Shared mode counts in Redis, so the limits hold across every
 * node; sticky mode counts per node (an attacker spread over N nodes gets N times the budget:
 * one of the costs of sticky sessions). A success clears the username+client counter.
 */
export interface LoginLimiter {
  /** Throws RATE_LIMITED (429 + Retry-After) when either limit is reached. */
  check(username: string, client: string): Promise<void>;
  failed(username: string, client: string): Promise<void>;
  succeeded(username: string, client: string): Promise<void>;
}

export interface LimiterOptions {
  maxFailures: number;
  windowS: number;
  maxFailuresPerClient: number;
}

const DAY = 86400;

export function createLoginLimiter(opts: LimiterOptions, redis: Redis | null): LoginLimiter {
  const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract =>
    redis
      ? new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration, blockDuration: duration, rejectIfRedisNotReady: true })
      : new RateLimiterMemory({ keyPrefix, points, duration, blockDuration: duration });
  const byUserClient = make('rl:login:uc', opts.maxFailures, opts.windowS);
  const byClient = make('rl:login:c', opts.maxFailuresPerClient, DAY);
  const ucKey = (u: string, c: string) => `${u.toLowerCase().slice(0, 64)}_${c}`;

  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof RateLimiterRes) throw limited(err.msBeforeNext);
      throw storeUnavailable(err);
    }
  };
  const limited = (ms: number) => new AppError('RATE_LIMITED', undefined, { retryAfterS: Math.max(1, Math.ceil(ms / 1000)) });

  return {
    check: (username, client) =>
      guard(async () => {
        const [uc, c] = await Promise.all([byUserClient.get(ucKey(username, client)), byClient.get(client)]);
        const over = [
          uc && uc.consumedPoints >= opts.maxFailures ? uc.msBeforeNext : 0,
          c && c.consumedPoints >= opts.maxFailuresPerClient ? c.msBeforeNext : 0,
        ];
        const wait = Math.max(...over);
        if (wait > 0) throw limited(wait);
      }),
    failed: (username, client) =>
      guard(async () => {
        await Promise.all([byUserClient.penalty(ucKey(username, client)), byClient.penalty(client)]);
      }),
    succeeded: (username, client) =>
      guard(async () => {
        await byUserClient.delete(ucKey(username, client));
      }),
  };
}
