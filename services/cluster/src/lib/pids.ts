import fs from 'node:fs';

/**
 * Process checks by pid, for parts started by an earlier `cluster` invocation (not our children).
 * A zombie (state Z) counts as dead: in a container, PID 1 may never reap it.
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') return true;
    // A zombie leader thread is not a dead process: its other threads (Redis's background I/O
    // threads finishing an fsync) still hold its files and sockets until the last one exits.
    // Only when every thread is gone is the process gone (its listening port then free again).
    return fs.readdirSync(`/proc/${pid}/task`).some((tid) => {
      try {
        const t = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        return t.slice(t.lastIndexOf(')') + 2)[0] !== 'Z';
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** The process's command line, or '' if it is gone. */
export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `pid` is gone, up to `timeoutMs`; returns whether it is. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

/** SIGTERM, then SIGKILL if `pid` is still there after `graceMs`; resolves once it is gone. */
export async function terminate(pid: number, graceMs = 15_000): Promise<void> {
  if (!isAlive(pid)) return;
  signal(pid, 'SIGTERM');
  if (await waitGone(pid, graceMs)) return;
  signal(pid, 'SIGKILL');
  await waitGone(pid, 5_000);
}
