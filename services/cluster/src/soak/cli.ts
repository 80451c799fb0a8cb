import fs from 'node:fs';
import path from 'node:path';
import { formatDuration } from '@session-cluster/app/duration';
import { type Mode, REPO_ROOT } from '../cluster.js';
import { durationOption, EXIT, intOption, parseOptions, runCli, UsageError } from '../lib/cli.js';
import { runSoak, type SoakReport } from './run.js';

/**
 * npm run soak [-- --duration 8m --mode shared|sticky|both …]: state that outlives its sessions.
 * Exit codes (lib/cli.ts): 0 everything came back down; 1 something did not (or the soak could
 * not run); 2 usage error; 130 interrupted.
 */
const USAGE = `usage: npm run soak [-- options]
  --mode shared|sticky|both   session mode(s), one after the other (default shared)
  --duration 8m               churn length (90, 90s, 1m30s, 30m, 8h, 1d)
  --quiet DURATION            no traffic afterwards (default: the absolute timeout + 30s, at least 3m)
  --idle 60s --absolute 150s  the nodes' session lifetimes (SESSION_IDLE_TIMEOUT / SESSION_ABSOLUTE_TIMEOUT)
  --users 40                  concurrent virtual users (each: log in, read, add to the cart, log out or walk away)
  --pool 1000                 demo users they log in as (user1..userN; every one is hashed at each node's start)
  --think 20                  pause between one user's requests, ms
  --every 30s                 report interval
  --warmup 30s                before the churn, the same traffic with every session logged out; then each
                              node's live heap (after a full GC) is the baseline. 0: the node as started
  --nodes 3                   session nodes behind nginx
  --heap-tolerance 20         % a node's heap may end above its start
  --out DIR                   where soak-<mode>.json and the parts' logs (logs-<mode>/) go (default reports/soak)`;

const say = (line: string): void => void process.stdout.write(`[soak] ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, {
    mode: { type: 'string', default: 'shared' },
    duration: { type: 'string' },
    quiet: { type: 'string' },
    idle: { type: 'string' },
    absolute: { type: 'string' },
    users: { type: 'string' },
    pool: { type: 'string' },
    think: { type: 'string' },
    every: { type: 'string' },
    warmup: { type: 'string' },
    nodes: { type: 'string' },
    'heap-tolerance': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return (void process.stdout.write(`${USAGE}\n`), EXIT.ok);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const modes: Mode[] = values.mode === 'both' ? ['shared', 'sticky'] : values.mode === 'shared' || values.mode === 'sticky' ? [values.mode] : [];
  if (!modes.length) throw new UsageError(`--mode must be shared, sticky or both, got "${values.mode}"`);
  const whole = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a whole number of seconds, at least 1, got ${v}`);
    return v;
  };
  const durationS = whole('duration', durationOption('duration', values.duration, '8m'));
  const idleS = whole('idle', durationOption('idle', values.idle, '60s'));
  const absoluteS = whole('absolute', durationOption('absolute', values.absolute, '150s'));
  if (absoluteS < idleS) throw new UsageError(`--absolute (${formatDuration(absoluteS)}) must not be shorter than --idle (${formatDuration(idleS)})`);
  const quietS = whole('quiet', durationOption('quiet', values.quiet, `${Math.max(180, absoluteS + 30)}s`));
  if (quietS <= absoluteS)
    say(
      `note: --quiet ${formatDuration(quietS)} is not longer than --absolute ${formatDuration(absoluteS)}: index entries left to expire with their key (one absolute timeout after the user's last login) are still there at the end and fail the check; this is the run that shows whether dead entries are removed sooner`,
    );
  const everyS = durationOption('every', values.every, '30s');
  const warmupS = durationOption('warmup', values.warmup, '30s');
  if (!Number.isInteger(warmupS)) throw new UsageError(`--warmup must be a whole number of seconds, got ${warmupS}`);
  if (everyS < 1) throw new UsageError('--every must be at least 1s');
  const users = intOption('users', values.users, 40, 1, 1000);
  const pool = intOption('pool', values.pool, 1000, 1, 100_000);
  const thinkMs = intOption('think', values.think, 20, 0, 60_000);
  const nodes = intOption('nodes', values.nodes, 3, 1, 32);
  const heapTolerance = intOption('heap-tolerance', values['heap-tolerance'], 20, 0, 1000) / 100;
  const outDir = values.out ? path.resolve(values.out) : path.join(REPO_ROOT, 'reports', 'soak');
  fs.mkdirSync(outDir, { recursive: true });

  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    say(`${sig}: stopping the load and tearing the cluster down`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const reports: SoakReport[] = [];
  for (const mode of modes) {
    let report: SoakReport;
    try {
      report = await runSoak({
        mode,
        nodes,
        durationS,
        quietS,
        everyS,
        warmupS,
        idleS,
        absoluteS,
        users,
        pool,
        thinkMs,
        heapTolerance,
        logsDir: path.join(outDir, `logs-${mode}`),
        say,
        signal: controller.signal,
      });
    } catch (err) {
      if (controller.signal.aborted) return (say('interrupted; the cluster is down'), EXIT.interrupted);
      throw err;
    }
    reports.push(report);
    const file = path.join(outDir, `soak-${mode}.json`);
    fs.writeFileSync(file, `${JSON.stringify({ command: `npm run soak -- ${argv.join(' ')}`, ...report }, null, 2)}\n`);
    const t = report.totals;
    say(
      `${mode}: ${t.requests} requests, ${t.errors} errors, p95 ${t.p95Ms === null ? '-' : `${t.p95Ms.toFixed(1)} ms`}; ${t.logins} logins, ${t.logouts} logouts, ${t.abandoned} abandoned`,
    );
    for (const c of report.checks) say(`${mode}: ${c.held ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
    say(`${mode}: ${report.passed ? 'everything came back down' : 'something did not come back down'}; report ${file}`);
  }
  return reports.every((r) => r.passed) ? EXIT.ok : EXIT.failed;
}

runCli('soak', USAGE, () => main(process.argv.slice(2)));
