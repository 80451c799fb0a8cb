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

it('a POST that reached no node is passed to the nodes once more', async () => {
  const client = new Client(cluster.url);
  expect((await client.login('user1')).status).toBe(200);
  await kill('app-1', { dir: cluster.dir });
  await kill('app-2', { dir: cluster.dir });
  // Both connects refused: nginx marks both nodes failed and answers 502 from the last one's address.
  const first = await client.post('/api/cart/items', { sku: 'a', qty: 1 });
  expect(first.status).toBe(502);
  // Within fail_timeout, nginx has no live node: the pass ends at the upstream's name, nothing was sent anywhere.
  const second = await client.post('/api/cart/items', { sku: 'a', qty: 1 });
  expect(second.status).toBe(502);
  const rid = second.headers.get('x-request-id')!;
  expect(upstreamOf(rid)).toMatch(/^app : /);
  expect(passes(rid)).toBe(2);
  await serving('app-1', 'app-2');
  // And the writes that did get an answer are the only ones applied.
  expect((await client.post('/api/cart/items', { sku: 'a', qty: 1 })).status).toBe(201);
  expect((await client.get('/api/cart')).body.items).toEqual([expect.objectContaining({ sku: 'a', qty: 1 })]);
}, 60_000);

it('a POST that a node received and lost is answered 502 once, never sent to a node again', async () => {
  const client = new Client(cluster.url);
  expect((await client.login('user2')).status).toBe(200);
  await kill('app-2', { dir: cluster.dir });
  // app-1 stopped: the kernel still accepts nginx's connection and takes the request into its
  // socket, where app-1 cannot read it; killed then, its socket is reset under a sent request.
  const app1 = node('app-1');
  signal(app1.pid, 'SIGSTOP');
  try {
    const pending = client.post('/api/cart/items', { sku: 'b', qty: 1 });
    const unread = () =>
      execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${app1.port} )`], { encoding: 'utf8' })
        .split('\n')
        .some((l) => Number(l.trim().split(/\s+/)[0]) > 0);
    await waitFor("the POST waiting in app-1's socket", async () => unread(), 10_000, 20);
    signal(app1.pid, 'SIGKILL');
    const r = await pending;
    expect(r.status).toBe(502);
    expect(passes(r.headers.get('x-request-id')!)).toBe(1);
  } finally {
    signal(app1.pid, 'SIGKILL');
  }
  await serving('app-1', 'app-2');
  expect((await client.get('/api/cart')).body.items).toEqual([]);
}, 60_000);
