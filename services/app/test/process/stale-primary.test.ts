import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launch, redisSpec, sentinelSpec, type PartState } from '../../../cluster/src/parts.js';
import { terminate } from '../../../cluster/src/lib/pids.js';
import { freePort, waitFor } from '../../../../testkit/ports.js';
import { Client } from '../../../../testkit/client.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';

// A primary that the Sentinels no longer name, still up and still reachable from a node: what a host
// that rejoins after a partition has (its old primary keeps its role and its clients' connections
// until the Sentinels demote it, 8 s or more later). Redis with min-replicas-to-write refuses that
// primary's writes (NOREPLICAS: its replicas follow the new one); the node must then ask the Sentinels
// again and write to the primary they name, instead of failing every write on the stale one, and no
// write may be acknowledged by the stale primary. Real redis-servers and a real Sentinel.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-stale-primary-'));
const parts: PartState[] = [];
let oldPrimary: Redis, newPrimary: Redis, sentinel: Redis;
let node: TestNode;

beforeAll(async () => {
  const [p, r, s] = [await freePort(), await freePort(), await freePort()];
  for (const d of ['p', 'r']) fs.mkdirSync(path.join(dir, d));
  parts.push(await launch(redisSpec(p, path.join(dir, 'p'), 'off', { name: 'primary', replicated: true }), dir));
  parts.push(await launch(redisSpec(r, path.join(dir, 'r'), 'off', { name: 'replica', replicaOf: p, replicated: true }), dir));
  parts.push(await launch(sentinelSpec({ index: 1, port: s, dir: path.join(dir, 's'), primaryPort: p }), dir));
  const client = (port: number) => new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  [oldPrimary, newPrimary, sentinel] = [client(p), client(r), client(s)];
  await waitFor('the replica in sync', async () => (await newPrimary.info('replication')).includes('master_link_status:up'), 10_000);
  node = await startNode({ SESSION_MODE: 'shared', NODE_ID: 'stale', REDIS_SENTINELS: `127.0.0.1:${s}`, REDIS_SENTINEL_NAME: 'sessions' });
}, 60_000);
afterAll(async () => {
  await node?.close();
  for (const c of [oldPrimary, newPrimary, sentinel]) c?.disconnect();
  for (const part of parts.reverse()) await terminate(part.pid);
  fs.rmSync(dir, { recursive: true, force: true });
});

it('leaves a primary the Sentinels no longer name when it refuses a write, and writes to the one they name', { timeout: 60_000 }, async () => {
  const c = new Client(node.url);
  expect((await c.login('user1')).status).toBe(200);
  expect((await c.post('/api/cart/items', { sku: 'before', qty: 1 })).status).toBe(201);
  await oldPrimary.wait(1, 5000);

  // The new primary takes over and the Sentinel names it; the old one keeps its role, without replicas.
  await newPrimary.replicaof('NO', 'ONE');
  await sentinel.call('SENTINEL', 'REMOVE', 'sessions');
  await sentinel.call('SENTINEL', 'MONITOR', 'sessions', '127.0.0.1', String(newPrimary.options.port), '1');
  await oldPrimary.config('SET', 'min-replicas-to-write', '1');
  await waitFor('the old primary without replicas', async () => (await oldPrimary.info('replication')).includes('connected_slaves:0'), 10_000);
  const keysOnOld = await oldPrimary.dbsize();

  // Writes fail (503, nothing applied) until the node follows the Sentinel; then they land on the new primary.
  const statuses: number[] = [];
  await waitFor(
    'a write through the node to succeed',
    async () => {
      const r = await c.post('/api/cart/items', { sku: 'after', qty: 1 });
      statuses.push(r.status);
      return r.status === 201;
    },
    15_000,
    100,
  );
  expect(statuses.filter((s) => s !== 201 && s !== 503)).toEqual([]);
  const cart = (await c.get('/api/cart')).body as { items: Array<{ sku: string }> };
  expect(cart.items.map((i) => i.sku).sort()).toEqual(['after', 'before']);
  // Nothing was acknowledged by the old primary: every write it was sent was refused.
  expect(await oldPrimary.dbsize()).toBe(keysOnOld);
  expect(await newPrimary.call('ROLE').then((r) => (r as string[])[0])).toBe('master');
});
