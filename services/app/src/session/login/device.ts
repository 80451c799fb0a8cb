import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { DEVICE_MAX_AGE_S, type TrustedDevice } from './login-limiter.js';

/**
 * Device cookies (OWASP, "Slow down online guessing attacks with device cookies"): a successful
 * login leaves the browser a signed token naming the user who logged in from it. A later login
 * attempt for that same user that presents it is *trusted*: the login limiter counts it on a
 * budget of its own (login-limiter.ts), so an attacker who spends an address's or an account's
 * budget cannot lock the owner out of a device they have used before. "Log out everywhere" revokes
 * every device cookie of the user issued before it (the limiter keeps the cut-off).
 *
 * Format: `<base64url(username)>.<random 128-bit id>.<issued, epoch ms in base 36>.<HMAC-SHA256(secret, all three)>`;
 * signed with the first secret, verified with every configured secret (rotation works as for
 * session cookies). Sent only to the login route (`Path=/api/login`), never readable by scripts.
 */
export const LOGIN_PATH = '/api/login';

export interface DeviceCookies {
  /** The device when the request carries a valid device cookie issued to `username`, else null. */
  trusted(req: Request, username: string): TrustedDevice | null;
  /** Issues a fresh device cookie for `username` (after a successful login). */
  issue(res: Response, username: string): void;
}

export function deviceCookies(opts: { secrets: string[]; secure: boolean }): DeviceCookies {
  // `__Secure-`, not `__Host-`: a `__Host-` cookie must say Path=/, and this one goes to one route.
  const name = opts.secure ? '__Secure-device' : 'device';
  const mac = (secret: string, payload: string) => createHmac('sha256', secret).update(`device:${payload}`).digest();
  const pattern = new RegExp(`(?:^|;\\s*)${name}=([A-Za-z0-9_-]{1,100}\\.[A-Za-z0-9_-]{22}\\.[0-9a-z]{1,12}\\.[A-Za-z0-9_-]{43})(?:;|$)`);
  return {
    trusted(req, username) {
      const match = pattern.exec(req.headers.cookie ?? '');
      if (!match) return null;
      const [encodedUser, id, issued, signature] = match[1]!.split('.') as [string, string, string, string];
      const given = Buffer.from(signature, 'base64url');
      const payload = `${encodedUser}.${id}.${issued}`;
      const valid = opts.secrets.some((s) => {
        const expected = mac(s, payload);
        return given.length === expected.length && timingSafeEqual(given, expected);
      });
      if (!valid || Buffer.from(encodedUser, 'base64url').toString('utf8') !== username) return null;
      const issuedAt = Number.parseInt(issued, 36);
      if (!(Date.now() - issuedAt < DEVICE_MAX_AGE_S * 1000)) return null;
      return { id, issuedAt };
    },
    issue(res, username) {
      const payload = `${Buffer.from(username, 'utf8').toString('base64url')}.${randomBytes(16).toString('base64url')}.${Date.now().toString(36)}`;
      const value = `${payload}.${mac(opts.secrets[0]!, payload).toString('base64url')}`;
      res.cookie(name, value, { httpOnly: true, secure: opts.secure, sameSite: 'strict', path: LOGIN_PATH, maxAge: DEVICE_MAX_AGE_S * 1000 });
    },
  };
}
