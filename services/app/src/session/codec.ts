import type { Cookie, SessionData } from 'express-session';

/**
 * How a session is written to the store.
 *
 * 1. No cookie object. The cookie carries no Max-Age (the server enforces idle and absolute
 *    lifetimes), so the cookie express-session keeps in every session holds nothing but this
 *    node's fixed options; connect-redis's default JSON spends ~100 bytes a session on it. The
 *    codec drops it on write and restores it on read.
 * 2. A positional form for the usual logged-in session: `[1,user,loginAt,node,requests,cart]`
 *    (the leading 1 is the format version) instead of an object with its field names. Any
 *    session with other fields falls back to a plain JSON object, so nothing is ever lost.
 *
 * Together they cut Redis memory per session to about half of connect-redis's default for the
 * same contents (`npm run bench`, docs/benchmarks.md). A payload that does not parse is treated
 * as no session at all: it is never adopted.
 */
export interface SessionCodec {
  stringify(sess: SessionData): string;
  parse(raw: string): SessionData;
}

export type CookieDefaults = Pick<Cookie, 'path' | 'httpOnly' | 'secure' | 'sameSite'>;

const V1 = 1;
const KNOWN = new Set(['cookie', 'user', 'loginAt', 'node', 'requests', 'cart']);

export function createCodec(cookie: CookieDefaults): SessionCodec {
  const withCookie = (data: object) => ({ ...data, cookie: { ...cookie, originalMaxAge: null, expires: null } }) as unknown as SessionData;
  const none = undefined as unknown as SessionData;
  return {
    stringify(sess) {
      const s = sess as Partial<SessionData> & Record<string, unknown>;
      const positional = typeof s.user === 'string' && typeof s.loginAt === 'number' && Object.keys(s).every((k) => KNOWN.has(k));
      if (positional) return JSON.stringify([V1, s.user, s.loginAt, s.node ?? '', s.requests ?? 0, s.cart ?? []]);
      const { cookie: _ignored, ...data } = s;
      return JSON.stringify(data);
    },
    parse(raw) {
      let data: unknown;
      try {
        data = JSON.parse(raw);
      } catch {
        return none;
      }
      if (Array.isArray(data)) {
        const [version, user, loginAt, node, requests, cart] = data as unknown[];
        if (version !== V1 || typeof user !== 'string' || typeof loginAt !== 'number' || !Array.isArray(cart)) return none;
        return withCookie({ user, loginAt, node, requests, cart });
      }
      if (data === null || typeof data !== 'object') return none;
      return withCookie(data);
    },
  };
}
