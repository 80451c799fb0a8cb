import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Session-bound CSRF tokens without storage: HMAC(secret, session id). A token is valid only
 * for the session it was issued to; a new id at login means a new token. Verification accepts
 * any configured secret, so tokens survive a secret rotation like the cookies do.
 */
export function csrfToken(secret: string, sid: string): string {
  return createHmac('sha256', secret).update(`csrf:${sid}`).digest('base64url');
}

/**
 * Compares bytes, not characters: a header of 43 characters can be more than 43 bytes (any
 * non-ASCII character), and timingSafeEqual throws on buffers of different lengths. A token that
 * is not exactly 43 base64url characters is refused before any comparison.
 */
export function verifyCsrfToken(secrets: string[], sid: string, token: string | undefined): boolean {
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) return false;
  const given = Buffer.from(token, 'latin1');
  return secrets.some((s) => {
    const expected = Buffer.from(csrfToken(s, sid), 'latin1');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
