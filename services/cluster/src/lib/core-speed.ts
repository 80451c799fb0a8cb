import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * How fast the node's core is right now: the CPU time a fixed piece of work takes on it (a Node
 * process pinned there: JSON, hashing and allocation like a request's, 30,000 times after a
 * warm-up). The work never changes, so its CPU time moves only with the machine under it: a host
 * that gives the core to another guest shows as steal, but one whose other guests share the
 * core's caches or memory bandwidth, or that changes its clock, shows only here. Read before and
 * after each measured window (while the node idles), it shows how far the machine's speed moves
 * (140-241 ms on one core in a run of 2026-12-04, no window losing more than 1.1 % to steal). It
 * cannot scale a window: the speed changes within one faster than readings around it follow;
 * nginx's CPU in the same window does that better (targets.ts, spreadAgainstPct). A gauge run
 * through the window instead, on the node's core at the idle scheduling class (tried the same day),
 * tracked the node no better: set against it, the node's spread was 1.8-16.7 % where the raw one
 * was 3.9-22 % (nginx: 0.7-8.9 %), and it took every idle moment of the core under test.
 */
const ITERATIONS = 30_000;

const SCRIPT = `
const { createHash } = require('node:crypto');
const o = { id: 'abc', user: 'user1', cart: Array.from({ length: 8 }, (_, i) => ({ sku: 'sku' + i, qty: i })), n: 0 };
function work(n) {
  let h = 0;
  for (let i = 0; i < n; i++) {
    o.n = i;
    const s = JSON.stringify(o);
    h ^= createHash('sha256').update(s).digest()[0] + JSON.parse(s).cart.length;
  }
  return h;
}
work(3000);
const t0 = process.cpuUsage();
const h = work(${ITERATIONS});
const t = process.cpuUsage(t0);
process.stdout.write(String(t.user + t.system) + ' ' + h + '\\n');
`;

/** CPU microseconds the fixed work took on core `cpu` (taskset). */
export async function coreSpeedUs(cpu: number): Promise<number> {
  const { stdout } = await promisify(execFile)('taskset', ['-c', String(cpu), process.execPath, '-e', SCRIPT], { timeout: 30_000 });
  const us = Number(stdout.trim().split(' ')[0]);
  if (!Number.isFinite(us) || us <= 0) throw new Error(`the core-speed probe printed ${JSON.stringify(stdout.slice(0, 80))}`);
  return us;
}
