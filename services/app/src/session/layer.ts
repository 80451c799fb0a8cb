import type { Store } from 'express-session';
import type { Request, RequestHandler } from 'express';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { Capabilities } from '../modes.js';
import type { RedisClients } from '../redis.js';
import type { LoginAttempt, LoginLimiter } from './login/login-limiter.js';
import type { UserSessionIndex } from './user-index/user-index.js';
import './types.js';

/** What a mode may be given (each mode says which it needs, modes.ts; main.ts opens only those). */
export interface LayerDeps {
  redis: RedisClients | null;
  /** database mode's PostgreSQL pool. */
  pg?: Pool | null;
  metrics: Metrics;
  logger?: Logger;
}

/** A login whose password checked out, as the session layer settled it. */
export interface LoginOutcome {
  loginAt: number;
  /** Sessions of this user the per-user cap ended. */
  evicted: string[];
  /** Fields the login's answer adds (the CSRF token, jwt's access token). */
  answer: Record<string, unknown>;
}

/** A node's session layer: one mode's middleware, store, index and limiter, and its login. */
export interface SessionLayer {
  middleware: RequestHandler;
  /** The mode's capabilities, as modes.ts describes them. */
  capabilities: Capabilities;
  /** The express-session store, in the modes that keep sessions on the server through one. */
  store: Store | null;
  index: UserSessionIndex;
  limiter: LoginLimiter;
  /**
   * Logs `user` in on this request, the password checked and `attempt` reserved: a new session id
   * where fixation demands one, the session saved, indexed (the per-user cap may evict older
   * ones), the attempt settled (session/login/login.ts).
   */
  login(req: Request, user: string, attempt: LoginAttempt): Promise<LoginOutcome>;
  /**
   * Whether the store answers right now (readiness): a PING on each connection, bounded by the
   * command timeout. A connection's status alone is not enough: a hung Redis (SIGSTOP, a stalled
   * host) keeps the TCP connection "ready" while every command times out.
   */
  ready(): Promise<boolean>;
  close(): void;
}

/** What a mode's factory (session/modes/) builds; session/modes/index.ts makes it a SessionLayer. */
export interface ModeLayer extends Omit<SessionLayer, 'capabilities' | 'login'> {
  /**
   * After a successful login's session is saved: indexes it and settles the login attempt
   * (shared mode: one script for both). Returns the ids of sessions evicted by the per-user cap.
   */
  commitLogin(user: string, sid: string, createdAt: number, attempt: LoginAttempt): Promise<string[]>;
  /** Fields a successful login adds to its answer (jwt: the access token). */
  loginAnswer?(req: Request): Promise<Record<string, unknown>>;
  /** True when anonymous sessions are stored (the textbook profile): then every login must regenerate its id. */
  anonymousSessionsStored: boolean;
  /**
   * True when a logged-in session's id must carry its user's hash tag (Redis Cluster, keys.ts):
   * then every login regenerates its id, for the user it logs in (`loginUser` on the request).
   */
  sessionIdsCarryUser?: boolean;
}

/** A mode's factory: builds its layer from the configuration and what main.ts opened. */
export type ModeFactory = (config: Config, deps: LayerDeps) => ModeLayer;
