import type { Cookie, SessionData } from 'express-session';

/**
 * How a session is written to the store. Lossless: whatever `stringify` writes, `parse` returns
 * as JSON would (the property test in test/unit/codec.test.ts checks it on arbitrary sessions).
 *
 * Three forms, told apart by their first character and tag:
 * 1. `[1,user,loginAt,node,requests,cart]`: the usual logged-in session of this application,
 *    positionally, when every field has its expected type and the cookie is this node's default.
 * 2. `[2,{...}]`: any other session whose cookie is this node's default. The default cookie is
 *    not written (the cookie carries no Max-Age: the server enforces both lifetimes) and is
 *    restored on read; connect-redis's JSON spends ~100 bytes a session on it.
 * 3. `{...}`: anything else, verbatim (a session whose cookie has an expiry or other options, or
 *    one with no cookie at all, as stores are handed in express-session's and connect-redis's
 *    own tests).
 *
 * Forms 1 and 2 cut Redis memory per session to about half of connect-redis's default for the
 * same contents (`npm run bench`, docs/benchmarks.md). A payload that does not parse, or has an
 * unknown tag, is no session at all (null): it is never adopted.
 */
export interface SessionCodec {
  stringify(sess: SessionData): string;
  /** The session, or null when the payload is not one this codec wrote. */
  parse(raw: string): SessionData | null;
  /** This node's default cookie, as the store restores it (a fresh object each call). */
  defaultCookie(): Cookie;
}

export type CookieDefaults = Pick<Cookie, 'path' | 'httpOnly' | 'secure' | 'sameSite'>;

const POSITIONAL = 1;
const DEFAULT_COOKIE = 2;
const APP_FIELDS = new Set(['cookie', 'user', 'loginAt', 'node', 'requests', 'cart']);

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isCart = (v: unknown): boolean =>
  Array.isArray(v) && v.every((line) => line !== null && typeof line === 'object' && Object.keys(line).length === 2 && typeof line.sku === 'string' && isFiniteNumber(line.qty));

export function createCodec(defaults: CookieDefaults): SessionCodec {
  // The cookie as express-session serialises it (Cookie#toJSON) when it carries nothing but this
  // node's options: no expiry, no domain, no priority, not partitioned.
  const defaultJson = JSON.stringify({
    originalMaxAge: null,
    expires: null,
    secure: defaults.secure,
    httpOnly: defaults.httpOnly,
    path: defaults.path,
    sameSite: defaults.sameSite,
  });
  const isDefaultCookie = (cookie: unknown): boolean => {
    if (cookie === null || typeof cookie !== 'object') return false;
    const c = JSON.parse(JSON.stringify(cookie)) as Record<string, unknown>;
    const normalised = { originalMaxAge: c.originalMaxAge ?? null, expires: c.expires ?? null, secure: c.secure, httpOnly: c.httpOnly, path: c.path, sameSite: c.sameSite };
    const extra = Object.keys(c).some((k) => !(k in normalised) && c[k] !== undefined && c[k] !== null);
    return !extra && JSON.stringify(normalised) === defaultJson;
  };
  const defaultCookie = () => ({ ...defaults, originalMaxAge: null, expires: null }) as unknown as Cookie;
  const withCookie = (data: Record<string, unknown>) => ({ ...data, cookie: defaultCookie() }) as unknown as SessionData;

  return {
    defaultCookie,
    stringify(sess) {
      const s = sess as unknown as Record<string, unknown>;
      if (!('cookie' in s) || !isDefaultCookie(s.cookie)) return JSON.stringify(s);
      const { cookie: _default, ...data } = s;
      const positional =
        typeof s.user === 'string' &&
        isFiniteNumber(s.loginAt) &&
        typeof s.node === 'string' &&
        isFiniteNumber(s.requests) &&
        isCart(s.cart) &&
        Object.keys(s).every((k) => APP_FIELDS.has(k) && s[k] !== undefined) &&
        Object.keys(s).length === APP_FIELDS.size;
      if (positional) return JSON.stringify([POSITIONAL, s.user, s.loginAt, s.node, s.requests, s.cart]);
      return JSON.stringify([DEFAULT_COOKIE, data]);
    },
    parse(raw) {
      let data: unknown;
      try {
        data = JSON.parse(raw);
      } catch {
        return null;
      }
      if (Array.isArray(data)) {
        if (data[0] === POSITIONAL && data.length === 6) {
          const [, user, loginAt, node, requests, cart] = data as unknown[];
          if (typeof user !== 'string' || !isFiniteNumber(loginAt) || typeof node !== 'string' || !isFiniteNumber(requests) || !isCart(cart)) return null;
          return withCookie({ user, loginAt, node, requests, cart });
        }
        if (data[0] === DEFAULT_COOKIE && data.length === 2 && data[1] !== null && typeof data[1] === 'object' && !Array.isArray(data[1])) {
          return withCookie(data[1] as Record<string, unknown>);
        }
        return null;
      }
      if (data === null || typeof data !== 'object') return null;
      return data as SessionData;
    },
  };
}
