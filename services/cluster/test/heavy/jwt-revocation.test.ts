import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { kill, readState, start } from '../../src/cluster.js';
import { parseMetrics } from '../../src/lib/node-metrics.js';
import { everyNodeReady, sentinelsSettled, startCluster } from '../../../../testkit/cluster.js';
import { signal, waitFor } from '../../../../testkit/ports.js';

// jwt revocations never fail open (security round 3, item 3). Once a logout or "log out
// everywhere" has answered 200, the tokens it revoked stay refused whatever happens to Redis's
// data: lost in a restart without persistence, a Redis replaced by an empty one, a flush, a
// failover to a replica that never received the revocation, or a restart that kept its data. In
// every case the node cannot prove a token issued before unrevoked, so it refuses it (its user
// logs in again), counts it, and logs the new epoch. Each way, three times, through nginx.

const ROUNDS = 3;
type Cluster = Awaited<ReturnType<typeof startCluster>>;
const clusters: Cluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
});

async function jwtCluster(opts: Parameters<typeof startCluster>[0]): Promise<Cluster> {
  const c = await startCluster({ mode: 'jwt', nodes: 3, nodeEnv: { LOG_LEVEL: 'warn', LOGIN_MAX_FAILURES_PER_CLIENT: '100000' }, ...opts });
  clusters.push(c);
  return c;
}

async function login(url: string, user: string): Promise<string | null> {
  const r = await fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user, password: user.replace('user', 'pass') }),
  });
  return r.status === 200 ? ((await r.json()) as { accessToken: string }).accessToken : null;
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** The statuses of `n` reads with the token (least_conn spreads them over the nodes). */
const reads = async (url: string, token: string, n = 6) => Promise.all(Array.from({ length: n }, () => fetch(`${url}/api/me`, { headers: bearer(token) }).then((r) => r.status)));

/** Logs in, revokes, and checks the revocations hold before the data goes. */
async function revokeSome(url: string, round: number) {
  const [loggedOut, everywhere, other, bystander] = await Promise.all([
    login(url, `user${round * 3 + 1}`),
    login(url, `user${round * 3 + 2}`),
    login(url, `user${round * 3 + 2}`),
    login(url, `user${round * 3 + 3}`),
  ]);
  for (const t of [loggedOut, everywhere, other, bystander]) expect(t).not.toBeNull();
  expect((await fetch(`${url}/api/logout`, { method: 'POST', headers: bearer(loggedOut!) })).status).toBe(200);
  const ended = await fetch(`${url}/api/sessions`, { method: 'DELETE', headers: bearer(everywhere!) });
  expect(ended.status).toBe(200);
  const revoked = [loggedOut!, everywhere!, other!];
  for (const t of revoked) expect(await reads(url, t)).toEqual(Array(6).fill(401));
  expect(await reads(url, bystander!)).toEqual(Array(6).fill(200));
  return { revoked, bystander: bystander! };
}

/** After the store is back: revoked tokens refused on every node; the bystander's too (unprovable); a new login works. */
async function afterLoss(cluster: Cluster, tokens: { revoked: string[]; bystander: string }, round: number) {
  await waitFor('logins to work again', async () => (await login(cluster.url, `user${90 + round}`)) !== null, 30_000, 100);
  // Every node, not only the one that answered: each reconnects on its own schedule (a node still
  // reconnecting answers 503 where a revoked token must get 401).
  await everyNodeReady(cluster.dir);
  for (const t of tokens.revoked) expect(await reads(cluster.url, t, 9)).toEqual(Array(9).fill(401));
  expect(await reads(cluster.url, tokens.bystander, 9)).toEqual(Array(9).fill(401));
  const fresh = await login(cluster.url, `user${round * 3 + 3}`);
  expect(await reads(cluster.url, fresh!, 9)).toEqual(Array(9).fill(200));
}

/** Tokens refused as unprovable, summed over the nodes. */
async function unprovable(cluster: Cluster): Promise<number> {
  let sum = 0;
  for (const p of readState(cluster.dir)!.parts.filter((x) => x.kind === 'app')) {
    const text = await (await fetch(`http://127.0.0.1:${p.ports!.metrics}/metrics`)).text();
    sum += parseMetrics(text).get('session_cluster_revocation_unprovable_total') ?? 0;
  }
  return sum;
}
const epochLogged = (cluster: Cluster) =>
  readState(cluster.dir)!
    .parts.filter((p) => p.kind === 'app')
    .map(
      (p) =>
        fs
          .readFileSync(path.join(cluster.dir, 'logs', `${p.name}.log`), 'utf8')
          .split('\n')
          .filter((l) => l.includes('revocation data begins now')).length,
    )
    .reduce((a, b) => a + b, 0);

describe('Redis without persistence', () => {
  it(`killed and started again (empty), ${ROUNDS} times: revoked tokens stay refused, older ones are refused as unprovable`, async () => {
    const cluster = await jwtCluster({ redisPersistence: 'off' });
    for (let round = 0; round < ROUNDS; round++) {
      const tokens = await revokeSome(cluster.url, round);
      const [before, logged] = [await unprovable(cluster), epochLogged(cluster)];
      await kill('redis', { dir: cluster.dir });
      await start('redis', { dir: cluster.dir });
      await afterLoss(cluster, tokens, round);
      expect(await unprovable(cluster)).toBeGreaterThanOrEqual(before + 9);
      expect(epochLogged(cluster)).toBeGreaterThan(logged);
    }
  }, 120_000);

  it(`flushed (FLUSHALL), ${ROUNDS} times`, async () => {
    const cluster = await jwtCluster({ redisPersistence: 'off' });
    const redis = new Redis(readState(cluster.dir)!.parts.find((p) => p.name === 'redis')!.url);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const tokens = await revokeSome(cluster.url, round);
        const before = await unprovable(cluster);
        await redis.flushall();
        await afterLoss(cluster, tokens, round);
        expect(await unprovable(cluster)).toBeGreaterThanOrEqual(before + 9);
      }
    } finally {
      redis.disconnect();
    }
  }, 120_000);
});

describe('Redis with its append-only file', () => {
  it(`replaced by an empty one (its data deleted), ${ROUNDS} times`, async () => {
    const cluster = await jwtCluster({ redisPersistence: 'aof' });
    for (let round = 0; round < ROUNDS; round++) {
      const tokens = await revokeSome(cluster.url, round);
      await kill('redis', { dir: cluster.dir });
      fs.rmSync(path.join(cluster.dir, 'redis', 'appendonlydir'), { recursive: true, force: true });
      await start('redis', { dir: cluster.dir });
      await afterLoss(cluster, tokens, round);
    }
  }, 120_000);

  it(`killed and started again with its data: a new server is a new epoch, so even the last second of everysec is covered, ${ROUNDS} times`, async () => {
    const cluster = await jwtCluster({ redisPersistence: 'aof' });
    for (let round = 0; round < ROUNDS; round++) {
      const tokens = await revokeSome(cluster.url, round);
      await kill('redis', { dir: cluster.dir });
      await start('redis', { dir: cluster.dir });
      await afterLoss(cluster, tokens, round);
    }
  }, 120_000);
});

describe('Sentinel', () => {
  it(`a failover to a replica that never received the revocations, ${ROUNDS} times`, async () => {
    const cluster = await jwtCluster({ redisPersistence: 'aof', store: 'sentinel' });
    for (let round = 0; round < ROUNDS; round++) {
      // The previous round's failover is over, not only its writes back: a primary killed while the
      // Sentinels still reconfigure the replicas leaves them disagreeing (testkit, sentinelsSettled).
      const settled = await sentinelsSettled(cluster.dir);
      const state = readState(cluster.dir)!;
      const primary = state.parts.find((p) => p.kind === 'redis' && `127.0.0.1:${p.port}` === settled.primary)!;
      const replicas = state.parts.filter((p) => p.kind === 'redis' && p.name !== primary.name);
      // The replicas stop receiving: what is revoked now exists on the primary only.
      for (const r of replicas) signal(r.pid, 'SIGSTOP');
      let tokens: Awaited<ReturnType<typeof revokeSome>>;
      try {
        tokens = await revokeSome(cluster.url, round);
        await kill(primary.name, { dir: cluster.dir });
      } finally {
        for (const r of replicas) signal(r.pid, 'SIGCONT');
      }
      // A replica is promoted without the revocations; the nodes follow it.
      await afterLoss(cluster, tokens, round);
      // The old primary comes back as a replica of the new one, for the next round.
      await start(primary.name, { dir: cluster.dir });
    }
  }, 240_000);
});
