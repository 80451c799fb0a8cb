import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { APP_HEALTHCHECK } from '../../src/swarm/stack.js';
import { startNode, type TestNode } from '../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';
import { waitFor } from '../../../../testkit/ports.js';

// The swarm's app healthcheck (stack.ts APP_HEALTHCHECK), run as Docker runs it (node -e, in the
// node's environment), against a real node and Redis: not healthy until the node can serve
// sessions (a swarm puts a task in its service's DNS only once healthy), and from then on healthy
// while the node is alive, its store down or not (a swarm replaces a task whose check fails).
let redis: TestRedis;
let node: TestNode;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-healthcheck-'));
const mark = path.join(tmp, 'session-cluster-ready');

beforeAll(async () => {
  redis = await startTestRedis();
  await redis.kill();
  node = await startNode({ SESSION_MODE: 'shared', REDIS_URL: redis.url }, { waitForRedis: false });
});
afterAll(async () => {
  await node?.close();
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const check = () =>
  new Promise<number>((resolve) => {
    const env = { PATH: process.env.PATH, TMPDIR: tmp, METRICS_PORT: new URL(node.internalUrl).port };
    execFile(process.execPath, ['-e', APP_HEALTHCHECK], { env, timeout: 10_000 }, (err) => resolve(err ? (typeof err.code === 'number' ? err.code : -1) : 0));
  });
const ready = () => fetch(`${node.internalUrl}/readyz`).then((r) => r.status);

it('is unhealthy while the new node cannot reach its store, though alive', async () => {
  expect(await ready()).toBe(503);
  expect((await fetch(`${node.internalUrl}/healthz`)).status).toBe(200);
  expect(await check()).toBe(1);
  expect(fs.existsSync(mark)).toBe(false);
});

it('is healthy once the node is ready, and stays healthy when the store goes down again', async () => {
  await redis.restart();
  await waitFor('the node ready', async () => (await ready()) === 200, 15_000, 100);
  expect(await check()).toBe(0);
  expect(fs.existsSync(mark)).toBe(true);
  await redis.kill();
  await waitFor('the node not ready', async () => (await ready()) === 503, 15_000, 100);
  expect(await check()).toBe(0);
});

it('is unhealthy once the node is gone', async () => {
  await node.close();
  expect(await check()).toBe(1);
});
