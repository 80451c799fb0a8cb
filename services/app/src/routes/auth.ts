import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { parseBody } from '../http/validate.js';
import type { Metrics } from '../metrics.js';
import { csrfToken } from '../session/csrf.js';
import { currentUser, destroy, regenerate, requireCsrf, requireUser, sameOrigin, save } from '../session/guard.js';
import type { SessionLayer } from '../session/layer.js';
import type { UserDirectory } from '../users.js';

const LoginBody = z.strictObject({
  username: z.string().min(1, 'is required').max(64, 'must be at most 64 characters'),
  password: z.string().min(1, 'is required').max(256, 'must be at most 256 characters'),
});

interface AuthDeps {
  nodeId: string;
  cookieName: string;
  secrets: string[];
  absoluteTimeoutS: number;
  users: UserDirectory;
  sessions: SessionLayer;
  metrics: Metrics;
}

/** POST /api/login and POST /api/logout. */
export function authRoutes(d: AuthDeps): Router {
  const router = Router();

  router.post('/login', sameOrigin(), async (req, res) => {
    let body: z.infer<typeof LoginBody>;
    try {
      body = parseBody(LoginBody, req.body);
    } catch (err) {
      d.metrics.logins.inc({ result: 'invalid' });
      throw err;
    }
    const client = req.ip ?? 'unknown';
    try {
      await d.sessions.limiter.check(body.username, client);
    } catch (err) {
      if (err instanceof AppError && err.code === 'RATE_LIMITED') d.metrics.logins.inc({ result: 'rate_limited' });
      throw err;
    }
    const user = await d.users.verify(body.username, body.password);
    if (!user) {
      await d.sessions.limiter.failed(body.username, client);
      d.metrics.logins.inc({ result: 'bad_credentials' });
      throw new AppError('BAD_CREDENTIALS');
    }
    await d.sessions.limiter.succeeded(body.username, client);

    // A new id at login: the pre-login id (if any) is destroyed with its data (session fixation).
    await regenerate(req);
    const now = Date.now();
    Object.assign(req.session, { user, loginAt: now, node: d.nodeId, requests: 0, cart: [] });
    await save(req);
    await d.sessions.index.add(user, req.sessionID, now);
    d.metrics.sessionsCreated.inc();
    d.metrics.logins.inc({ result: 'ok' });
    res.json({ user, node: d.nodeId, loginAt: now, csrfToken: csrfToken(d.secrets[0]!, req.sessionID) });
  });

  router.post('/logout', sameOrigin(), requireUser(d), requireCsrf(d.secrets), async (req, res) => {
    const user = currentUser(req);
    const sid = req.sessionID;
    await destroy(req);
    await d.sessions.index.remove(user, sid);
    d.metrics.sessionsDestroyed.inc({ reason: 'logout' });
    res.clearCookie(d.cookieName, { path: '/' });
    res.json({ ok: true });
  });

  return router;
}
