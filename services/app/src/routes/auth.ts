import type { IRouter, RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { parseBody } from '../http/validate.js';
import type { LoginResult, Metrics } from '../metrics.js';
import type { Gate } from '../http/gate.js';
import type { DeviceCookies } from '../session/login/device.js';
import { currentUser, destroy, sameOrigin } from '../session/guard.js';
import type { SessionLayer } from '../session/layer.js';
import type { UserDirectory } from '../users.js';

const LoginBody = z.strictObject({
  username: z.string().min(1, 'is required').max(64, 'must be at most 64 characters'),
  password: z.string().min(1, 'is required').max(256, 'must be at most 256 characters'),
});

interface AuthDeps {
  nodeId: string;
  cookieName: string;
  absoluteTimeoutS: number;
  users: UserDirectory;
  sessions: SessionLayer;
  /** Bounds concurrent password hashing on this node (http/gate.ts). */
  hashing: Gate;
  devices: DeviceCookies;
  metrics: Metrics;
  requireUser: RequestHandler;
  /** The mode's CSRF check (none for a bearer token). */
  requireCsrf: RequestHandler;
}

const RESULTS: Partial<Record<string, LoginResult>> = { VALIDATION: 'invalid', BAD_CREDENTIALS: 'bad_credentials', RATE_LIMITED: 'rate_limited', BUSY: 'busy' };
const loginResult = (err: unknown): LoginResult => (err instanceof AppError && RESULTS[err.code]) || 'error';

/** POST /api/login and POST /api/logout. */
export function authRoutes(router: IRouter, d: AuthDeps): void {
  router.post('/login', sameOrigin(), async (req, res) => {
    // The answer carries a credential (a CSRF token, an access token) or says why none: never cached.
    res.setHeader('Cache-Control', 'no-store');
    try {
      const body = parseBody(LoginBody, req.body);
      // One attempt is taken from the budget *before* the hash, atomically (session/login/login-limiter.ts).
      const device = d.devices.trusted(req, body.username);
      const attempt = await d.sessions.limiter.reserve({ username: body.username, client: req.ip ?? 'unknown', device });
      let user: string | null;
      try {
        user = await d.hashing.run(() => d.users.verify(body.username, body.password));
      } catch (err) {
        // Handed back only when the hash never ran (the node was too busy to queue it). Any other
        // failure stays counted: an input that breaks verification must not be a free guess.
        if (err instanceof AppError && err.code === 'BUSY') await attempt.cancelled().catch(() => {});
        throw err;
      }
      if (!user) {
        await attempt.failed();
        throw new AppError('BAD_CREDENTIALS');
      }

      const { loginAt, evicted, answer } = await d.sessions.login(req, user, attempt);
      if (evicted.length) d.metrics.sessionsDestroyed.inc({ reason: 'evicted' }, evicted.length);
      d.metrics.sessionsCreated.inc();
      d.metrics.logins.inc({ result: 'ok' });
      d.devices.issue(res, user);
      res.json({ user, node: d.nodeId, loginAt, ...answer });
    } catch (err) {
      d.metrics.logins.inc({ result: loginResult(err) });
      throw err;
    }
  });

  router.post('/logout', sameOrigin(), d.requireUser, d.requireCsrf, async (req, res) => {
    const user = currentUser(req);
    const sid = req.sessionID;
    await destroy(req);
    await d.sessions.index.remove(user, sid);
    d.metrics.sessionsDestroyed.inc({ reason: 'logout' });
    if (d.sessions.capabilities.csrf) res.clearCookie(d.cookieName, { path: '/' });
    res.json({ ok: true });
  });
}
