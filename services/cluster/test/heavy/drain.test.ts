import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kill } from '../../src/cluster.js';
import { loginMany, servedBy, startCluster, tally } from '../../../../testkit/cluster.js';

// SIGTERM (a rolling restart) under concurrent reads and writes through nginx: nothing fails.
let cluster: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  cluster = await startCluster({ mode: 'shared', nodes: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

it('drains a node with zero failed requests', async () => {
  const clients = await loginMany(cluster.url, 30);
  const results: Array<{ status: number; node: string; method: string }> = [];
  let stop = false;
  const workers = clients.map(async (c, i) => {
    for (let n = 0; !stop; n++) {
      const r = n % 3 === 2 ? await c.post('/api/cart/items', { sku: `sku-${i}`, qty: 1 }) : await c.get('/api/me');
      results.push({ status: r.status, node: servedBy(r), method: n % 3 === 2 ? 'POST' : 'GET' });
    }
  });
  await new Promise((r) => setTimeout(r, 400));
  const t0 = Date.now();
  await kill('app-2', { dir: cluster.dir, signal: 'TERM' });
  const drainMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 400));
  stop = true;
  await Promise.all(workers);

  const failed = results.filter((r) => r.status >= 400);
  console.log(
    `drain: ${results.length} requests (${results.filter((r) => r.method === 'POST').length} POST) by node ${JSON.stringify(tally(results, (r) => r.node))}; failed ${failed.length}; app-2 drained in ${drainMs} ms`,
  );
  if (failed.length)
    console.log(
      fs
        .readFileSync(path.join(cluster.dir, 'logs', 'nginx.log'), 'utf8')
        .split('\n')
        .filter((l) => /\[error\]|\[warn\]| 502 /.test(l))
        .slice(0, 20)
        .join('\n'),
      fs
        .readFileSync(path.join(cluster.dir, 'logs', 'app-2.log'), 'utf8')
        .split('\n')
        .filter((l) => /drain|listen|exit/.test(l))
        .join('\n'),
    );
  expect(failed).toEqual([]);
  expect(results.some((r) => r.node === 'app-2')).toBe(true);
});
