/**
 * The one duration format of the project, for the node's settings (SESSION_IDLE_TIMEOUT, …) and
 * every command-line option (`--duration`, `--kill-at`, …): a plain number of seconds (`90`), or
 * whole numbers with units from largest to smallest, each at most once: `90s`, `1m30s`, `30m`,
 * `8h`, `1d`, `1d12h`, `1500ms`. Lives in the app (which cannot import the tooling); the cluster
 * package imports it from here.
 */
const UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
] as const;

/** Milliseconds, or an Error whose message says what is accepted (the caller adds which setting). */
export function parseDurationMs(text: string): number {
  const v = text.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const re = /^(\d+)(ms|d|h|m|s)/;
  let rest = v;
  let total = 0;
  let lastRank = -1;
  while (rest.length > 0) {
    const m = re.exec(rest);
    const rank = m ? UNITS.findIndex(([u]) => u === m[2]) : -1;
    if (!m || rank <= lastRank) {
      throw new Error(`must be a duration like 90, 90s, 1m30s, 30m, 8h or 1d; got ${JSON.stringify(text)}`);
    }
    total += Number(m[1]) * UNITS[rank]![1];
    lastRank = rank;
    rest = rest.slice(m[0].length);
  }
  if (v.length === 0) throw new Error(`must be a duration like 90, 90s, 1m30s, 30m, 8h or 1d; got ${JSON.stringify(text)}`);
  return total;
}

/** Seconds (possibly fractional with `ms`). */
export function parseDurationS(text: string): number {
  return parseDurationMs(text) / 1000;
}

/** The shortest spelling of a whole number of seconds in this format: 90 → "1m30s", 0 → "0s". */
export function formatDuration(seconds: number): string {
  let ms = Math.round(seconds * 1000);
  if (ms === 0) return '0s';
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(ms / size);
    if (n > 0) out += `${n}${unit}`;
    ms -= n * size;
  }
  return out;
}
