import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../../testkit/node.js';
import { COST } from '../../../src/passwords.js';
import { createDemoDirectory } from '../../../src/users.js';

// No user enumeration: a login attempt for a user who does not exist must cost what one for a user
// who does costs, and answer the same. The cost is counted, not timed: every scrypt the directory
// runs is reported with its parameters (a wall-clock comparison flaked under a loaded test run).
// Without the dummy hash an unknown user costs no scrypt at all; with a dummy of the wrong class,
// one of the other cost.

const STANDARD = COST.standard.N;
const LOADTEST = COST.loadtest.N;

describe('what a wrong password costs, by whether the user exists (users.ts)', () => {
  const derived: number[] = [];
  const users = createDemoDirectory(20, { onDerive: (p) => derived.push(p.N) });
  /** The scrypt work factors (N) one attempt with a wrong password runs. */
  const cost = async (username: string) => {
    derived.length = 0;
    expect(await users.verify(username, 'not-the-password')).toBeNull();
    return [...derived];
  };

  it('at creation: alice, bob and one dummy per class, derived in the background', () => {
    expect([...derived].sort()).toEqual([LOADTEST, STANDARD, STANDARD, STANDARD].sort());
  });

  it('the standard class: alice and bob cost one standard scrypt, and so do mallory and an Object.prototype key', async () => {
    for (const name of ['alice', 'bob', 'mallory', 'trudy', 'constructor', '__proto__']) expect(await cost(name), name).toEqual([STANDARD]);
  });

  it('the load-test class: user<N> costs one load-test scrypt whether N exists or not (after its first use)', async () => {
    expect(await cost('user16')).toEqual([LOADTEST, LOADTEST]); // the first use derives the stored hash once
    for (const name of ['user16', 'user17', 'user20', 'user21', 'user90000', 'user0', 'user016']) {
      if (name === 'user17' || name === 'user20') await cost(name); // first use
      expect(await cost(name), name).toEqual([LOADTEST]);
    }
  });

  it('a right password costs the same one scrypt', async () => {
    derived.length = 0;
    expect(await users.verify('user16', 'pass16')).toBe('user16');
    expect(derived).toEqual([LOADTEST]);
  });
});

describe('what a wrong password answers, through a node', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startNode({ SESSION_MODE: 'sticky', LOGIN_LIMITER: 'memory', NODE_ID: 'enumeration', LOGIN_MAX_FAILURES_PER_CLIENT: '1000' });
  });
  afterAll(async () => node?.close());

  it('the same 401 body for a known and an unknown user, in both classes', async () => {
    for (const username of ['alice', 'mallory', 'user3', 'user90000']) {
      const r = await new Client(node.url).post('/api/login', { username, password: 'not-the-password' });
      expect(r.status, username).toBe(401);
      expect(r.body, username).toEqual({ error: { code: 'BAD_CREDENTIALS', message: 'Invalid username or password.' } });
    }
  });
});
