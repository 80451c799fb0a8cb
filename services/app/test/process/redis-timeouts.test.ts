import { execFileSync } from 'node:child_process';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedisClient, patienceMs } from '../../src/redis.js';
import { startTestRedis, type TestRedis } from '../../../../testkit/redis.js';

// A node that stalls (a GC pause, a CPU-starved container) for longer than its Redis timeouts,
// while Redis answers at once: the reply is in the socket when the node runs again, and the
// command must succeed on the same connection (redis-timeouts.ts). With ioredis's own timers the
// command failed with "Command timed out" and the socket was destroyed.
//
// The stall is a synchronous loop, so nothing of the client runs during it. It lasts until Redis
// has executed the command (redis-cli sees its key; Redis writes a reply before it reads the next
// client's command) and both timeouts have passed: a condition, not a guess at how long Redis takes.
const COMMAND_TIMEOUT_MS = 100;
const SOCKET_TIMEOUT_MS = patienceMs(COMMAND_TIMEOUT_MS);

let redis: TestRedis;
let client: Redis;
const errors: string[] = [];
beforeAll(async () => {
  redis = await startTestRedis();
  client = createRedisClient(redis.url, { commandTimeoutMs: COMMAND_TIMEOUT_MS, name: 'stall' });
  client.on('error', (err: Error) => errors.push(err.message));
  await client.connect();
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

function stallUntilExecuted(key: string, atLeastMs: number): number {
  const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' }).trim();
  const started = Date.now();
  for (;;) {
    const seen = cli('EXISTS', key) === '1';
    if (seen && Date.now() - started > atLeastMs) {
      // One more round trip: Redis has since finished the loop iteration that wrote our reply.
      cli('PING');
      return Date.now() - started;
    }
    if (Date.now() - started > 30_000) throw new Error(`Redis never executed the SET of ${key}`);
  }
}

it.each([
  ['the command timeout', COMMAND_TIMEOUT_MS * 3],
  ['the command and socket timeouts', SOCKET_TIMEOUT_MS + 200],
])('a node stalled past %s still takes the reply Redis sent meanwhile, on the same connection', async (_, stallMs) => {
  for (let round = 0; round < 3; round++) {
    const key = `stall:${stallMs}:${round}`;
    let closed = 0;
    const onClose = () => closed++;
    client.on('close', onClose);
    try {
      const reply = client.set(key, 'v');
      const stalled = stallUntilExecuted(key, stallMs);
      expect(stalled).toBeGreaterThan(stallMs);
      await expect(reply).resolves.toBe('OK');
      expect(await client.get(key)).toBe('v');
      expect(closed, 'the connection was not dropped').toBe(0);
      expect(errors).toEqual([]);
    } finally {
      client.off('close', onClose);
    }
  }
});

it('a Redis that does not answer still times the command out, and the silent socket is replaced', async () => {
  // redis-server stopped (SIGSTOP): connections stay open and nothing comes back, as from a hung
  // host. The deferred timers must still fire.
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  process.kill(redis.pid, 'SIGSTOP');
  try {
    await expect(client.get('stall:stopped')).rejects.toThrow('Command timed out');
    await closed; // the socket timeout destroyed the silent connection
    expect(errors[0]).toMatch(/^Socket timeout/);
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
  await new Promise<void>((resolve) => (client.status === 'ready' ? resolve() : client.once('ready', () => resolve())));
  expect(await client.ping()).toBe('PONG');
});
