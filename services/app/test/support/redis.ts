import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from '../../../cluster/src/lib/ports.js';
import type { Proc } from '../../../cluster/src/lib/process.js';
import { startRedisServer } from '../../../cluster/src/lib/redis-server.js';

/** A real redis-server on a free loopback port, in its own temp directory. */
export interface TestRedis {
  port: number;
  url: string;
  /** SIGKILL: the server dies as in a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-redis-'));
  const port = await freePort();
  let proc: Proc = await startRedisServer({ port, dir });
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async kill() {
      await proc.stop('SIGKILL');
    },
    async restart() {
      for (let attempt = 0; ; attempt++) {
        try {
          proc = await startRedisServer({ port, dir });
          return;
        } catch (err) {
          if (attempt > 20) throw err;
          await sleep(100);
        }
      }
    },
    async stop() {
      await proc.stop('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
