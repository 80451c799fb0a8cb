import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { afterEach, expect, it } from 'vitest';
import { cpuMicros } from '../../src/lib/cpu.js';
import { gaugeUsBetween, startCoreGauge, type CoreGauge } from '../../src/lib/core-speed.js';
import { waitFor } from '../../src/lib/ports.js';

// The bench's core gauge runs on the node's core through each measured window. It must read the
// core's speed from the node's idle time only: were it to take a share of the core while the node
// has work, the node's requests would wait for it and the figures it corrects would move with it.
const CORE = os.cpus().length - 1;
const started: Array<ChildProcess | CoreGauge> = [];
afterEach(async () => {
  for (const p of started.splice(0)) {
    if ('stop' in p) await p.stop();
    else if (p.exitCode === null) p.kill('SIGKILL');
  }
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('counts its fixed work and reads the CPU it took, per 30,000 units', async () => {
  const gauge = await startCoreGauge(CORE);
  started.push(gauge);
  const first = await gauge.read();
  let last = first;
  await waitFor('the gauge to do 2,000 units', async () => (last = await gauge.read()).units - first.units >= 2000, 30_000, 50);
  const us = gaugeUsBetween(first, last)!;
  // 30,000 units of JSON and SHA-256 take tens to hundreds of ms of CPU on any core this runs on.
  expect(us).toBeGreaterThan(10_000);
  expect(us).toBeLessThan(10_000_000);
  // Too few units to tell: no figure rather than a noisy one.
  expect(gaugeUsBetween({ units: 0, cpuUs: 0 }, { units: 999, cpuUs: 5000 })).toBeNull();
});

it('takes the core only when nothing else wants it: beside a busy process it gets almost none', async () => {
  const gauge = await startCoreGauge(CORE);
  started.push(gauge);
  // A process at the normal scheduling class, pinned to the gauge's core, that never sleeps.
  const spinner = spawn('taskset', ['-c', String(CORE), process.execPath, '-e', 'for (;;);'], { stdio: 'ignore' });
  started.push(spinner);
  const spinnerCpu = () => cpuMicros(spinner.pid!);
  await waitFor('the spinner to run', () => spinnerCpu() > 50_000, 30_000, 20);
  const [gaugeBefore, spinBefore] = [await gauge.read(), spinnerCpu()];
  await waitFor('the spinner to use 1 s of CPU', () => spinnerCpu() - spinBefore >= 1_000_000, 60_000, 50);
  const [gaugeAfter, spinAfter] = [await gauge.read(), spinnerCpu()];
  // Shared fairly it would get about as much as the spinner; at the idle class, a few ms at most.
  const gaugeUs = gaugeAfter.cpuUs - gaugeBefore.cpuUs;
  expect(gaugeUs, `the gauge took ${gaugeUs} µs while the spinner took ${spinAfter - spinBefore}`).toBeLessThan((spinAfter - spinBefore) / 10);
});

it('stop() ends its process', async () => {
  const gauge = await startCoreGauge(CORE);
  expect(alive(gauge.pid)).toBe(true);
  await gauge.stop();
  expect(alive(gauge.pid)).toBe(false);
  await gauge.stop(); // twice is harmless
});
