import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';

/**
 * How fast the node's core runs during a measured window: a gauge process pinned to that core at
 * the idle scheduling class (SCHED_IDLE, `chrt --idle 0`) repeats a fixed piece of work (JSON,
 * hashing and allocation like a request's) whenever the node leaves the core idle, and counts it.
 * The kernel gives the node the core the moment it wakes (a SCHED_IDLE task is preempted by any
 * other), so the gauge uses only the node's idle time, spread through the whole window, and reads
 * the core's speed under the same conditions as the node's requests: the CPU µs that 30,000 units
 * of the work took. The work never changes, so the figure moves only with the machine under it: a
 * host that gives the core to another guest shows as steal, but one whose other guests share the
 * core's caches or memory bandwidth, or that changes its clock, shows only here (before the gauge
 * ran inside the window, the same work timed around each window took 140-241 ms on one core in a
 * run of 2026-12-04, and the speed moved within a window faster than readings around it follow).
 */
export const GAUGE_UNITS = 30_000;

const SCRIPT = `
const { createHash } = require('node:crypto');
const o = { id: 'abc', user: 'user1', cart: Array.from({ length: 8 }, (_, i) => ({ sku: 'sku' + i, qty: i })), n: 0 };
let h = 0;
function work(n) {
  for (let i = 0; i < n; i++) {
    o.n = i;
    const s = JSON.stringify(o);
    h ^= createHash('sha256').update(s).digest()[0] + JSON.parse(s).cart.length;
  }
}
work(3000);
let done = 0;
const base = process.cpuUsage();
function loop() { work(20); done += 20; setImmediate(loop); }
process.stdin.on('data', () => {
  const u = process.cpuUsage(base);
  process.stdout.write(done + ' ' + (u.user + u.system) + ' ' + (h & 1) + '\\n');
});
process.stdout.write('ready\\n');
loop();
`;

export interface GaugeReading {
  units: number;
  cpuUs: number;
}

export interface CoreGauge {
  pid: number;
  /** Units of work done and CPU µs spent since the gauge started. */
  read(): Promise<GaugeReading>;
  stop(): Promise<void>;
}

/** CPU µs per GAUGE_UNITS units of work between two readings (null when too little ran to tell: under 1,000 units). */
export function gaugeUsBetween(a: GaugeReading, b: GaugeReading): number | null {
  const units = b.units - a.units;
  return units < 1000 ? null : ((b.cpuUs - a.cpuUs) / units) * GAUGE_UNITS;
}

/** Starts the gauge on core `cpu` and waits until it has warmed up. */
export async function startCoreGauge(cpu: number): Promise<CoreGauge> {
  const child: ChildProcessWithoutNullStreams = spawn('chrt', ['--idle', '0', 'taskset', '-c', String(cpu), process.execPath, '-e', SCRIPT], { stdio: 'pipe' });
  let buffered = '';
  const lines: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  let exited = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c.slice(0, 500)));
  const exit = once(child, 'exit').then(() => {
    exited = true;
    for (const w of waiters.splice(0)) w('');
  });
  const next = (): Promise<string> => {
    if (lines.length) return Promise.resolve(lines.shift()!);
    if (exited) return Promise.resolve('');
    return new Promise((resolve) => waiters.push(resolve));
  };
  const withTimeout = async (what: string): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const line = await Promise.race([
      next(),
      new Promise<string>((_, reject) => (timer = setTimeout(() => reject(new Error(`the core gauge on cpu ${cpu} did not answer ${what} within 10 s`)), 10_000))),
    ]).finally(() => clearTimeout(timer));
    if (!line) throw new Error(`the core gauge on cpu ${cpu} exited: ${stderr.trim() || 'no output'}`);
    return line;
  };
  const stop = async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
  };
  try {
    const ready = await withTimeout('its start');
    if (ready !== 'ready') throw new Error(`the core gauge printed ${JSON.stringify(ready.slice(0, 80))}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid: child.pid!,
    async read() {
      child.stdin.write('\n');
      const line = await withTimeout('a reading');
      const [units, cpuUs] = line.split(' ').map(Number);
      if (!Number.isFinite(units) || !Number.isFinite(cpuUs)) throw new Error(`the core gauge printed ${JSON.stringify(line.slice(0, 80))}`);
      return { units: units!, cpuUs: cpuUs! };
    },
    stop,
  };
}
