import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Session-bound CSRF tokens without storage: HMAC(secret, session id). A token is valid only
 * for the session it was issued to; a new id at login means a new token. Verification accepts
 * any configured secret, so tokens survive a secret rotation like the cookies do.
 */
export function csrfToken(secret: string, sid: string): string {
  return createHmac('sha256', secret).update(`csrf:${sid}`).digest('base64url');
}

export function verifyCsrfToken(secrets: string[], sid: string, token: string | undefined): boolean {
  if (!token || token.length !== 43) return false;
  const given = Buffer.from(token);
  return secrets.some((s) => timingSafeEqual(given, Buffer.from(csrfToken(s, sid))));
}
