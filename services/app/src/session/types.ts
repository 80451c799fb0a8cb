/** What this application keeps in a session. */

/** The cart's bounds: POST /api/cart/items validates them, and so does a concurrent merge (merge.ts). */
export const CART_MAX_LINES = 50;
export const CART_MAX_QTY = 99;

/**
 * How long a session that is only read goes before a read extends its idle expiry again, where
 * extending costs a write (a PostgreSQL row version, a Set-Cookie): a minute, or a tenth of the
 * idle timeout if that is shorter. A session in use then never expires sooner than 90 % of the idle
 * timeout after its last request (with a flat minute, an idle timeout of 60 s or less was never
 * extended by reads at all).
 */
export const refreshAfterS = (idleTimeoutS: number): number => Math.min(60, idleTimeoutS / 10);

export interface CartItem {
  sku: string;
  qty: number;
}

declare module 'express-session' {
  interface SessionData {
    /** The logged-in user; absent on an anonymous session. */
    user: string;
    /** Login time, epoch ms: the absolute timeout counts from here. */
    loginAt: number;
    /** The node that created the session. */
    node: string;
    /** How many times GET /api/me was called in this session. */
    requests: number;
    cart: CartItem[];
  }
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by a login just before it regenerates the session id, on Redis Cluster (session/keys.ts): the id is made for this user. */
    loginUser?: string;
  }
}
