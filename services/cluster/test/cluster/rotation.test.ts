import { afterAll, beforeAll, expect, it } from 'vitest';
import { kill, start } from '../../src/cluster.js';
import { Client, startCluster } from '../../../../testkit/cluster.js';

// The secret-rotation runbook (docs/security.md), run as written against the local cluster: roll each node
// to "new,old" one at a time (SIGTERM drain, start with SESSION_SECRETS), then to "new" alone.
const OLD = '5e0c8d2a7f1b94c36a8e2d7051f9b4c3e6a1d8f2b7c05e94a3d6f1b8c2e7a09d';
const NEW = 'c41f7a9e2b6d08351e7c9a4f0b2d6e8a3c5f1970d4b8e2a6f3c9d1b5e7a0c284';
let cluster: Awaited<ReturnType<typeof startCluster>>;
const saved = process.env.SESSION_SECRETS;
beforeAll(async () => {
  process.env.SESSION_SECRETS = OLD;
  cluster = await startCluster({ mode: 'shared', nodes: 2, nodeEnv: { LOG_LEVEL: 'warn', SHUTDOWN_TIMEOUT: '2s' } });
});
afterAll(async () => {
  process.env.SESSION_SECRETS = saved;
  if (saved === undefined) delete process.env.SESSION_SECRETS;
  await cluster?.stop();
});

async function roll(secrets: string) {
  for (const node of ['app-1', 'app-2']) {
    await kill(node, { dir: cluster.dir, signal: 'TERM' });
    await start(node, { dir: cluster.dir, secrets });
  }
}

it('step 2 keeps old cookies working on every node; step 3 refuses cookies signed only with the old secret', async () => {
  const before = new Client(cluster.url);
  expect((await before.login('user1')).status).toBe(200);

  await roll(`${NEW},${OLD}`);
  for (let i = 0; i < 4; i++) expect((await before.get('/api/me')).status).toBe(200); // both nodes verify the old signature
  const during = new Client(cluster.url);
  expect((await during.login('user2')).status).toBe(200); // signed with the new secret

  await roll(NEW);
  for (let i = 0; i < 4; i++) expect((await before.get('/api/me')).status).toBe(401);
  for (let i = 0; i < 4; i++) expect((await during.get('/api/me')).status).toBe(200);
  // A bad secret is refused before the node is touched, naming the variable.
  await kill('app-1', { dir: cluster.dir, signal: 'TERM' });
  await expect(start('app-1', { dir: cluster.dir, secrets: 'x'.repeat(40) })).rejects.toThrow(/SESSION_SECRETS/);
  await start('app-1', { dir: cluster.dir, secrets: NEW });
}, 90_000);
