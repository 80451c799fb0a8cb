import session, { type Store } from 'express-session';
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { RedisStore } from 'connect-redis';
import { dbOf } from '../redis.js';
import { createCodec } from './codec.js';
import { LocalSessionStore } from './local-store.js';
import { appMergePolicy } from './merge.js';
import { createLoginLimiter, type LoginAttempt, type LoginLimiter } from './login-limiter.js';
import { SharedSessionStore } from './shared-store.js';
import { LocalUserSessionIndex, RedisUserSessionIndex, type UserSessionIndex } from './user-index.js';
import './types.js';

/** The Redis connections shared mode needs: sessions in one logical database, everything else in another. */
export interface RedisClients {
  /** Holds session keys only, so DBSIZE is the number of live sessions. */
  sessions: Redis;
  /** The per-user session index and the login limiter. */
  aux: Redis;
}

export interface SessionLayer {
  middleware: RequestHandler;
  store: Store;
  index: UserSessionIndex;
  limiter: LoginLimiter;
  /**
   * After a successful login's session is saved: indexes it and settles the login attempt
   * (shared mode: one script for both). Returns the ids of sessions evicted by the per-user cap.
   */
  commitLogin(user: string, sid: string, createdAt: number, attempt: LoginAttempt): Promise<string[]>;
  /** True when anonymous sessions are stored (the textbook profile): then every login must regenerate its id. */
  anonymousSessionsStored: boolean;
  /**
   * Whether the store answers right now (readiness): a PING on each connection, bounded by the
   * command timeout. A connection's status alone is not enough: a hung Redis (SIGSTOP, a stalled
   * host) keeps the TCP connection "ready" while every command times out.
   */
  ready(): Promise<boolean>;
  close(): void;
}

export const SESSION_PREFIX = 's:';

/**
 * Everything about sessions, chosen by SESSION_MODE:
 * - shared: connect-redis (SharedSessionStore) over ioredis; any node can serve any session.
 * - sticky: this node's memory (LocalSessionStore); nginx must route a client back here.
 * The cookie has no Max-Age: lifetimes are enforced server-side (idle: store TTL; absolute: guard.ts).
 */
export function createSessionLayer(config: Config, redis: RedisClients | null, metrics: Metrics): SessionLayer {
  const cookie = { path: '/', httpOnly: true, secure: config.cookie.secure, sameSite: 'lax' as const };
  const codec = createCodec(cookie);
  const idleTimeoutS = config.session.idleTimeoutS;
  const sessionsDb = dbOf(config.redis.url);
  const indexOpts = { maxPerUser: config.session.maxPerUser, idleTimeoutS, absoluteTimeoutS: config.session.absoluteTimeoutS, codec, sessionsDb, auxDb: sessionsDb + 1 };

  let store: Store;
  let index: UserSessionIndex;
  let ready: () => Promise<boolean>;
  let close: () => void;
  const textbook = config.session.profile === 'textbook';
  if (config.mode === 'shared') {
    if (!redis) throw new Error('shared mode needs Redis clients');
    if (textbook) {
      // What tutorials teach: connect-redis with its defaults (prefix sess:, JSON with the cookie,
      // GET then EXPIRE on every read). Benchmarks only (config.ts).
      store = new RedisStore({ client: redis.sessions });
      index = new RedisUserSessionIndex(redis.sessions, redis.aux, 'sess:', { ...indexOpts, codec: { parse: JSON.parse } });
    } else {
      const durability = config.redis.waitReplicas > 0 ? { replicas: config.redis.waitReplicas, timeoutMs: config.redis.waitTimeoutMs } : undefined;
      store = new SharedSessionStore(redis.sessions, { prefix: SESSION_PREFIX, idleTimeoutS, codec, observer: metrics.storeObserver, merge: appMergePolicy, durability });
      index = new RedisUserSessionIndex(redis.sessions, redis.aux, SESSION_PREFIX, indexOpts);
    }
    // The index janitor (user-index.ts): every node, every quarter of the idle timeout (5-60 s,
    // jittered so nodes do not run it in step). A failure (Redis down) waits for the next round.
    const redisIndex = index as RedisUserSessionIndex;
    const every = Math.min(60, Math.max(5, idleTimeoutS / 4)) * 1000;
    const janitor = setInterval(() => void redisIndex.sweep().catch(() => {}), every * (0.8 + Math.random() * 0.4));
    janitor.unref();
    close = () => clearInterval(janitor);
    ready = async () => {
      const pings = await Promise.allSettled([redis.sessions.ping(), redis.aux.ping()]);
      return pings.every((p) => p.status === 'fulfilled');
    };
    metrics.setActiveSessionsSource(() => redis.sessions.dbsize());
  } else {
    const local = new LocalSessionStore({ idleTimeoutS, codec, observer: metrics.storeObserver, merge: appMergePolicy });
    store = local;
    const localIndex = new LocalUserSessionIndex(local, { maxPerUser: config.session.maxPerUser, nodeId: config.nodeId });
    index = localIndex;
    metrics.setUserIndexSource(() => localIndex.stats);
    ready = async () => true;
    close = () => local.close();
    metrics.setActiveSessionsSource(() => local.size);
  }

  const middleware = session({
    name: config.cookie.name,
    secret: config.secrets,
    store,
    resave: textbook,
    saveUninitialized: textbook,
    rolling: false,
    // 'keep', not 'destroy': with 'destroy', a request whose session could not be loaded (Redis down)
    // would try to delete it on the way out, fail again, and have its connection torn down.
    unset: 'keep',
    cookie,
  });

  return {
    middleware,
    store,
    index,
    anonymousSessionsStored: textbook,
    commitLogin:
      index instanceof RedisUserSessionIndex
        ? (user, sid, at, attempt) => index.add(user, sid, at, attempt.settlement)
        : async (user, sid, at, attempt) => {
            await attempt.succeeded();
            return index.add(user, sid, at);
          },
    limiter: createLoginLimiter(config.loginLimits, config.mode === 'shared' ? redis!.aux : null),
    ready,
    close,
  };
}
