import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_MODES } from '@session-cluster/app/modes';
import { Client, servedBy, startCluster, tally } from '../../../../testkit/cluster.js';

// The login budgets hold across all nodes, in every mode (security round 3, item 2), through nginx
// in front of three nodes: nginx's least_conn spreads one client's guesses over every node without
// the attacker trying, so a budget counted per node would be multiplied by three. And a username
// that is an Object.prototype key is an unknown user like any other (item 4): 401, and counted.

const MAX_FAILURES = 5; // the default LOGIN_MAX_FAILURES, per username + client
const login = (url: string, username: string, password: string) => new Client(url).post('/api/login', { username, password });

describe.each(SESSION_MODES)('%s mode, three nodes behind nginx', (mode) => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  beforeAll(async () => {
    // The address budget (per client, 100 by default) is raised: every guess here comes from 127.0.0.1.
    cluster = await startCluster({ mode, nodes: 3, nodeEnv: { LOG_LEVEL: 'warn', LOGIN_MAX_FAILURES_PER_CLIENT: '100000' } });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it(`40 simultaneous wrong guesses for one username, spread over the three nodes: ${MAX_FAILURES} are checked, three rounds`, async () => {
    for (let round = 0; round < 3; round++) {
      const user = `user${10 + round}`;
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => login(cluster.url, user, `wrong-${i}`)));
      const statuses = tally(replies, (r) => String(r.status));
      // Checked = answered 401 (a password was hashed). A reservation that times out on a busy machine
      // fails closed (503): it never checks one more.
      expect(statuses['401'], JSON.stringify(statuses)).toBe(MAX_FAILURES);
      expect((statuses['401'] ?? 0) + (statuses['429'] ?? 0) + (statuses['503'] ?? 0)).toBe(40);
      // The guesses did reach every node (else this would not test a budget across nodes).
      expect(new Set(replies.map(servedBy)).size, JSON.stringify(tally(replies, servedBy))).toBe(3);
      // And the right password is refused too until the window ends.
      const right = await login(cluster.url, user, user.replace('user', 'pass'));
      expect(right.status).toBe(429);
      expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  }, 60_000);

  it('right and wrong passwords for the same users at once: every login is answered (200, 401 or 429), none fails, six rounds', async () => {
    for (let round = 0; round < 6; round++) {
      const users = [40, 41, 42].map((n) => `user${n + round * 3}`);
      const attempts = users.flatMap((u) => [...Array(10).fill(u.replace('user', 'pass')), 'wrong-1', 'wrong-2', 'wrong-3'].map((p) => [u, p] as const));
      const replies = await Promise.all(attempts.map(([u, p]) => login(cluster.url, u, p)));
      const odd = replies
        .map((r, i) => `${attempts[i]![1].startsWith('wrong') ? 'wrong' : 'right'} ${r.status} ${r.body?.error?.code ?? ''}`)
        .filter((s) => !/^right 200|^wrong 401|^(right|wrong) 429 RATE_LIMITED/.test(s));
      expect(odd, `round ${round}`).toEqual([]);
      expect(replies.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    }
  }, 60_000);

  it(`30 wrong guesses one after another: the first ${MAX_FAILURES} are checked, whichever node answers`, async () => {
    const statuses: number[] = [];
    const nodes = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await login(cluster.url, 'user20', `wrong-${i}`);
      statuses.push(r.status);
      nodes.add(servedBy(r));
    }
    expect(statuses).toEqual([...Array(MAX_FAILURES).fill(401), ...Array(30 - MAX_FAILURES).fill(429)]);
    expect(nodes.size).toBe(3);
  }, 60_000);

  it('a login answer is never cached; "log out everywhere" revokes the device cookies its logins left', async () => {
    // The owner logs in from her browser: a device cookie (sent to the login route only).
    const owner = new Client(cluster.url);
    const first = await owner.login('user31');
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.getSetCookie().find((c) => c.startsWith('device='))).toMatch(/; Path=\/api\/login; /);
    // An attacker on the same address spends user31's budget...
    for (let i = 0; i < MAX_FAILURES; i++) expect((await login(cluster.url, 'user31', `guess-${i}`)).status).toBe(401);
    expect((await login(cluster.url, 'user31', 'pass31')).status).toBe(429);
    // ...but the owner's device is trusted: she logs in (and gets a fresh device cookie).
    const again = await owner.login('user31');
    expect(again.status).toBe(200);
    const token = again.body.accessToken as string | undefined;
    const everywhere = await owner.del('/api/sessions', token ? { authorization: `Bearer ${token}` } : {});
    if (mode === 'cookie') {
      // Nothing on the server to end: the request is refused, and the device stays trusted.
      expect(everywhere.status).toBe(501);
      expect((await owner.login('user31')).status).toBe(200);
      return;
    }
    expect(everywhere.status).toBe(200);
    // Every device cookie issued before it is trusted no more: the owner is held to the spent budget too.
    expect((await owner.login('user31')).status).toBe(429);
  }, 60_000);

  it('every Object.prototype key as a username is an unknown user: 401, never a 500, and counted', async () => {
    const names = Object.getOwnPropertyNames(Object.prototype);
    expect(names).toEqual(expect.arrayContaining(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']));
    const replies = await Promise.all(names.map((name) => login(cluster.url, name, 'a-password')));
    expect(replies.map((r) => `${r.status} ${r.body?.error?.code}`)).toEqual(names.map(() => '401 BAD_CREDENTIALS'));
    // Counted like any unknown name: the budget runs out.
    for (const name of ['constructor', '__proto__']) {
      for (let i = 1; i < MAX_FAILURES; i++) expect((await login(cluster.url, name, `guess-${i}`)).status, name).toBe(401);
      expect((await login(cluster.url, name, 'one-more')).status, name).toBe(429);
    }
  }, 60_000);
});
