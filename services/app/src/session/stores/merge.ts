import type { SessionData } from 'express-session';
import { AppError } from '../../errors.js';
import { CART_MAX_LINES, CART_MAX_QTY, type CartItem } from '../types.js';

/**
 * Concurrent requests of one session lose nothing.
 *
 * express-session loads the whole session, a route changes it, and the store writes the whole
 * object back: of two requests that ran at once, the last write wins and the other's change is
 * gone (connect-redis #75, express-session #361). Measured with express-session + connect-redis:
 * of 100 concurrent requests on one session each setting a different key, 10 to 15 survived.
 *
 * Here a save is a *delta*: what this request changed, between the session it loaded (`base`) and
 * the one it saves (`next`), applied to whatever the store holds now (`current`), per field:
 * - a counter (`requests`) adds its difference: two requests that each counted one count two;
 * - the cart merges per line (by sku): each request's quantity difference is added to the line,
 *   new lines are appended, a line another request added is kept;
 * - any other field is last-writer-wins *for that field only*, and only if this request changed
 *   it: a field it did not touch keeps the value another request wrote.
 *
 * This is Spring Session's model (it writes only the attributes a request set: delta writes per
 * attribute) and Redisson's per-attribute update mode, plus counter and cart semantics that a
 * delta of whole attributes would still lose (two requests adding to one cart line at once).
 * The stores apply it atomically: the shared store with a compare-and-set in Redis, retried on
 * conflict (shared-store.ts); the sticky store in a single synchronous step (local-store.ts).
 */
export type MergePolicy = (current: SessionData, base: SessionData, next: SessionData) => SessionData;

type FieldMerge = (current: unknown, base: unknown, next: unknown) => unknown;

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** A counter: adds this request's difference to the current value. */
export const counter: FieldMerge = (current, base, next) => {
  if (typeof next !== 'number' || !Number.isFinite(next)) return next;
  return num(current) + (next - num(base));
};

const asCart = (v: unknown): CartItem[] => (Array.isArray(v) ? (v as CartItem[]) : []);

/** The cart: per-line quantity differences, bounded as POST /api/cart/items validates them. */
export const cartLines: FieldMerge = (current, base, next) => {
  if (!Array.isArray(next)) return next;
  const merged = asCart(current).map((line) => ({ ...line }));
  const baseQty = new Map(asCart(base).map((l) => [l.sku, l.qty]));
  const nextQty = new Map(asCart(next).map((l) => [l.sku, l.qty]));
  for (const sku of new Set([...baseQty.keys(), ...nextQty.keys()])) {
    const delta = (nextQty.get(sku) ?? 0) - (baseQty.get(sku) ?? 0);
    if (delta === 0) continue;
    const line = merged.find((l) => l.sku === sku);
    if (line) line.qty = Math.min(CART_MAX_QTY, line.qty + delta);
    else if (delta > 0) merged.push({ sku, qty: Math.min(CART_MAX_QTY, delta) });
  }
  const kept = merged.filter((l) => l.qty > 0);
  if (kept.length > CART_MAX_LINES) throw new AppError('VALIDATION', `sku: the cart holds at most ${CART_MAX_LINES} different items`);
  return kept;
};

/** Builds the policy: the named fields merge with their own function, every other field per field. */
export function createMergePolicy(fields: Record<string, FieldMerge>): MergePolicy {
  return (current, base, next) => {
    const c = current as unknown as Record<string, unknown>;
    const b = base as unknown as Record<string, unknown>;
    const n = next as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = { ...c };
    for (const key of new Set([...Object.keys(b), ...Object.keys(n)])) {
      if (same(b[key], n[key])) continue; // this request did not change it: keep the current value
      if (!(key in n) || n[key] === undefined) {
        delete out[key];
        continue;
      }
      const merge = fields[key];
      out[key] = merge && key in b ? merge(c[key], b[key], n[key]) : n[key];
    }
    return out as unknown as SessionData;
  };
}

/** This application's fields. */
export const appMergePolicy = createMergePolicy({ requests: counter, cart: cartLines });

/** Whole-session last-write-wins: what express-session stores do. Kept for the textbook comparison and for tests. */
export const lastWriteWins: MergePolicy = (_current, _base, next) => next;
