import type { IRouter, RequestHandler } from 'express';
import { currentUser, destroy } from '../session/guard.js';
import type { Metrics } from '../metrics.js';
import type { Capabilities } from '../modes.js';
import type { LoginLimiter } from '../session/login/login-limiter.js';
import type { UserSessionIndex } from '../session/user-index/user-index.js';

/** GET /api/sessions lists the caller's sessions; DELETE /api/sessions ends all of them ("log out everywhere"). */
export function sessionsRoutes(
  router: IRouter,
  d: { index: UserSessionIndex; limiter: LoginLimiter; metrics: Metrics; requireUser: RequestHandler; requireCsrf: RequestHandler; cookieName: string; can: Capabilities },
): void {
  router.get('/sessions', d.requireUser, async (req, res) => {
    const list = await d.index.list(currentUser(req));
    res.json({
      sessions: list
        .sort((a, b) => b.createdAt - a.createdAt)
        .map((s) => ({
          // Another session's id is a credential: show only a short fingerprint of it.
          id: s.id.slice(0, 8),
          createdAt: s.createdAt,
          lastSeenAt: s.lastSeenAt,
          node: s.node,
          current: s.id === req.sessionID,
        })),
    });
  });
  router.delete('/sessions', d.requireUser, d.requireCsrf, async (req, res) => {
    const user = currentUser(req);
    const ended = await d.index.endAll(user);
    // The device cookies that logins left go with the sessions (session/login/device.ts).
    await d.limiter.revokeDevices(user);
    if (ended !== null) d.metrics.sessionsDestroyed.inc({ reason: 'logout_everywhere' }, ended);
    // This request's own session was among them; make sure express-session cannot write it back
    // (it would, with the textbook profile's resave).
    await destroy(req);
    if (d.can.csrf) res.clearCookie(d.cookieName, { path: '/' });
    // `scope` says how far "everywhere" reaches: every node (shared) or only the node that
    // answered (sticky: each node knows only its own sessions).
    res.json({ ended, scope: d.index.scope });
  });
}
