import type { Request, RequestHandler } from 'express';
import { AppError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { verifyCsrfToken } from './csrf.js';

/**
 * Promisified express-session callbacks.
 *
 * Routes that change a session call `save` before they respond. Left to itself, express-session
 * saves at `res.end` but first writes the headers and all but the last byte of the body, and
 * finishes the response when the store answers. So a node killed during the save leaves a
 * half-sent response that nginx cannot retry (the failover test caught it as a failed GET), and a
 * save that fails has already been acknowledged with a 200. Saved first, the session is unchanged
 * at `res.end` and the response goes out whole, only once the change is stored.
 */
export const regenerate = (req: Request) => new Promise<void>((ok, fail) => req.session.regenerate((err) => (err ? fail(err) : ok())));
export const save = (req: Request) => new Promise<void>((ok, fail) => req.session.save((err) => (err ? fail(err) : ok())));
export const destroy = (req: Request) => new Promise<void>((ok, fail) => req.session.destroy((err) => (err ? fail(err) : ok())));

/**
 * Protected routes: a logged-in session within its absolute lifetime. (The idle lifetime is the
 * store's TTL: an idle-expired session is simply not found.) An expired session is destroyed on
 * the spot, so it is gone on every node, not just refused here.
 */
export function requireUser(opts: { absoluteTimeoutS: number; metrics: Metrics }): RequestHandler {
  return async (req, _res, next) => {
    const s = req.session;
    if (!s?.user) return next(new AppError('UNAUTHENTICATED'));
    if (Date.now() - (s.loginAt ?? 0) > opts.absoluteTimeoutS * 1000) {
      await destroy(req).catch(() => {});
      opts.metrics.sessionsDestroyed.inc({ reason: 'absolute_timeout' });
      return next(new AppError('UNAUTHENTICATED'));
    }
    next();
  };
}

/** The logged-in user of a request that passed requireUser. */
export function currentUser(req: Request): string {
  const user = req.session?.user;
  if (!user) throw new AppError('UNAUTHENTICATED');
  return user;
}

/** State-changing requests from a logged-in session need its CSRF token in X-CSRF-Token. */
export function requireCsrf(secrets: string[]): RequestHandler {
  return (req, _res, next) => {
    if (!verifyCsrfToken(secrets, req.sessionID, req.get('x-csrf-token'))) return next(new AppError('CSRF'));
    next();
  };
}

/**
 * Login and logout refuse cross-site requests: a browser says where a request comes from in
 * Sec-Fetch-Site or Origin. Clients that send neither (curl, k6) are not browsers and pass.
 */
export function sameOrigin(): RequestHandler {
  return (req, _res, next) => {
    const site = req.get('sec-fetch-site');
    if (site && site !== 'same-origin' && site !== 'none') return next(new AppError('CROSS_SITE'));
    const origin = req.get('origin');
    if (origin) {
      // Scheme, host and port must all match this request's own origin (req.protocol honours
      // X-Forwarded-Proto from a trusted proxy only): http://site is not https://site.
      let given: URL;
      try {
        given = new URL(origin);
      } catch {
        return next(new AppError('CROSS_SITE'));
      }
      if (`${given.protocol}//${given.host}` !== `${req.protocol}://${req.get('host')}`) return next(new AppError('CROSS_SITE'));
    }
    next();
  };
}
