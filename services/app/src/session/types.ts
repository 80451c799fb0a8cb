/** What this application keeps in a session. */

/** The cart's bounds: POST /api/cart/items validates them, and so does a concurrent merge (merge.ts). */
export const CART_MAX_LINES = 50;
export const CART_MAX_QTY = 99;

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
