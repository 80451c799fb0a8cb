import { COST, hashPassword, verifyPassword, type OnDerive, type ScryptParams } from './passwords.js';

/**
 * The demo user directory: alice, bob, and user1..userN for load tests.
 *
 * Nothing is hashed before the node listens: a node is ready in well under a second whatever
 * DEMO_USERS is (it used to hash all 1,002 accounts first: 2.4 s idle, 18.6 s in a container).
 * Each account's stored hash is derived the first time it is needed and kept; alice's and bob's
 * (the expensive class) are started at once in the background. Only hashes are kept; the
 * plain-text demo passwords are a rule (`pass<N>`), not a table.
 *
 * Timing: every attempt costs one scrypt of the *given* password at the cost class of the
 * username's shape (never of whether it exists), compared with the account's hash or, for an
 * unknown user, with a dummy hash of the same class. The one exception is an account's very
 * first attempt on a node, which also derives its stored hash: a second scrypt, once. For the
 * `user<N>` accounts that reveals nothing (their existence is the documented rule user1..userN),
 * and alice's and bob's are derived in the background within the first second of the node.
 */
export interface UserDirectory {
  /** Resolves to the canonical username, or null. Takes the same time whether or not the user exists. */
  verify(username: string, password: string): Promise<string | null>;
  readonly size: number;
}

const LOADTEST_NAME = /^user(\d+)$/;
const costFor = (username: string): ScryptParams => (LOADTEST_NAME.test(username) ? COST.loadtest : COST.standard);

/** `onDerive` is told of every scrypt the directory runs, with its cost (what a login attempt costs). */
export function createDemoDirectory(demoUsers: number, opts: { onDerive?: OnDerive } = {}): UserDirectory {
  // A Map, never a plain object: `'constructor' in {}` is true (every Object.prototype key is).
  const named = new Map([
    ['alice', 'alice-password'],
    ['bob', 'bob-password'],
  ]);
  return createDirectory({
    size: 2 + demoUsers,
    password(username) {
      const own = named.get(username);
      if (own !== undefined) return own;
      const n = LOADTEST_NAME.exec(username)?.[1];
      if (n === undefined || n.startsWith('0')) return null;
      const i = Number(n);
      return i >= 1 && i <= demoUsers ? `pass${i}` : null;
    },
    eager: [...named.keys()],
    onDerive: opts.onDerive,
  });
}

function createDirectory(source: { size: number; password(username: string): string | null; eager: string[]; onDerive?: OnDerive }): UserDirectory {
  const { onDerive } = source;
  const hashes = new Map<string, Promise<string>>();
  const stored = (username: string): Promise<string> | null => {
    const known = hashes.get(username);
    if (known) return known;
    const plain = source.password(username);
    if (plain === null) return null;
    const hash = hashPassword(plain, costFor(username), onDerive);
    hashes.set(username, hash);
    // A derivation that failed is not kept: the next attempt derives it again.
    hash.catch(() => hashes.get(username) === hash && hashes.delete(username));
    return hash;
  };
  // One dummy hash per cost class, so an unknown user costs the same as a known one of the same shape.
  // Derived in the background from the start, like alice's and bob's.
  const dummies = { standard: hashPassword('not-a-password', COST.standard, onDerive), loadtest: hashPassword('not-a-password', COST.loadtest, onDerive) };
  const dummy = (username: string) => (LOADTEST_NAME.test(username) ? dummies.loadtest : dummies.standard);
  for (const u of source.eager) void stored(u)?.catch(() => {});
  return {
    size: source.size,
    async verify(username, password) {
      const hash = stored(username);
      const ok = await verifyPassword(password, await (hash ?? dummy(username)), onDerive);
      return ok && hash !== null ? username : null;
    },
  };
}
