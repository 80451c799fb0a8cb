import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, waitFor } from '../../../../testkit/ports.js';
import { APP_DIR, SECRET_A } from '../../../../testkit/node.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';

// SIGTERM on a real node process: readiness goes 503, in-flight requests finish, exit 0.
let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

it('drains on SIGTERM: in-flight requests complete, then the process exits 0', async () => {
  const { child, port, metricsPort, exited, log } = await spawnNode('drainer');
  const base = `http://127.0.0.1:${port}`;
  await waitFor('node ready', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200, 15_000);

  // alice's password hash costs ~0.3 s (scrypt N=2^17): these logins are in flight when SIGTERM lands.
  const inflight = Array.from({ length: 4 }, () =>
    fetch(base + '/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-password' }) }),
  );
  // In flight means: the node has them. Each login reserves its attempt in Redis (one EVALSHA on
  // the aux connection) before it hashes, so four of those say all four are being served (a fixed
  // sleep raced the connects on a loaded machine and signalled a node that had not accepted them).
  await waitFor(
    'four logins in flight',
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const m =
        /^session_cluster_redis_commands_total\{[^}]*connection="aux"[^}]*command="evalsha"[^}]*\} (\d+)/m.exec(text) ??
        /^session_cluster_redis_commands_total\{[^}]*command="evalsha"[^}]*connection="aux"[^}]*\} (\d+)/m.exec(text);
      return Number(m?.[1] ?? 0) >= 4;
    },
    10_000,
    10,
  );
  child.kill('SIGTERM');
  const replies = await Promise.all(inflight);
  expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  expect(await exited).toBe(0);
  expect(log()).toMatch(/"msg":"draining"/);
  expect(log()).toMatch(/"msg":"drained; exiting"/);
});

it('with SHUTDOWN_DELAY, keeps accepting (every answer Connection: close, readiness 503) for the delay, then refuses connections and exits 0', async () => {
  const { child, port, metricsPort, exited, log } = await spawnNode('delayer', { SHUTDOWN_DELAY: '3s', SHUTDOWN_TIMEOUT: '10s' });
  await waitFor('node ready', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200, 15_000);

  child.kill('SIGTERM');
  const signalled = Date.now();
  await waitFor('readiness 503 (draining)', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 503, 5_000, 10);
  // A new connection during the delay is accepted and answered, and asked to close.
  const during = await get(port, '/api/ping');
  expect(during).toMatchObject({ status: 200, connection: 'close' });

  await waitFor('the listener to close', async () => (await get(port, '/api/ping').catch((e: NodeJS.ErrnoException) => e.code)) === 'ECONNREFUSED', 10_000, 20);
  // Not before the delay: a load balancer that follows DNS is still sending until then.
  expect(Date.now() - signalled).toBeGreaterThanOrEqual(2900);
  expect(await exited).toBe(0);
  const draining = log()
    .split('\n')
    .find((l) => l.includes('"msg":"draining"'));
  expect(JSON.parse(draining!)).toMatchObject({ signal: 'SIGTERM', delayS: 3, deadlineS: 10 });
  expect(log()).toMatch(/"msg":"no longer accepting connections"/);
  expect(log()).toMatch(/"msg":"drained; exiting"/);
});

/** A node as its own process (dist/main.js) on free ports, its stdout collected. */
async function spawnNode(nodeId: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [path.join(APP_DIR, 'dist/main.js')], {
    env: {
      PATH: process.env.PATH,
      SESSION_SECRETS: SECRET_A,
      REDIS_URL: redis.url,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      HOST: '127.0.0.1',
      DEMO_USERS: '5',
      NODE_ID: nodeId,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { text: '' };
  child.stdout.on('data', (d) => (out.text += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, port, metricsPort, exited, log: () => out.text };
}

/** One request on a connection of its own (no pool): its status and Connection header. */
function get(port: number, urlPath: string): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
}
