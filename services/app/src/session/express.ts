import { randomBytes } from 'node:crypto';
import session, { type Store } from 'express-session';
import type { RequestHandler } from 'express';
import type { Config } from '../config.js';
import { createCodec, type SessionCodec } from './stores/codec.js';

/** What every store-backed mode (shared, sticky, database) shares: express-session and its cookie. */

/** The cookie every store-backed mode issues. It has no Max-Age: lifetimes are enforced server-side (idle: store TTL; absolute: guard.ts). */
export function sessionCookie(config: Config) {
  return { path: '/', httpOnly: true, secure: config.cookie.secure, sameSite: 'lax' as const };
}

/** The codec of stored sessions (codec.ts), for this configuration's cookie. */
export const codecFor = (config: Config): SessionCodec => createCodec(sessionCookie(config));

/** express-session over a store, as every store-backed mode runs it. */
export function expressSession(config: Config, store: Store, textbook = false, idFor?: (user: string) => string): RequestHandler {
  return session({
    // A login that regenerates with `loginUser` set gets an id for that user (keys.ts, Redis Cluster).
    ...(idFor && { genid: (req) => (req.loginUser === undefined ? uid() : idFor(req.loginUser)) }),
    name: config.cookie.name,
    secret: config.secrets,
    store,
    resave: textbook,
    saveUninitialized: textbook,
    rolling: false,
    // 'keep', not 'destroy': with 'destroy', a request whose session could not be loaded (Redis down)
    // would try to delete it on the way out, fail again, and have its connection torn down.
    unset: 'keep',
    cookie: sessionCookie(config),
  });
}

/** express-session's own default id: 24 random bytes, base64url (uid-safe). */
const uid = () => randomBytes(24).toString('base64url');
