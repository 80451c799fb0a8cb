import type { Config } from '../../config.js';
import { SCHEMA, PgSessionStore } from '../stores/pg-store.js';
import { PgUserSessionIndex } from '../user-index/pg-index.js';
import { codecFor, expressSession } from '../express.js';
import type { LayerDeps, ModeLayer } from '../layer.js';
import { LIMITER_SCHEMA, limiterFor } from '../login/login-limiter.js';
import { appMergePolicy } from '../stores/merge.js';

/**
 * database: express-session over PostgreSQL (pg-store.ts); any node serves any session, as in
 * shared mode, with a database instead of Redis: durable by default (WAL, fsync on commit), one
 * indexed statement per read, the per-user index as a query on the same table, and the login
 * budgets in two functions beside it with the Redis scripts' semantics (login-limiter.ts).
 */
export function databaseLayer(config: Config, { pg, redis, metrics }: LayerDeps): ModeLayer {
  if (!pg) throw new Error('database mode needs a PostgreSQL pool');
  const onQuery = (statement: string) => metrics.dbQueries.inc({ statement });
  const idleTimeoutS = config.session.idleTimeoutS;
  const store = new PgSessionStore(pg, { idleTimeoutS, codec: codecFor(config), observer: metrics.storeObserver, merge: appMergePolicy, onQuery });
  const index = new PgUserSessionIndex(pg, { maxPerUser: config.session.maxPerUser, idleTimeoutS, onQuery });
  const limiter = limiterFor(config, { pg, redis: redis?.aux, onQuery });

  // The schema, created by whichever node gets there first (IF NOT EXISTS; concurrent starts
  // serialise on a transaction-scoped advisory lock: one Query message is one transaction).
  // Until it exists, reads fail and readiness says so.
  let schema: Promise<unknown> | null = null;
  const ensureSchema = () =>
    (schema ??= pg.query(`SELECT pg_advisory_xact_lock(727274); ${SCHEMA}${LIMITER_SCHEMA}`).catch((err: unknown) => {
      schema = null;
      throw err;
    }));
  void ensureSchema().catch(() => {});
  // Expired rows (sessions, login budgets) go in batches through their expiry indexes, on every node, jittered.
  const every = Math.min(60, Math.max(5, idleTimeoutS / 4)) * 1000;
  const janitor = setInterval(() => void Promise.all([store.prune(), limiter.prune()]).catch(() => {}), every * (0.8 + Math.random() * 0.4));
  janitor.unref();
  metrics.setActiveSessionsSource(async () => Number((await pg.query('SELECT count(*) AS n FROM sessions WHERE expires > now()')).rows[0].n));

  return {
    middleware: expressSession(config, store),
    store,
    index,
    anonymousSessionsStored: false,
    commitLogin: async (user, sid, at, attempt) => {
      await attempt.succeeded();
      return index.add(user);
    },
    limiter,
    ready: async () => {
      try {
        await ensureSchema();
        await pg.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    close: () => clearInterval(janitor),
  };
}
