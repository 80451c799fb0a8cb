import type { Store } from 'express-session';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config, SessionMode } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { LoginAttempt, LoginLimiter } from './login-limiter.js';
import { cookieLayer } from './modes/cookie.js';
import { databaseLayer } from './modes/database.js';
import { jwtLayer } from './modes/jwt.js';
import { sharedLayer } from './modes/shared.js';
import { stickyLayer } from './modes/sticky.js';
import type { UserSessionIndex } from './user-index.js';
import './types.js';

/**
 * A node's Redis connections (redis.ts opens those its configuration needs, `redisRoles`): shared
 * mode's sessions in one logical database and everything else in the next; the other modes only
 * the second (jwt's revocations, and the login budgets of every mode that counts them in Redis).
 */
export interface RedisClients {
  /** Shared mode only. Holds session keys only, so DBSIZE is the number of live sessions. */
  sessions?: Redis;
  /** The login limiter, and shared mode's per-user index (with REDIS_WAIT_REPLICAS, the index's WAIT too: once per login and per "log out everywhere"), or jwt's revocations. */
  aux: Redis;
  /**
   * Only when session writes wait for replicas (REDIS_WAIT_REPLICAS): the connection that carries
   * the session writes and their WAIT, in the sessions' database. WAIT confirms the writes of the
   * connection it is sent on and holds that connection until the replicas answer; on a connection
   * of their own, reads never queue behind it.
   */
  writes?: Redis;
}

/** What a mode may be given (each mode says which it needs; main.ts opens only those). */
export interface LayerDeps {
  redis: RedisClients | null;
  /** database mode's PostgreSQL pool. */
  pg?: Pool | null;
  metrics: Metrics;
  logger?: Logger;
}

/**
 * What an architecture can do; routes that need more answer 501 NOT_IN_MODE, naming the mode.
 * (Listing and ending a user's sessions are the mode's index's to refuse: modes/client-index.ts.)
 */
export interface Capabilities {
  /** Keeps state beyond the identity (the request counter, the cart). */
  state: boolean;
  /** The credential is ambient (a cookie): state-changing requests need the CSRF token. */
  csrf: boolean;
  /** After logout, a copy of the credential taken before it is refused. */
  revokesStolenCredential: boolean;
}

/** Sessions kept on the server (shared, sticky, database): everything, and logout revokes. */
export const SERVER_SESSIONS: Capabilities = { state: true, csrf: true, revokesStolenCredential: true };

export interface SessionLayer {
  middleware: RequestHandler;
  capabilities: Capabilities;
  /** Fields a successful login adds to its answer (jwt: the access token). */
  loginAnswer?(req: Request): Promise<Record<string, unknown>>;
  /** The express-session store, in the modes that keep sessions on the server through one. */
  store: Store | null;
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
   * True when a logged-in session's id must carry its user's hash tag (Redis Cluster, keys.ts):
   * then every login regenerates its id, for the user it logs in (`loginUser` on the request).
   */
  sessionIdsCarryUser?: boolean;
  /**
   * Whether the store answers right now (readiness): a PING on each connection, bounded by the
   * command timeout. A connection's status alone is not enough: a hung Redis (SIGSTOP, a stalled
   * host) keeps the TCP connection "ready" while every command times out.
   */
  ready(): Promise<boolean>;
  close(): void;
}

export { SESSION_PREFIX } from './modes/shared.js';

/** One factory per SESSION_MODE (session/modes/): each builds the middleware, store, index and limiter of its architecture. */
const MODES: Record<SessionMode, (config: Config, deps: LayerDeps) => SessionLayer> = {
  shared: sharedLayer,
  sticky: stickyLayer,
  database: databaseLayer,
  cookie: cookieLayer,
  jwt: jwtLayer,
};

/** Whether a node needs Redis connections (main.ts and the tests open them only then): shared and jwt modes, and every limiter kept in Redis. */
export const needsRedis = (config: Pick<Config, 'mode' | 'loginLimiter'>): boolean => config.mode === 'shared' || config.mode === 'jwt' || config.loginLimiter === 'redis';

export function createSessionLayer(config: Config, deps: LayerDeps): SessionLayer {
  return MODES[config.mode](config, deps);
}
