import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { which } from './process.js';

/**
 * CPU pinning for measurements (`taskset`): the node(s) under test on one core of their own, and
 * everything else (the load generator, nginx, the store, the benchmark itself) on the other cores.
 * A node that never shares its core with the load generator is charged only its own work, and a
 * request's CPU cost no longer depends on who else was scheduled there that moment.
 */
export interface PinPlan {
  /** false when the machine has a single core or no taskset: nothing is pinned, and the report says so. */
  pinned: boolean;
  /** taskset CPU lists: the node(s) under test, and everything else. */
  nodes: string;
  rest: string;
}

/** With 2 cores: cpu 1 for the node(s), cpu 0 for the rest; with more, the last core for the node(s), the others for the rest. */
export function pinPlan(cpus = os.cpus().length, hasTaskset = which('taskset') !== null): PinPlan {
  if (cpus < 2 || !hasTaskset) return { pinned: false, nodes: '', rest: '' };
  return { pinned: true, nodes: String(cpus - 1), rest: cpus === 2 ? '0' : `0-${cpus - 2}` };
}

/** Pins every thread of each process in `pids` to `cpuList` (taskset -a: libuv's thread pool and Redis's I/O threads too). */
export function pin(pids: number[], cpuList: string): void {
  for (const pid of pids) execFileSync('taskset', ['-a', '-cp', cpuList, String(pid)], { stdio: 'ignore' });
}

/** Every core again, for processes that outlive a measurement (the benchmark itself). */
export function unpin(pids: number[]): void {
  pin(pids, `0-${os.cpus().length - 1}`);
}

/** The distinct CPU lists the processes in `pids` may run on (/proc/<pid>/status, Cpus_allowed_list), sorted; gone processes are skipped. */
export function cpusAllowed(pids: number[]): string[] {
  const lists = new Set<string>();
  for (const pid of pids) {
    try {
      const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Cpus_allowed_list:\s*(\S+)/m);
      if (line) lists.add(line[1]!);
    } catch {
      // gone
    }
  }
  return [...lists].sort();
}

/** The command and arguments that start `command` pinned to `cpuList` (or unchanged when the plan pins nothing). */
export function pinnedCommand(plan: PinPlan, cpuList: string, command: string, args: string[]): [string, string[]] {
  return plan.pinned ? ['taskset', ['-c', cpuList, command, ...args]] : [command, args];
}
