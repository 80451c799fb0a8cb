import fs from 'node:fs';
import path from 'node:path';

/**
 * Every part writes its stdout and stderr to `<dir>/logs/<name>.log` (a node: one JSON line per
 * request at LOG_LEVEL=info; nginx: one access line per request), about 380 bytes per request in
 * all: a long `npm start` under load would fill the disk. The runner caps each log by size, the
 * way logrotate's `copytruncate` does: once a log exceeds the cap it is copied to `<name>.log.1`
 * (replacing the previous one) and truncated in place. The parts need not cooperate: each holds
 * its log open with O_APPEND (the runner opens it so; nginx reopens /dev/stdout so), and every
 * write lands at the current end, which after the truncation is the start again. So one part
 * uses at most about twice the cap; a line written between the copy and the truncation is lost
 * (logrotate's copytruncate has the same window).
 *
 * Who rotates: the foreground runner (`npm start`, `cluster up` without --detach) checks every
 * 250 ms while it follows the logs; a detached cluster is checked by every `cluster` verb (ps,
 * kill, start, down).
 */
export const DEFAULT_LOG_MAX_BYTES = 16 * 1024 * 1024;

/** "64k", "16M", "1G", "4096": bytes (binary units). */
export function parseSize(text: string): number | null {
  const m = /^(\d+)\s*([kmg]i?b?|b)?$/i.exec(text.trim());
  if (!m) return null;
  const unit = (m[2] ?? 'b')[0]!.toLowerCase();
  return Number(m[1]) * ({ b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[unit]!;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}G`;
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}M`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}k`;
  return `${bytes}`;
}

/** Copy-and-truncate `file` if it is larger than `maxBytes`; returns whether it did. */
export function rotateIfLarge(file: string, maxBytes: number): boolean {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  fs.copyFileSync(file, `${file}.1`);
  fs.truncateSync(file, 0);
  return true;
}

/** Rotates every `*.log` in `logDir` that is over the cap; returns the names rotated. */
export function rotateLogs(logDir: string, maxBytes: number): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(logDir).filter((f) => f.endsWith('.log'));
  } catch {
    return [];
  }
  return files.filter((f) => rotateIfLarge(path.join(logDir, f), maxBytes));
}

/**
 * Follows every part's log (prefixing each line with the part's name) and keeps each under the
 * cap, until stopped. Lines already in a log when it starts are not printed.
 */
export function followLogs(logDir: string, opts: { maxBytes: number; print?: (line: string) => void; everyMs?: number }): () => void {
  const print = opts.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const offsets = new Map<string, number>();
  const sizeOf = (file: string) => {
    try {
      return fs.statSync(file).size;
    } catch {
      return 0;
    }
  };
  for (const f of fs.readdirSync(logDir)) if (f.endsWith('.log')) offsets.set(f, sizeOf(path.join(logDir, f)));
  const timer = setInterval(() => {
    for (const f of fs.readdirSync(logDir)) {
      if (!f.endsWith('.log')) continue;
      const file = path.join(logDir, f);
      const size = sizeOf(file);
      let from = offsets.get(f) ?? 0;
      if (size < from) from = 0; // truncated (by another runner's rotation)
      if (size > from) {
        const fd = fs.openSync(file, 'r');
        const buf = Buffer.alloc(size - from);
        const read = fs.readSync(fd, buf, 0, buf.length, from);
        fs.closeSync(fd);
        const name = f.replace(/\.log$/, '').padEnd(15);
        for (const line of buf.subarray(0, read).toString('utf8').split('\n')) if (line) print(`${name}| ${line}`);
      }
      offsets.set(f, rotateIfLarge(file, opts.maxBytes) ? 0 : size);
    }
  }, opts.everyMs ?? 250);
  return () => clearInterval(timer);
}
