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

/** What the CPU accounting needs of one /proc/<pid>/stat line. */
export interface ProcStat {
  state: string;
  ppid: number;
  /** Clock ticks spent in user mode and in the kernel (every thread, since the process started). */
  utimeTicks: number;
  stimeTicks: number;
}

/**
 * Parses a /proc/<pid>/stat line. The command name (field 2) sits in parentheses and may itself
 * hold spaces and parentheses, so the fields are counted from its *last* closing parenthesis.
 */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  // After the name: state(0) ppid(1) ... utime(11) stime(12), i.e. fields 3, 4, 14 and 15 of proc(5).
  const f = text
    .slice(close + 2)
    .trim()
    .split(' ');
  const [utimeTicks, stimeTicks, ppid] = [Number(f[11]), Number(f[12]), Number(f[1])];
  if (![utimeTicks, stimeTicks, ppid].every(Number.isFinite)) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  return { state: f[0]!, ppid, utimeTicks, stimeTicks };
}

/** `pid`'s /proc stat line, or one of its threads' (null if it is gone). */
function procStat(pid: number, thread?: number): ProcStat | null {
  try {
    return parseProcStat(fs.readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

const splitMicros = (s: ProcStat | null) => (s ? { user: (s.utimeTicks * 1e6) / clockTicks(), system: (s.stimeTicks * 1e6) / clockTicks() } : { user: 0, system: 0 });

/** User and system CPU time of `pid` in microseconds, every thread included (0 if it is gone). */
export function cpuSplitMicros(pid: number): { user: number; system: number } {
  return splitMicros(procStat(pid));
}

/**
 * User and system CPU time of `pid`'s main thread alone (/proc/<pid>/task/<pid>/stat), in
 * microseconds (0 if it is gone). A Node process's other threads (V8's compiler and garbage
 * collector helpers, libuv's pool) hold the rest of its time, ended threads included: the
 * process's own line counts them, a thread's line does not outlive it.
 */
export function mainThreadSplitMicros(pid: number): { user: number; system: number } {
  return splitMicros(procStat(pid, pid));
}

/** utime + stime of `pid` in microseconds (0 if it is gone). */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuSplitMicros(pid);
  return user + system;
}

/** `pid` and every process below it (nginx: the master and its workers). */
export function withDescendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s) parentOf.set(Number(entry), s.ppid);
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parentOf) if (parent === out[i]) out.push(child);
  return out;
}

/**
 * Time the threads of `pids` have run on a CPU, in microseconds, to the nanosecond the scheduler
 * counts it (/proc/<pid>/task/<tid>/schedstat, its first field), where /proc/<pid>/stat counts clock
 * ticks of 10 ms. Threads that have ended are not counted (their time stays in the process's stat
 * line only), so this is for processes whose threads live as long as they do: nginx's master and
 * workers. A 20 s window of 40 logins/s costs nginx about 160 ms: 16 ticks, ±6 % by ticks alone.
 */
export function runMicros(pids: number[]): number {
  let ns = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) || 0;
      } catch {
        // ended between the two reads
      }
    }
  }
  return ns / 1000;
}

/** CPU microseconds used by each named group of processes, as a snapshot to subtract from a later one. */
export function cpuSnapshot(groups: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.reduce((sum, pid) => sum + cpuMicros(pid), 0)]));
}

/** User and system CPU microseconds used by each named group of processes, to subtract from a later snapshot. */
export function cpuSplitSnapshot(groups: Record<string, number[]>): Record<string, { user: number; system: number }> {
  return Object.fromEntries(
    Object.entries(groups).map(([name, pids]) => {
      const each = pids.map(cpuSplitMicros);
      return [name, { user: each.reduce((a, c) => a + c.user, 0), system: each.reduce((a, c) => a + c.system, 0) }];
    }),
  );
}

/** One core's line of /proc/stat: the clock ticks the hypervisor ran something else while it wanted to run (steal), and all its ticks. */
export interface CoreTicks {
  steal: number;
  total: number;
}

/**
 * Core `cpu`'s ticks from /proc/stat's text (`cpuN user nice system idle iowait irq softirq steal …`).
 * Steal is the time a virtual machine's core was ready to run and its host ran another guest: on a
 * shared host it tracks the noise in a measured process's CPU per request.
 */
export function parseCoreTicks(text: string, cpu: number): CoreTicks {
  const line = text.split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`/proc/stat has no line for cpu${cpu}`);
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || !f.every(Number.isFinite)) throw new Error(`not a /proc/stat cpu line: ${JSON.stringify(line)}`);
  // Guest time (fields 9 and 10) is already counted in user and nice.
  return { steal: f[7]!, total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/** Core `cpu`'s ticks now. */
export function coreTicks(cpu: number): CoreTicks {
  return parseCoreTicks(fs.readFileSync('/proc/stat', 'utf8'), cpu);
}

/** Percent of core `cpu`'s time between two readings that its host gave to another guest. */
export function stealPct(before: CoreTicks, after: CoreTicks): number {
  const total = after.total - before.total;
  return total > 0 ? ((after.steal - before.steal) / total) * 100 : 0;
}
