import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../services/cluster/src/lib/ports.js';
import { signal, terminate, waitGone } from '../services/cluster/src/lib/pids.js';
import { launch, redisSpec, type PartState } from '../services/cluster/src/parts.js';
import { retrying } from './ports.js';

/** A real redis-server on a free loopback port, in its own temp directory, started as the cluster starts it. */
export interface TestRedis {
  port: number;
  url: string;
  /** The server's process id (of the current process, after a restart). */
  readonly pid: number;
  /** SIGKILL: the server dies as in a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-redis-'));
  const port = await freePort();
  const start = () => launch(redisSpec(port, dir), dir);
  let part: PartState = await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return part.pid;
    },
    async kill() {
      signal(part.pid, 'SIGKILL');
      await waitGone(part.pid, 5_000);
    },
    async restart() {
      part = await retrying(start, 21, 100);
    },
    async stop() {
      await terminate(part.pid);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
