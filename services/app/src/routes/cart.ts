import type { IRouter, RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { parseBody } from '../http/validate.js';
import { save } from '../session/guard.js';
import type { CartItem } from '../session/types.js';

const MAX_LINES = 50;
const MAX_QTY = 99;

const AddItem = z.strictObject({
  sku: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, _ or -'),
  qty: z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_QTY, `must be at most ${MAX_QTY}`),
});

const view = (items: CartItem[]) => ({ items, count: items.reduce((n, i) => n + i.qty, 0) });

/** A cart held in the session: GET /api/cart, POST /api/cart/items. */
export function cartRoutes(router: IRouter, d: { requireUser: RequestHandler; requireCsrf: RequestHandler }): void {
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
    await save(req); // stored before it is acknowledged (see session/guard.ts, save)
    res.status(201).json(view(cart));
  });
}
