import fs from 'node:fs';
import path from 'node:path';

/**
 * Live processes that belong to a run folder: whose command line names it, whose working
 * directory is in it, or that hold a file in it open (every part the runner starts writes its
 * stdout and stderr to a log file in the folder). What a failed `cluster up` started can be found
 * this way even when it wrote no state.json and has exited. Linux /proc; this process is left out.
 */
export function processesUsing(dir: string): Array<{ pid: number; command: string }> {
  const root = fs.realpathSync(dir) + path.sep;
  const inside = (p: string) => p === root.slice(0, -1) || p.startsWith(root) || p.startsWith(dir + path.sep);
  const found: Array<{ pid: number; command: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!command) continue; // a zombie or a kernel thread: nothing left running
      const fds = (() => {
        try {
          return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => readLink(`/proc/${pid}/fd/${fd}`));
        } catch {
          return [];
        }
      })();
      if (command.includes(dir) || command.includes(root) || inside(readLink(`/proc/${pid}/cwd`)) || fds.some(inside)) found.push({ pid, command });
    } catch {
      // The process exited while being looked at.
    }
  }
  return found;
}

function readLink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
}
