import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * CPU time of processes, from /proc/<pid>/stat (utime + stime, every thread included). Divided by
 * the requests served in a window, it is the physical cost of a request: unlike req/s it barely
 * moves when a noisy neighbour takes the cores, because a process that is not running is not
 * charged. Children are not included: a class of parts names every process it has (nginx's
 * workers are found as children of its master, see `withDescendants`).
 */
let ticksPerSecond: number | undefined;
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // Linux's USER_HZ on every architecture it runs on
    }
  }
  return ticksPerSecond;
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime of `pid` in microseconds (0 if it is gone). */
export function cpuMicros(pid: number): number {
  const f = statFields(pid);
  // After the name: state(0) ppid(1) ... utime(11) stime(12), i.e. fields 14 and 15 of proc(5).
  if (!f) return 0;
  return ((Number(f[11]) + Number(f[12])) * 1e6) / clockTicks();
}

/** `pid` and every process below it (nginx: the master and its workers). */
export function withDescendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f) parentOf.set(Number(entry), Number(f[1]));
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parentOf) if (parent === out[i]) out.push(child);
  return out;
}

/** CPU microseconds used by each named group of processes, as a snapshot to subtract from a later one. */
export function cpuSnapshot(groups: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.reduce((sum, pid) => sum + cpuMicros(pid), 0)]));
}
