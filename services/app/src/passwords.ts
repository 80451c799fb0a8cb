import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing with scrypt (node:crypto, no native add-on).
 *
 * Two cost classes, chosen by the *shape* of the username, never by whether it exists,
 * so timing does not reveal which accounts exist:
 * - `standard`: OWASP's first scrypt recommendation, N=2^17, r=8, p=1 (128 MiB, ~0.3 s here).
 * - `loadtest`: N=2^10, r=8, p=1 (1 MiB, ~2 ms) for the generated `user<N>` accounts, so that a
 *   load test measures sessions rather than hashing. Demo-only: real accounts never use it.
 *
 * Stored form: `scrypt$N$r$p$salt(base64)$hash(base64)`.
 */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const COST = {
  standard: { N: 2 ** 17, r: 8, p: 1 },
  loadtest: { N: 2 ** 10, r: 8, p: 1 },
} as const satisfies Record<string, ScryptParams>;

const KEY_LEN = 32;

/** Told of every scrypt derivation, with its parameters, as it starts (what a login costs). */
export type OnDerive = (params: ScryptParams) => void;

function derive(password: string, salt: Buffer, params: ScryptParams, onDerive?: OnDerive): Promise<Buffer> {
  onDerive?.(params);
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFKC'), salt, KEY_LEN, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams, onDerive?: OnDerive): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params, onDerive);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string, onDerive?: OnDerive): Promise<boolean> {
  const [tag, n, r, p, salt, hash] = stored.split('$');
  if (tag !== 'scrypt' || !salt || !hash) throw new Error('unrecognised password hash format');
  const expected = Buffer.from(hash, 'base64');
  const actual = await derive(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) }, onDerive);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
