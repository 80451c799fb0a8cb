import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';
import { waitFor } from '../../../../testkit/ports.js';

// The durability knob for asynchronous replication (REDIS_WAIT_REPLICAS): a session write is
// acknowledged only once a replica has it (Redis WAIT), and answered 503 when none confirms in
// time; without the knob a write is acknowledged by the primary alone.
let primary: TestRedis, replica: TestRedis;
let strict: TestNode, plain: TestNode;
beforeAll(async () => {
  [primary, replica] = await Promise.all([startTestRedis(), startTestRedis()]);
  const r = new Redis(replica.url);
  await r.replicaof('127.0.0.1', primary.port);
  await waitFor('replica in sync', async () => /master_link_status:up/.test(await r.info('replication')), 10_000);
  r.disconnect();
  [strict, plain] = await Promise.all([
    // A generous wait: on two cores busy with the rest of the suite, a replica's acknowledgement can
    // take a few hundred ms (a 200 ms wait once answered a CI login 503).
    // The command timeout far above the wait's: a write that waited for it instead of the WAIT's
    // own timeout cannot be answered within the generous bound below, however loaded the machine.
    startNode({ REDIS_URL: primary.url, NODE_ID: 'strict', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '1000', REDIS_COMMAND_TIMEOUT_MS: '20000' }),
    startNode({ REDIS_URL: primary.url, NODE_ID: 'plain' }),
  ]);
});
afterAll(async () => {
  await Promise.all([strict?.close(), plain?.close()]);
  await Promise.all([primary?.stop(), replica?.stop()]);
});

const waits = async (n: TestNode) => (await n.metrics.redisCommands.get()).values.filter((v) => v.labels.command === 'wait').reduce((a, v) => a + v.value, 0);

it('with a replica up, every write is confirmed by it (one WAIT per write) and the replica has the session', async () => {
  const c = new Client(strict.url);
  expect((await c.login('user1')).status).toBe(200);
  const before = await waits(strict);
  for (let i = 0; i < 3; i++) expect((await c.get('/api/me')).status).toBe(200);
  expect(await waits(strict)).toBe(before + 3);
  const sid = c.sessionId();
  const r = new Redis(replica.url);
  expect(await r.exists(`s:${sid}`)).toBe(1); // already there when the write was acknowledged
  r.disconnect();
});

it('a write waiting for its replica holds up no read on the node: the writes and their WAIT have a connection of their own', async () => {
  // Told by order, not by time: while a write's WAIT is blocked in Redis (the replica is stopped,
  // so it lasts its whole 1 s timeout), reads on the same node complete. Had they been queued on the
  // WAIT's connection, their replies could only come after the WAIT's. A round in which the WAIT
  // ran out before the reads were answered (a stalled machine) tells nothing and is not counted.
  const writer = new Client(strict.url);
  expect((await writer.login('user5')).status).toBe(200);
  const readers = await Promise.all(
    [6, 7, 8, 9].map(async (n) => {
      const c = new Client(strict.url);
      expect((await c.login(`user${n}`)).status).toBe(200);
      return c;
    }),
  );
  const admin = new Redis(primary.url);
  const blockedInRedis = async () => Number(/blocked_clients:(\d+)/.exec(await admin.info('clients'))![1]);
  let decided = 0;
  process.kill(replica.pid, 'SIGSTOP'); // the replica stops confirming: each WAIT runs to its timeout
  try {
    for (let round = 0; round < 10 && decided < 5; round++) {
      let writeAnswered = false;
      const t = performance.now();
      const write = writer.get('/api/me').then((r) => ((writeAnswered = true), { status: r.status, ms: performance.now() - t }));
      const blocked = await waitFor('the write to be waiting for its replica', async () => (await blockedInRedis()) === 1, 900, 5).then(
        () => true,
        () => false,
      );
      const reads = await Promise.all(readers.map((c) => c.get('/api/cart')));
      expect(reads.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      if (blocked && !writeAnswered && (await blockedInRedis()) === 1) decided++;
      const w = await write;
      expect(w.status).toBe(503); // not confirmed, so not acknowledged
      expect(w.ms).toBeGreaterThan(900); // a lower bound: the WAIT's own timeout
    }
  } finally {
    process.kill(replica.pid, 'SIGCONT');
    admin.disconnect();
  }
  expect(decided, 'rounds in which every read was answered while the WAIT was blocked').toBe(5);
  await waitFor('the replica to confirm writes again', async () => (await writer.get('/api/me')).status === 200, 10_000, 100);
}, 60_000);

it('a login\'s index entry and "log out everywhere" are confirmed by the replica too: acknowledged, the ended sessions are gone from the replica (3 rounds, reads racing it); unconfirmed, it is 503', async () => {
  const r = new Redis(replica.url, { db: 0 });
  try {
    for (let round = 0; round < 3; round++) {
      const user = `user${10 + round}`;
      const before = await waits(strict);
      const devices = [new Client(strict.url), new Client(strict.url), new Client(strict.url)];
      expect((await Promise.all(devices.map((c) => c.login(user)))).map((x) => x.status)).toEqual([200, 200, 200]);
      expect(await waits(strict)).toBe(before + 6); // per login: the session's SET and the index entry
      const sids = devices.map((c) => c.sessionId());
      expect(await r.exists(...sids.map((sid) => `s:${sid}`))).toBe(3);
      const sent = await waits(strict);
      const [all, ...reads] = await Promise.all([devices[0]!.del('/api/sessions'), devices[1]!.get('/api/cart'), devices[2]!.get('/api/cart')]);
      expect(all.status).toBe(200);
      expect(await waits(strict)).toBe(sent + 2); // the script's deletes, then this request's own session (express-session's destroy)
      expect(all.body.ended).toBe(3);
      for (const read of reads) expect([200, 401]).toContain(read.status);
      // Already on the replica when acknowledged: a failover now cannot bring any of them back.
      expect(await r.exists(...sids.map((sid) => `s:${sid}`))).toBe(0);
      for (const c of devices) expect((await c.get('/api/cart')).status).toBe(401);
    }
    // The replica stops confirming: "log out everywhere" is not acknowledged.
    const a = new Client(strict.url);
    expect((await a.login('user13')).status).toBe(200);
    process.kill(replica.pid, 'SIGSTOP');
    try {
      const out = await a.del('/api/sessions');
      expect(out.status).toBe(503);
      expect(out.body.error.code).toBe('STORE_UNAVAILABLE');
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
  } finally {
    r.disconnect();
  }
}, 60_000);

it('with no replica confirming, a write is 503 (not acknowledged) within the wait timeout; without the knob it is acknowledged by the primary alone', async () => {
  const c = new Client(strict.url);
  expect((await c.login('user2')).status).toBe(200);
  const p = new Client(plain.url);
  expect((await p.login('user3')).status).toBe(200);
  await replica.kill();
  const t = performance.now();
  const r = await c.get('/api/me');
  expect(r.status).toBe(503);
  expect(r.body.error.code).toBe('STORE_UNAVAILABLE');
  expect(performance.now() - t).toBeLessThan(10_000); // the 1 s wait, not the 20 s command timeout
  expect((await p.get('/api/me')).status).toBe(200);
  // Reads do not wait: an unmodified read still works on the strict node.
  expect((await c.get('/api/cart')).status).toBe(200);
  // A logout is a write too: unconfirmed, it is not acknowledged (a failover could bring the session back).
  const out = await c.post('/api/logout');
  expect(out.status).toBe(503);
  expect(out.body.error.code).toBe('STORE_UNAVAILABLE');
});

it('refuses a wait timeout that is not shorter than the command timeout, naming the variable', async () => {
  await expect(startNode({ REDIS_URL: primary.url, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '600' })).rejects.toThrow(
    /REDIS_WAIT_TIMEOUT_MS must be shorter than REDIS_COMMAND_TIMEOUT_MS/,
  );
});
