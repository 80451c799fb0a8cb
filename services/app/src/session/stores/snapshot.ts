import type { SessionData } from 'express-session';
import type { SessionCodec } from './codec.js';

/**
 * What a store remembers about a session it loaded: the payload exactly as it was read. A save
 * turns "the session as loaded" and "the session as saved" into a delta (merge.ts), and the
 * shared store uses the payload as the expected value of its compare-and-set.
 *
 * Kept under a non-enumerable symbol: invisible to JSON (so to express-session's change
 * detection and to the codec) and to `for..in` (so express-session's Session constructor does
 * not copy it; the stores' createSession moves it across).
 */
const SNAPSHOT = Symbol('session-cluster.loaded');

export function remember<T extends object>(sess: T, raw: string): T {
  Object.defineProperty(sess, SNAPSHOT, { value: raw, writable: true, configurable: true, enumerable: false });
  return sess;
}

/** The payload this session was loaded from (or last saved as), or undefined for a new session. */
export function loadedPayload(sess: object): string | undefined {
  return (sess as { [SNAPSHOT]?: string })[SNAPSHOT];
}

/**
 * Makes the session object hold the merged result, so the route that saved it answers with what
 * is stored (other requests' changes included), and remembers the payload it now matches.
 */
export function adopt(sess: SessionData, merged: SessionData, raw: string): void {
  const target = sess as unknown as Record<string, unknown>;
  const source = merged as unknown as Record<string, unknown>;
  for (const key of Object.keys(target)) if (key !== 'cookie' && !(key in source)) delete target[key];
  for (const [key, value] of Object.entries(source)) if (key !== 'cookie') target[key] = value;
  remember(sess, raw);
}

/**
 * A store's createSession: express-session builds the Session object from the loaded data (which
 * needs a cookie: a store handed none, as tests do, gets the node's default), and the payload the
 * data was loaded from moves across to it (the Session constructor copies no symbol).
 */
export function createLoaded<S extends object>(sess: SessionData, codec: SessionCodec, create: (sess: SessionData) => S): S {
  const raw = loadedPayload(sess);
  if (!sess.cookie) (sess as { cookie: unknown }).cookie = codec.defaultCookie();
  const session = create(sess);
  if (raw !== undefined) remember(session, raw);
  return session;
}

/** Seconds to keep a session: until its cookie expires when it has an expiry (as connect-redis), else the idle timeout. */
export function ttlFor(sess: SessionData, idleTimeoutS: number, now = Date.now()): number {
  const expires = sess?.cookie?.expires;
  if (!expires) return idleTimeoutS;
  return Math.ceil((new Date(expires).getTime() - now) / 1000);
}

/** A store method's callback, as express-session calls it. */
export type StoreCallback<T = void> = (err?: unknown, data?: T) => void;
