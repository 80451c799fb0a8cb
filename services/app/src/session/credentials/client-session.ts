import { randomBytes } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { SessionData } from 'express-session';
import { asStoreError } from '../../errors.js';

/**
 * `req.session` for the modes whose state travels with the client (cookie, jwt): the same surface
 * express-session gives the routes (the fields, `save`, `regenerate`, `destroy`, `req.sessionID`),
 * so the routes do not know which architecture they run on. What a save or a destroy *does* is the
 * credential's business (sealed-cookie.ts, jwt.ts).
 */
export type SessionFields = Partial<Pick<SessionData, 'user' | 'loginAt' | 'node' | 'requests' | 'cart'>>;

export interface ClientCredential {
  /** The credential on this request, verified: its session id and fields; null when absent, invalid, expired or revoked. */
  read(req: Request): Promise<{ sid: string; fields: SessionFields; issuedAt?: number } | null>;
  /** After a change: write the new state where it lives (a Set-Cookie; a token to hand out). May throw an AppError (too large). */
  save(req: Request, res: Response, sid: string, fields: SessionFields): Promise<void>;
  /** Logout: the client's copy is cleared and, where the mode can, revoked. */
  destroy(req: Request, res: Response, sid: string, fields: SessionFields): Promise<void>;
  /** A request that changed nothing: refresh what keeps an idle session alive, if anything. */
  touch?(req: Request, res: Response, sid: string, fields: SessionFields, issuedAt: number | undefined): void;
}

const FIELDS = ['user', 'loginAt', 'node', 'requests', 'cart'] as const;
const newId = () => randomBytes(16).toString('base64url');
const fieldsOf = (s: object): SessionFields => Object.fromEntries(FIELDS.filter((k) => (s as SessionFields)[k] !== undefined).map((k) => [k, (s as SessionFields)[k]]));

/** Wraps a credential into the express-session-shaped middleware the routes expect. */
export function clientSession(credential: ClientCredential): RequestHandler {
  return async (req, res, next) => {
    let loaded: Awaited<ReturnType<ClientCredential['read']>>;
    try {
      loaded = await credential.read(req);
    } catch (err) {
      return next(asStoreError(err));
    }
    let sid = loaded?.sid ?? newId();
    const session = Object.assign(Object.create(null) as Record<string, unknown>, loaded?.fields ?? {});
    const callback = (work: () => Promise<void>, cb?: (err?: unknown) => void) => {
      work().then(
        () => cb?.(),
        (err: unknown) => cb?.(err),
      );
    };
    Object.defineProperties(session, {
      id: { get: () => sid, enumerable: false },
      save: { value: (cb?: (err?: unknown) => void) => callback(() => credential.save(req, res, sid, fieldsOf(session)), cb), enumerable: false },
      regenerate: {
        value: (cb?: (err?: unknown) => void) => {
          for (const k of FIELDS) delete session[k];
          sid = newId();
          req.sessionID = sid;
          cb?.();
        },
        enumerable: false,
      },
      destroy: {
        value: (cb?: (err?: unknown) => void) =>
          callback(async () => {
            await credential.destroy(req, res, sid, fieldsOf(session));
            for (const k of FIELDS) delete session[k];
          }, cb),
        enumerable: false,
      },
    });
    req.session = session as unknown as Request['session'];
    req.sessionID = sid;
    if (loaded && credential.touch) credential.touch(req, res, sid, loaded.fields, loaded.issuedAt);
    next();
  };
}

/** Sets (or replaces) one cookie on a response that may already carry others, and that one. */
export function replaceCookie(res: Response, name: string, serialized: string): void {
  const current = res.getHeader('Set-Cookie');
  const list = (Array.isArray(current) ? current : current === undefined ? [] : [String(current)]).filter((c) => !c.startsWith(`${name}=`));
  res.setHeader('Set-Cookie', [...list, serialized]);
}
