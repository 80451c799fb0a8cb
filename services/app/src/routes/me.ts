import type { IRouter, RequestHandler } from 'express';
import { csrfToken } from '../session/csrf.js';
import { save } from '../session/guard.js';
import type { Capabilities } from '../modes.js';

/**
 * GET /api/me: who is logged in, and a per-session counter that proves continuity across nodes.
 * A mode that keeps no state beyond the identity (jwt) answers without the counter, and a mode
 * without an ambient credential without a CSRF token.
 */
export function meRoutes(router: IRouter, d: { nodeId: string; secrets: string[]; mode: string; can: Capabilities; requireUser: RequestHandler }): void {
  router.get('/me', d.requireUser, async (req, res) => {
    const s = req.session;
    if (d.can.state) {
      s.requests = (s.requests ?? 0) + 1;
      await save(req); // stored before it is acknowledged (see session/guard.ts, save)
    }
    res.json({
      user: s.user,
      node: d.nodeId,
      mode: d.mode,
      loginAt: s.loginAt,
      createdOn: s.node,
      ...(d.can.state && { requests: s.requests }),
      ...(d.can.csrf && { csrfToken: csrfToken(d.secrets[0]!, req.sessionID) }),
    });
  });
}
