import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kill, readState, start } from '../../src/cluster.js';
import { signal } from '../../src/lib/pids.js';
import { Client, startCluster } from '../../../../testkit/cluster.js';
import { waitFor } from '../../../../testkit/ports.js';

// nginx answers 502 when every try of a request failed, and then passes the request to the nodes
// once more (nginx.conf's @again) only where that cannot apply it twice: a GET or HEAD, or a
// request that reached no node. With `resolve` (compose, swarm) a POST whose connect to a lost
// replica timed out while nginx re-resolved the replicas ended at "no live upstreams" with the
// other replicas up: a write failed that no node had seen. Here, on the local path, the two cases
// are made by hand: every node down (nginx ends at the upstream's name), and a node that received
// the POST and died before answering.
let cluster: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  cluster = await startCluster({ mode: 'shared', nodes: 2 });
});
afterAll(async () => {
  await cluster?.stop();
});

const node = (name: string) => readState(cluster.dir)!.parts.find((p) => p.name === name)!;
/** The upstream field of nginx's access-log line for request `rid`: each pass's tries, passes separated by " : ". */
const upstreamOf = (rid: string) => {
  const line = fs
    .readFileSync(path.join(cluster.dir, 'logs', 'nginx.log'), 'utf8')
    .split('\n')
    .find((l) => l.includes(`rid=${rid}`));
  return / upstream=(.*) ustatus=/.exec(line ?? '')?.[1] ?? `no log line for ${rid}`;
};
const passes = (rid: string) => upstreamOf(rid).split(' : ').length;
/** Starts the nodes named, then waits until nginx sends requests to both nodes again (after its fail_timeout). */
async function serving(...stopped: string[]): Promise<void> {
  for (const name of stopped) await start(name, { dir: cluster.dir });
  const seen = new Set<string>();
  await waitFor(
    'nginx sending to both nodes again',
    async () => seen.add((await fetch(cluster.url + '/api/ping')).headers.get('x-served-by') ?? '').has('app-1') && seen.has('app-2'),
    20_000,
    100,
  );
}

const ROUNDS = 3;
const AT_ONCE = 8;

it('POSTs that reached no node are passed to the nodes once more, and none is applied', async () => {
  const client = new Client(cluster.url);
  expect((await client.login('user1')).status).toBe(200);
  for (let round = 0; round < ROUNDS; round++) {
    await kill('app-1', { dir: cluster.dir });
    await kill('app-2', { dir: cluster.dir });
    // Both connects refused: nginx marks both nodes failed and answers 502 from the last one's address.
    expect((await client.post('/api/cart/items', { sku: `lost-${round}`, qty: 1 })).status).toBe(502);
    // Within fail_timeout nginx has no live node: each pass ends at the upstream's name, nothing sent anywhere.
    const at = await Promise.all(Array.from({ length: AT_ONCE }, () => client.post('/api/cart/items', { sku: `lost-${round}`, qty: 1 })));
    expect(at.map((r) => r.status)).toEqual(Array(AT_ONCE).fill(502));
    for (const r of at) {
      const rid = r.headers.get('x-request-id')!;
      expect(upstreamOf(rid)).toMatch(/^app : /);
      expect(passes(rid)).toBe(2);
    }
    await serving('app-1', 'app-2');
    expect((await client.post('/api/cart/items', { sku: `kept-${round}`, qty: 1 })).status).toBe(201);
  }
  // The writes that got an answer are the only ones applied.
  const items = (await client.get('/api/cart')).body.items as Array<{ sku: string; qty: number }>;
  expect(items.map((i) => `${i.sku}×${i.qty}`).sort()).toEqual(Array.from({ length: ROUNDS }, (_, r) => `kept-${r}×1`));
}, 120_000);

it('POSTs that a node received and lost are answered 502 once, never sent to a node again', async () => {
  const client = new Client(cluster.url);
  expect((await client.login('user2')).status).toBe(200);
  for (let round = 0; round < ROUNDS; round++) {
    await kill('app-2', { dir: cluster.dir });
    // app-1 stopped: the kernel still accepts nginx's connections and takes the requests into their
    // sockets, where app-1 cannot read them; killed then, each socket is reset under a sent request.
    const app1 = node('app-1');
    signal(app1.pid, 'SIGSTOP');
    try {
      const pending = Promise.all(Array.from({ length: AT_ONCE }, () => client.post('/api/cart/items', { sku: `lost-${round}`, qty: 1 })));
      const unread = () =>
        execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${app1.port} )`], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => Number(l.trim().split(/\s+/)[0]) > 0).length;
      await waitFor(`${AT_ONCE} POSTs waiting in app-1's sockets`, async () => unread() === AT_ONCE, 10_000, 20);
      signal(app1.pid, 'SIGKILL');
      const answers = await pending;
      expect(answers.map((r) => r.status)).toEqual(Array(AT_ONCE).fill(502));
      for (const r of answers) expect(passes(r.headers.get('x-request-id')!)).toBe(1);
    } finally {
      signal(app1.pid, 'SIGKILL');
    }
    await serving('app-1', 'app-2');
  }
  expect((await client.get('/api/cart')).body.items).toEqual([]);
}, 120_000);
