import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, type AppHandle } from '../services/app/src/app.js';
import { parseConfig, type Config } from '../services/app/src/config.js';
import { createMetrics, type Metrics } from '../services/app/src/metrics.js';
import { openDatabase } from '../services/app/src/db.js';
import { publicServer } from '../services/app/src/http/server.js';
import { needsPostgres, needsRedis } from '../services/app/src/modes.js';
import { openRedisClients, type RedisClients } from '../services/app/src/redis.js';
import { createDemoDirectory, type UserDirectory } from '../services/app/src/users.js';
import { freePort, waitFor } from '../services/cluster/src/lib/ports.js';

// Fixed test secrets (random hex, as `openssl rand -hex 32` makes them): a node refuses low-entropy ones.
export const SECRET_A = '3f9c1a7e52d04b8f96e1c2a7b05d48e3c9f61a2b7d8e04c5a13f9b6e27d0c8a1';
export const SECRET_B = 'b71e04d9a8c3f25e6d19b0a47c8e2f3d5a6b91c0e7f48d2a3b5c69e1f0d7a4b8';
export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../services/app');

let users: UserDirectory | undefined;
/** The demo directory with 20 load-test users, one per test file (hashes derived on first use). */
export const testUsers = () => (users ??= createDemoDirectory(20));

export interface TestNode {
  url: string;
  /** The internal port: /metrics, /healthz, /readyz. */
  internalUrl: string;
  config: Config;
  metrics: Metrics;
  handle: AppHandle;
  redis: RedisClients | null;
  server: http.Server;
  close(): Promise<void>;
}

/** One node, in this process, listening on a free port (port 0), against a real Redis. */
export async function startNode(env: Record<string, string | undefined>, opts: { waitForRedis?: boolean } = {}): Promise<TestNode> {
  const config = parseConfig({ SESSION_SECRETS: SECRET_A, LOG_LEVEL: 'silent', TRUST_PROXY: 'false', PORT: '0', ...env });
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics({ nodeId: config.nodeId, mode: config.mode, version: 'test' });
  const redis = needsRedis(config) ? openRedisClients(config, logger, metrics) : null;
  if (redis && opts.waitForRedis !== false) await waitFor('redis clients', () => Object.values(redis).every((c: Redis) => c.status === 'ready'), 5000, 20);
  const pg = needsPostgres(config) ? openDatabase(config, logger) : null;
  const handle = createApp(config, { redis, pg, users: testUsers(), logger, metrics });
  const server = publicServer(handle.app);
  const internal = http.createServer(handle.internal);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    internalUrl: `http://127.0.0.1:${(internal.address() as { port: number }).port}`,
    config,
    metrics,
    handle,
    redis,
    server,
    async close() {
      for (const s of [server, internal]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      handle.close();
      if (redis) await Promise.allSettled(Object.values(redis).map((c: Redis) => c.quit()));
      await pg?.end().catch(() => {});
    },
  };
}

/** The built node (dist/main.js) as a real process; resolves with its exit code and output. */
export function runNodeProcess(env: Record<string, string>, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(APP_DIR, 'dist/main.js')], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export { freePort };
