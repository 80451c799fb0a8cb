import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { cpuSplitMicros, mainThreadSplitMicros, runMicros } from '../../src/lib/cpu.js';
import { waitFor } from '../../src/lib/ports.js';

// The bench splits a node's CPU into its main thread and its other threads (V8's helpers, libuv's
// pool: a login's scrypt runs there). Here a real Node process burns CPU in one place or the
// other, and the split must say where: by the work it did, not by the time it took.
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

const total = (x: { user: number; system: number }) => x.user + x.system;
const BURN_MS = 600;

/** A Node process that spins for BURN_MS of CPU in `where` (its main thread or a worker's), then idles until killed, its worker alive. */
function burner(where: 'main' | 'worker'): ChildProcess {
  const spin = `const end = process.cpuUsage().user + ${BURN_MS * 1000}; while (process.cpuUsage().user < end);`;
  const script =
    where === 'main'
      ? `${spin} setInterval(() => {}, 1000);`
      : `const { Worker } = require('node:worker_threads'); new Worker(${JSON.stringify(`${spin} setInterval(() => {}, 1000);`)}, { eval: true }); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  children.push(child);
  return child;
}

it('a process that works in another thread: its CPU is the process’s, not its main thread’s', async () => {
  const { pid } = burner('worker');
  await waitFor('the worker to burn its CPU', () => total(cpuSplitMicros(pid!)) >= BURN_MS * 1000, 30_000);
  const [all, main] = [total(cpuSplitMicros(pid!)), total(mainThreadSplitMicros(pid!))];
  expect(main).toBeGreaterThan(0);
  // The main thread started Node and the worker (tens of ms); the worker's BURN_MS are elsewhere.
  expect(main, `main ${main} µs of ${all}`).toBeLessThan(all - BURN_MS * 500);
});

it('a process that works in its main thread: the main thread holds nearly all of it', async () => {
  const { pid } = burner('main');
  await waitFor('the main thread to burn its CPU', () => total(mainThreadSplitMicros(pid!)) >= BURN_MS * 1000, 30_000);
  const [all, main] = [total(cpuSplitMicros(pid!)), total(mainThreadSplitMicros(pid!))];
  expect(main, `main ${main} µs of ${all}`).toBeGreaterThan(all * 0.8);
});

it('a process that is gone reads as 0', async () => {
  const child = burner('main');
  const pid = child.pid!;
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  expect(mainThreadSplitMicros(pid)).toEqual({ user: 0, system: 0 });
});

it('run time to the nanosecond (schedstat) counts the same work as the clock ticks, every live thread included', async () => {
  const { pid } = burner('worker');
  await waitFor('the worker to burn its CPU', () => total(cpuSplitMicros(pid!)) >= BURN_MS * 1000, 30_000);
  const [run, ticks] = [runMicros([pid!]), total(cpuSplitMicros(pid!))];
  // The worker's BURN_MS are in its own thread: a reading of the main thread alone would fall short.
  expect(run).toBeGreaterThanOrEqual(BURN_MS * 1000);
  // Ticks are 10 ms each and both include Node's start-up; the two agree within a few ticks.
  expect(Math.abs(run - ticks), `schedstat ${run} µs, ticks ${ticks} µs`).toBeLessThan(50_000);
  expect(runMicros([pid!, 2 ** 22 + 7])).toBeGreaterThanOrEqual(run); // a gone pid adds nothing
});
