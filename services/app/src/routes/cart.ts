import type { IRouter, RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { parseBody } from '../http/validate.js';
import { save } from '../session/guard.js';
import type { Capabilities } from '../modes.js';
import { CART_MAX_LINES as MAX_LINES, CART_MAX_QTY as MAX_QTY, type CartItem } from '../session/types.js';

const AddItem = z.strictObject({
  sku: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, _ or -'),
  qty: z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_QTY, `must be at most ${MAX_QTY}`),
});

const view = (items: CartItem[]) => ({ items, count: items.reduce((n, i) => n + i.qty, 0) });

/** A cart held in the session: GET /api/cart, POST /api/cart/items. */
export function cartRoutes(router: IRouter, d: { mode: string; can: Capabilities; requireUser: RequestHandler; requireCsrf: RequestHandler }): void {
  if (!d.can.state) {
    // jwt: the token carries the identity only; a cart would be server state this mode does not keep.
    router.all(['/cart', '/cart/items'], d.requireUser, () => {
      throw new AppError('NOT_IN_MODE', `${d.mode} mode keeps no state beyond the identity in the token: there is no cart.`);
    });
    return;
  }
  router.get('/cart', d.requireUser, (req, res) => {
    res.json(view(req.session.cart ?? []));
  });
  router.post('/cart/items', d.requireUser, d.requireCsrf, async (req, res) => {
    const { sku, qty } = parseBody(AddItem, req.body);
    const cart = req.session.cart ?? [];
    const line = cart.find((i) => i.sku === sku);
    if (line) line.qty = Math.min(MAX_QTY, line.qty + qty);
    else if (cart.length >= MAX_LINES) throw new AppError('VALIDATION', `sku: the cart holds at most ${MAX_LINES} different items`);
    else cart.push({ sku, qty });
    req.session.cart = cart;
    // Stored before it is acknowledged (session/guard.ts, save). The store merges this change into
    // whatever concurrent requests wrote meanwhile (session/stores/merge.ts) and leaves the merged cart
    // in req.session: the response shows the cart as stored, other requests' lines included.
    await save(req);
    res.status(201).json(view(req.session.cart ?? []));
  });
}
