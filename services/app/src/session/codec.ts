import type { Cookie, SessionData } from 'express-session';

/**
 * How a session is written to the store.
 *
 * The cookie carries no Max-Age (the server enforces idle and absolute lifetimes), so the
 * cookie object express-session keeps in every session holds nothing but this node's fixed
 * cookie options. Writing it out per session is pure overhead (connect-redis's default JSON
 * spends ~90 of its bytes on it), so the codec drops it on write and restores it on read.
 * A payload that does not parse is treated as no session at all: it is never adopted.
 */
export interface SessionCodec {
  stringify(sess: SessionData): string;
  parse(raw: string): SessionData;
}

export type CookieDefaults = Pick<Cookie, 'path' | 'httpOnly' | 'secure' | 'sameSite'>;

export function createCodec(cookie: CookieDefaults): SessionCodec {
  return {
    stringify(sess) {
      const { cookie: _ignored, ...data } = sess as SessionData & { cookie?: unknown };
      return JSON.stringify(data);
    },
    parse(raw) {
      let data: unknown;
      try {
        data = JSON.parse(raw);
      } catch {
        return undefined as unknown as SessionData;
      }
      if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined as unknown as SessionData;
      return { ...(data as object), cookie: { ...cookie, originalMaxAge: null, expires: null } } as unknown as SessionData;
    },
  };
}
