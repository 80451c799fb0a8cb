/**
 * infra/redis/start.sh, the entrypoint of each Redis of the Sentinel topology, on real redis-servers
 * and three real Sentinels: a server that starts again as a new one (a swarm task replaced, a
 * container recreated) takes the role the Sentinels give it now, not the one its command gave it at
 * the first start. The image's docker-entrypoint.sh is a one-line `exec "$@"` here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, redisSpec, sentinelSpec, type PartState } from '../../../services/cluster/src/parts.js';
import { freePort, signal, terminate, waitFor, waitGone } from '../../../testkit/ports.js';

const START = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../redis/start.sh');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-redis-start-'));
const parts: PartState[] = [];
const clients: Redis[] = [];
let primary: PartState, replica: PartState;
let sentinels: string;

const client = (port: number) => {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => {}); // a killed server's clients reconnect until the end
  clients.push(c);
  return c;
};
/** The server's role and, for a replica, its primary's port (ROLE). */
const role = async (port: number) => {
  const r = (await client(port).call('ROLE')) as unknown[];
  return r[0] === 'slave' ? `replica of ${r[2]}` : String(r[0]);
};

/** A redis-server started by start.sh with `command` (redisSpec's, so `--replicaof` as given), asking `sentinelList`. */
async function startThroughScript(name: string, replicaOf: number | undefined, sentinelList: string, port?: number): Promise<PartState> {
  const p = port ?? (await freePort());
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  const spec = redisSpec(p, d, 'off', { name, replicated: true, ...(replicaOf && { replicaOf }) });
  const part = await launch(
    { ...spec, command: 'sh', args: [START, spec.command, ...spec.args], env: { PATH: `${shims}:${process.env.PATH}`, SENTINELS: sentinelList, WAIT_S: '30' } },
    dir,
  );
  parts.push(part);
  return part;
}
const shims = path.join(dir, 'bin');

beforeAll(async () => {
  fs.mkdirSync(shims);
  fs.writeFileSync(path.join(shims, 'docker-entrypoint.sh'), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
  const [p, r] = [await freePort(), await freePort()];
  for (const d of ['p', 'r']) fs.mkdirSync(path.join(dir, d));
  primary = await launch(redisSpec(p, path.join(dir, 'p'), 'off', { name: 'primary', replicated: true }), dir);
  parts.push(primary);
  replica = await launch(redisSpec(r, path.join(dir, 'r'), 'off', { name: 'replica', replicaOf: p, replicated: true }), dir);
  parts.push(replica);
  const ports: number[] = [];
  for (let i = 1; i <= 3; i++) {
    ports.push(await freePort());
    parts.push(await launch(sentinelSpec({ index: i, port: ports.at(-1)!, dir: path.join(dir, `s${i}`), primaryPort: p }), dir));
  }
  sentinels = ports.map((port) => `127.0.0.1:${port}`).join(' ');
  await waitFor('the replica in sync', async () => (await client(r).info('replication')).includes('master_link_status:up'), 10_000);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const part of parts.reverse()) await terminate(part.pid);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('start.sh: a Redis takes the role the Sentinels give it now', () => {
  it('no Sentinel answers (the first start): the command as written', async () => {
    const nobody = await freePort();
    const n = await startThroughScript('first-start', replica.port, `127.0.0.1:${nobody}`);
    expect(await role(n.port)).toBe(`replica of ${replica.port}`);
  });

  it('told to follow a server that is a replica now: it follows the primary, which lists it, and the Sentinels learn it', { timeout: 30_000 }, async () => {
    // `redis-replica` starting again while `redis` is itself a replica: without the script, a chain
    // the primary does not list and the Sentinels never see.
    const n = await startThroughScript('chained', replica.port, sentinels);
    expect(await role(n.port)).toBe(`replica of ${primary.port}`);
    await waitFor('the primary to list it', async () => (await client(primary.port).info('replication')).includes(`port=${n.port},state=online`), 10_000);
    const s = client(Number(sentinels.split(' ')[0]!.split(':')[1]));
    await waitFor(
      'the Sentinel to know it',
      async () => ((await s.call('SENTINEL', 'REPLICAS', 'sessions')) as string[][]).some((r) => r[r.indexOf('port') + 1] === String(n.port)),
      15_000,
      250,
    );
  });

  it('named the primary by the Sentinels: it starts as the primary, whatever its command says', async () => {
    // A Sentinel watching a primary that is not running yet (its address): the server starting there.
    const port = await freePort();
    const own = await freePort();
    parts.push(await launch({ ...sentinelSpec({ index: 4, port: own, dir: path.join(dir, 's4'), primaryPort: port }), name: 'sentinel-own' }, dir));
    const n = await startThroughScript('named', primary.port, `127.0.0.1:${own}`, port);
    expect(await role(n.port)).toBe('master');
  });

  it('the primary it was told to follow is dead: it waits for the failover and follows the new primary', { timeout: 60_000 }, async () => {
    signal(primary.pid, 'SIGKILL');
    await waitGone(primary.pid, 5_000);
    // Started at once: the Sentinels still name the dead primary for about 2 s (down-after), then fail over.
    const n = await startThroughScript('after-kill', primary.port, sentinels);
    const s = client(Number(sentinels.split(' ')[0]!.split(':')[1]));
    const [, promoted] = (await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'sessions')) as string[];
    expect(Number(promoted)).not.toBe(primary.port);
    expect(await role(Number(promoted))).toBe('master');
    expect(await role(n.port)).toBe(`replica of ${promoted}`);
  });
});
