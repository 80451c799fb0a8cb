import path from 'node:path';
import { isListening, waitFor } from './ports.js';
import { startProcess, tail, which, type Proc } from './process.js';

/**
 * A real redis-server on 127.0.0.1:port, with no persistence (a demo store; see the README on
 * what AOF/RDB would and would not save). Used by the cluster and by every test.
 */
export interface RedisServerOptions {
  port: number;
  dir: string;
  name?: string;
  detached?: boolean;
}

export function redisServerArgs(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'];
}

export async function startRedisServer(opts: RedisServerOptions): Promise<Proc> {
  const bin = which('redis-server');
  if (!bin) throw new Error('redis-server is not installed: run `sudo apt-get install redis-server` (scripts/setup.sh does this as root)');
  if (await isListening(opts.port)) throw new Error(`redis: port ${opts.port} on 127.0.0.1 is already in use`);
  const name = opts.name ?? 'redis';
  const proc = startProcess({
    name,
    command: bin,
    args: redisServerArgs(opts.port, opts.dir),
    logFile: path.join(opts.dir, `${name}.log`),
    detached: opts.detached ?? false,
  });
  try {
    await waitFor(`${name} on port ${opts.port}`, () => isListening(opts.port), 10_000, 50, () => (proc.alive() ? null : 'exited'));
  } catch (err) {
    await proc.stop('SIGKILL');
    throw new Error(`${name} did not start: ${(err as Error).message}\n${tail(proc.logFile)}`);
  }
  return proc;
}
