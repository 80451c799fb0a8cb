import { COST, hashPassword, verifyPassword, type ScryptParams } from './passwords.js';

/**
 * The demo user directory: alice, bob, and user1..userN for load tests.
 * Plain-text passwords exist only while the directory is built; afterwards only hashes remain.
 */
export interface UserDirectory {
  /** Resolves to the canonical username, or null. Takes the same time whether or not the user exists. */
  verify(username: string, password: string): Promise<string | null>;
  readonly size: number;
}

const LOADTEST_NAME = /^user\d+$/;
const costFor = (username: string): ScryptParams => (LOADTEST_NAME.test(username) ? COST.loadtest : COST.standard);

export async function createDemoDirectory(demoUsers: number): Promise<UserDirectory> {
  const accounts: Array<[string, string]> = [
    ['alice', 'alice-password'],
    ['bob', 'bob-password'],
  ];
  for (let n = 1; n <= demoUsers; n++) accounts.push([`user${n}`, `pass${n}`]);
  return createDirectory(accounts);
}

export async function createDirectory(accounts: Array<[username: string, password: string]>): Promise<UserDirectory> {
  // Hash in parallel: node:crypto's scrypt runs on the libuv thread pool.
  const hashes = new Map<string, string>(
    await Promise.all(accounts.map(async ([u, p]) => [u, await hashPassword(p, costFor(u))] as [string, string])),
  );
  // One dummy hash per cost class, so an unknown user costs the same as a known one of the same shape.
  const dummy = {
    standard: await hashPassword('not-a-password', COST.standard),
    loadtest: await hashPassword('not-a-password', COST.loadtest),
  };
  return {
    size: hashes.size,
    async verify(username, password) {
      const stored = hashes.get(username);
      const ok = await verifyPassword(password, stored ?? (LOADTEST_NAME.test(username) ? dummy.loadtest : dummy.standard));
      return ok && stored !== undefined ? username : null;
    },
  };
}
