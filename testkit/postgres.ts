import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, postgresSpec, removePostgresData, type PartState } from '../services/cluster/src/parts.js';
import { freePort, sleep } from '../services/cluster/src/lib/ports.js';
import { signal, terminate, waitGone } from '../services/cluster/src/lib/pids.js';
import { retrying } from './ports.js';

/** A real PostgreSQL on a free loopback port in a temp directory (fsync off: tests need no crash durability). */
export interface TestPostgres {
  port: number;
  url: string;
  /** SIGKILL of the postmaster: the server dies as in a crash (its backends follow). */
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-postgres-'));
  const port = await freePort();
  const spec = postgresSpec({ port, dir, fast: true });
  const start = () => launch(spec, dir, 60_000);
  let part: PartState = await start();
  return {
    port,
    url: spec.url,
    async kill() {
      signal(part.pid, 'SIGKILL');
      await waitGone(part.pid, 5_000);
      await sleep(300); // its backends notice the postmaster's death and exit
    },
    async restart() {
      part = await retrying(start, 31, 200);
    },
    async stop() {
      await terminate(part.pid);
      removePostgresData(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
