/**
 * The session modes, each described once: what it needs, what it can do, how nginx routes it.
 * Everything that depends on the mode reads it here (the configuration, the node, the testkit,
 * the cluster runner, the bench, the experiment, the contract tests); its layer factory is
 * registered beside it in session/modes/index.ts (kept apart so that this file imports nothing and
 * can be read by any package). A new mode is one entry here and one factory there
 * (docs/development.md, "Adding a mode").
 */

/** What an architecture can do; routes that need more answer 501 NOT_IN_MODE, naming the mode. */
export interface Capabilities {
  /** Keeps state beyond the identity (the request counter, the cart). */
  state: boolean;
  /** The credential is ambient (a cookie): state-changing requests need the CSRF token. */
  csrf: boolean;
  /** After logout, a copy of the credential taken before it is refused. */
  revokesStolenCredential: boolean;
  /** Lists a user's sessions (GET /api/sessions). */
  listsSessions: boolean;
  /** Ends every session of a user at once ("log out everywhere"). */
  endsAllSessions: boolean;
}

/** A store every node of a mode shares. */
export type SharedStore = 'redis' | 'postgres';

export interface ModeDescriptor {
  /** One line: where the session is. */
  summary: string;
  /** The shared store the mode itself needs (its sessions, or jwt's revocations); none when it needs none. */
  store: SharedStore | 'none';
  /** Where it counts the login budgets by default (LOGIN_LIMITER): a store every node shares. */
  loginLimiter: SharedStore;
  /** Where a session lives: in a store on the server (Redis on a connection of its own, redis.ts), or with the client. */
  sessions: 'redis' | 'postgres' | 'memory' | 'client';
  /** What the client holds: a cookie (express-session's id, or the sealed session), or a bearer token in Authorization. */
  credential: 'cookie' | 'bearer';
  /** How nginx routes a client: to any node, or back to the node that holds its session (the route cookie). */
  routing: 'any' | 'sticky';
  capabilities: Capabilities;
}

/** Sessions kept on the server through express-session (shared, sticky, database): everything, and logout revokes. */
const SERVER_SESSIONS: Capabilities = { state: true, csrf: true, revokesStolenCredential: true, listsSessions: true, endsAllSessions: true };

const DESCRIPTORS = {
  shared: {
    summary: 'express-session over one Redis every node shares',
    store: 'redis',
    loginLimiter: 'redis',
    sessions: 'redis',
    credential: 'cookie',
    routing: 'any',
    capabilities: SERVER_SESSIONS,
  },
  sticky: {
    summary: "each node's memory, nginx routing a client back to its node",
    store: 'none',
    loginLimiter: 'redis',
    sessions: 'memory',
    credential: 'cookie',
    routing: 'sticky',
    capabilities: SERVER_SESSIONS,
  },
  database: {
    summary: 'express-session over PostgreSQL',
    store: 'postgres',
    loginLimiter: 'postgres',
    sessions: 'postgres',
    credential: 'cookie',
    routing: 'any',
    capabilities: SERVER_SESSIONS,
  },
  cookie: {
    summary: 'the whole session sealed in the cookie (AES-GCM)',
    store: 'none',
    loginLimiter: 'redis',
    sessions: 'client',
    credential: 'cookie',
    routing: 'any',
    capabilities: { state: true, csrf: true, revokesStolenCredential: false, listsSessions: false, endsAllSessions: false },
  },
  jwt: {
    summary: 'a signed bearer token (HS256), with a Redis denylist for revocation',
    store: 'redis',
    loginLimiter: 'redis',
    sessions: 'client',
    credential: 'bearer',
    routing: 'any',
    capabilities: { state: false, csrf: false, revokesStolenCredential: true, listsSessions: false, endsAllSessions: true },
  },
} as const satisfies Record<string, ModeDescriptor>;

export type SessionMode = keyof typeof DESCRIPTORS;

/** Every mode, by name. */
export const MODE_DESCRIPTORS: Readonly<Record<SessionMode, ModeDescriptor>> = DESCRIPTORS;

/** The mode names, in their documented order (SESSION_MODE's values). */
export const SESSION_MODES = Object.keys(DESCRIPTORS) as [SessionMode, ...SessionMode[]];

export const isSessionMode = (name: string): name is SessionMode => Object.hasOwn(DESCRIPTORS, name);

/** The one shared store a mode's nodes need with its default login limiter (what the cluster runner starts beside them). */
export function nodeStore(mode: SessionMode): SharedStore {
  const { store, loginLimiter } = MODE_DESCRIPTORS[mode];
  return store === 'none' ? loginLimiter : store;
}

/** Whether a node opens Redis connections: its mode needs Redis, or its login budgets are counted there. */
export const needsRedis = (config: { mode: SessionMode; loginLimiter: string }): boolean => MODE_DESCRIPTORS[config.mode].store === 'redis' || config.loginLimiter === 'redis';

/** Whether a node opens a PostgreSQL pool. */
export const needsPostgres = (config: { mode: SessionMode; loginLimiter: string }): boolean =>
  MODE_DESCRIPTORS[config.mode].store === 'postgres' || config.loginLimiter === 'postgres';
