import { RedisStore } from 'connect-redis';
import type { Store } from 'express-session';
import type { Redis } from 'ioredis';
import type { Config } from '../../config.js';
import { dbOf, keyCount } from '../../redis.js';
import { type KeyLayout, sessionIdFor } from '../keys.js';
import { codecFor, expressSession } from '../express.js';
import type { LayerDeps, ModeLayer } from '../layer.js';
import { limiterFor } from '../login/login-limiter.js';
import { appMergePolicy } from '../stores/merge.js';
import { SharedSessionStore } from '../stores/shared-store.js';
import { RedisUserSessionIndex } from '../user-index/user-index.js';

export const SESSION_PREFIX = 's:';

/**
 * shared: connect-redis (SharedSessionStore) over ioredis; any node can serve any session. The
 * per-user index and the login limiter live in Redis too, so both hold across the cluster.
 */
export function sharedLayer(config: Config, { redis, metrics }: LayerDeps): ModeLayer {
  if (!redis?.sessions) throw new Error('shared mode needs Redis clients');
  const sessions = redis.sessions;
  const codec = codecFor(config);
  const idleTimeoutS = config.session.idleTimeoutS;
  // Redis Cluster: one database, keys grouped by hash slot (keys.ts); else two logical databases.
  const layout: KeyLayout = config.redis.cluster ? 'slots' : 'databases';
  const sessionsDb = layout === 'slots' ? 0 : dbOf(config.redis.url);
  const auxDb = layout === 'slots' ? 0 : sessionsDb + 1;
  const textbook = config.session.profile === 'textbook';
  const durability = config.redis.waitReplicas > 0 ? { replicas: config.redis.waitReplicas, timeoutMs: config.redis.waitTimeoutMs } : undefined;
  const indexOpts = { maxPerUser: config.session.maxPerUser, idleTimeoutS, absoluteTimeoutS: config.session.absoluteTimeoutS, codec, sessionsDb, auxDb, layout, durability };

  let store: Store;
  let index: RedisUserSessionIndex;
  if (textbook) {
    // What tutorials teach: connect-redis with its defaults (prefix sess:, JSON with the cookie,
    // GET then EXPIRE on every read). Benchmarks only (config.ts).
    store = new RedisStore({ client: sessions });
    index = new RedisUserSessionIndex(sessions, redis.aux, 'sess:', { ...indexOpts, codec: { parse: JSON.parse } });
  } else {
    // The writes and their WAIT on a connection of their own (redis.ts): reads never queue behind a WAIT.
    const writes = durability && { ...durability, connection: redis.writes };
    store = new SharedSessionStore(sessions, { prefix: SESSION_PREFIX, idleTimeoutS, codec, observer: metrics.storeObserver, merge: appMergePolicy, durability: writes });
    index = new RedisUserSessionIndex(sessions, redis.aux, SESSION_PREFIX, indexOpts);
  }
  // The index janitor (user-index.ts): every node, every quarter of the idle timeout (5-60 s,
  // jittered so nodes do not run it in step). A failure (Redis down) waits for the next round.
  const every = Math.min(60, Math.max(5, idleTimeoutS / 4)) * 1000;
  const janitor = setInterval(() => void index.sweep().catch(() => {}), every * (0.8 + Math.random() * 0.4));
  janitor.unref();
  // The active-session gauge: DBSIZE of the sessions' database; on a Cluster the sum of DBSIZE over
  // the primaries, which also counts the index and limiter keys (an upper bound: one database there).
  metrics.setActiveSessionsSource(() => keyCount(sessions));

  return {
    middleware: expressSession(config, store, textbook, layout === 'slots' ? (user) => sessionIdFor(layout, user) : undefined),
    store,
    index,
    anonymousSessionsStored: textbook,
    // The index add and the limiter settlement are one script.
    // On a Cluster the address's budget is in another slot: settled right after (login-limiter.ts).
    commitLogin: async (user, sid, at, attempt) => {
      const evicted = await index.add(user, sid, at, attempt.settlement);
      await attempt.settlement.elsewhere?.();
      return evicted;
    },
    limiter: limiterFor(config, { redis: redis.aux, layout }),
    sessionIdsCarryUser: layout === 'slots',
    ready: async () => {
      const pings = await Promise.allSettled(Object.values(redis).map((c: Redis) => c.ping()));
      return pings.every((p) => p.status === 'fulfilled');
    },
    close: () => clearInterval(janitor),
  };
}
