import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kill } from '../src/cluster.js';
import { loginMany, servedBy, startCluster, tally } from './support.js';

// Shared mode through nginx: kill the node that served the last request; no session is lost
// and no GET fails while it dies.
let cluster: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  cluster = await startCluster({ mode: 'shared', nodes: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

it('50 sessions survive a SIGKILLed node, with zero failed GETs while it dies', async () => {
  const clients = await loginMany(cluster.url, 50);
  const first = await Promise.all(clients.map((c) => c.get('/api/me')));
  expect(first.every((r) => r.status === 200)).toBe(true);
  const spread = tally(first, servedBy);
  expect(Object.keys(spread).length).toBeGreaterThanOrEqual(2);

  const victim = servedBy(first.at(-1)!);
  // Keep every client reading while the victim dies.
  const statuses: number[] = [];
  let stop = false;
  const readers = clients.map(async (c) => {
    while (!stop) statuses.push(await c.get('/api/me').then((r) => r.status, () => 0)); // 0: the connection failed
  });
  await new Promise((r) => setTimeout(r, 300));
  await kill(victim, { dir: cluster.dir, signal: 'KILL' });
  await new Promise((r) => setTimeout(r, 700));
  stop = true;
  await Promise.all(readers);

  const failed = statuses.filter((s) => s !== 200);
  console.log(`shared: ${statuses.length} GETs around the kill of ${victim}; failed: ${failed.length}; first spread ${JSON.stringify(spread)}`);
  if (failed.length) console.log(fs.readFileSync(path.join(cluster.dir, 'logs', 'nginx.log'), 'utf8').split('\n').filter((l) => /\[error\]|\[warn\]/.test(l)).join('\n'));
  expect(failed).toEqual([]);

  const after = await Promise.all(clients.map((c) => c.get('/api/me')));
  expect(after.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
  expect(after.every((r, i) => r.body.user === `user${i + 1}`)).toBe(true);
  expect(after.some((r) => servedBy(r) === victim)).toBe(false);
  // Counters continued: each session saw its own earlier reads.
  expect(after.every((r) => r.body.requests >= 2)).toBe(true);
});
