import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Client } from '../../../../../testkit/client.js';
import { APP_DIR, freePort, SECRET_A } from '../../../../../testkit/node.js';
import { waitFor } from '../../../../../testkit/ports.js';
import { COST } from '../../../src/passwords.js';
import { createDemoDirectory } from '../../../src/users.js';

// A node is ready in well under a second whatever DEMO_USERS is (docs/http-contract.md) because
// nothing of the demo accounts is hashed before it listens: each account's hash is derived the
// first time it is used. Counted, not timed: every scrypt the directory runs is reported
// (onDerive). Hashing every account at start, as the node once did, passes any timing test on a
// fast machine; it cannot pass this.
const COUNTER = fileURLToPath(new URL('../../../../../testkit/count-scrypt.mjs', import.meta.url));
const STANDARD = COST.standard.N;
const LOADTEST = COST.loadtest.N;

describe('scrypt derivations when the demo directory is created (what start-up costs)', () => {
  for (const demoUsers of [20, 1000, 100_000]) {
    it(`DEMO_USERS ${demoUsers}: alice's, bob's and one dummy per cost class, none of the user<N> accounts`, () => {
      const derived: number[] = [];
      const users = createDemoDirectory(demoUsers, { onDerive: (p) => derived.push(p.N) });
      expect(users.size).toBe(demoUsers + 2);
      expect([...derived].sort()).toEqual([LOADTEST, STANDARD, STANDARD, STANDARD].sort());
    });
  }

  it("an account's hash is derived on its first use, once", async () => {
    const derived: number[] = [];
    const users = createDemoDirectory(1000, { onDerive: (p) => derived.push(p.N) });
    derived.length = 0;
    expect(await users.verify('user1000', 'pass1000')).toBe('user1000');
    expect(derived).toEqual([LOADTEST, LOADTEST]); // its stored hash, then the attempt
    derived.length = 0;
    expect(await users.verify('user1000', 'pass1000')).toBe('user1000');
    expect(derived).toEqual([LOADTEST]);
  });
});

describe('the real node process (dist/main.js) at start-up', () => {
  it('DEMO_USERS 1000: ready having started only the 4 background derivations; a login then derives its own', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    let stderr = '';
    const child = spawn(process.execPath, ['--import', COUNTER, path.join(APP_DIR, 'dist/main.js')], {
      env: {
        PATH: process.env.PATH,
        SESSION_SECRETS: SECRET_A,
        SESSION_MODE: 'sticky',
        LOGIN_LIMITER: 'memory',
        DEMO_USERS: '1000',
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.on('data', (d) => (stderr += d));
    const derived = () => [...stderr.matchAll(/^scrypt N=(\d+)$/gm)].map((m) => Number(m[1]));
    try {
      await waitFor('the node to be ready', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => null))?.status === 200, 20_000, 50);
      expect(derived().sort()).toEqual([LOADTEST, STANDARD, STANDARD, STANDARD].sort());
      const c = new Client(`http://127.0.0.1:${port}`);
      expect((await c.login('user999')).status).toBe(200);
      expect(derived().filter((n) => n === LOADTEST)).toHaveLength(3); // the dummy, user999's hash, the attempt
    } finally {
      child.kill('SIGKILL');
    }
  });
});
