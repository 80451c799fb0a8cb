import type { IRouter } from 'express';
import { csrfToken } from '../session/csrf.js';
import { save } from '../session/guard.js';
import type { RequestHandler } from 'express';

/** GET /api/me: who is logged in, and a per-session counter that proves continuity across nodes. */
export function meRoutes(router: IRouter, d: { nodeId: string; secrets: string[]; mode: string; requireUser: RequestHandler }): void {
  router.get('/me', d.requireUser, async (req, res) => {
    const s = req.session;
    s.requests = (s.requests ?? 0) + 1;
    await save(req); // stored before it is acknowledged (see session/guard.ts, save)
    res.json({
      user: s.user,
      node: d.nodeId,
      mode: d.mode,
      loginAt: s.loginAt,
      createdOn: s.node,
      requests: s.requests,
      csrfToken: csrfToken(d.secrets[0]!, req.sessionID),
    });
  });
}
