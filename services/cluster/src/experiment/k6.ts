import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startProcess, which, type Proc } from '../lib/process.js';

/**
 * The k6 binary: `k6` on PATH, else Go's bin folder ($(go env GOPATH)/bin/k6, where
 * scripts/setup.sh installs it with `go install go.k6.io/k6@v1.8.1`).
 */
export function resolveK6(): string {
  const onPath = which('k6');
  if (onPath) return onPath;
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  const candidates = [gopath.status === 0 ? gopath.stdout.trim() : '', path.join(process.env.HOME ?? '', 'go')].filter(Boolean);
  for (const dir of candidates) {
    const bin = path.join(dir, 'bin', 'k6');
    if (fs.existsSync(bin)) return bin;
  }
  throw new Error('k6 is not installed: not on PATH nor in $(go env GOPATH)/bin; run scripts/setup.sh (it builds k6 v1.8.1 with `go install go.k6.io/k6@v1.8.1`)');
}

/** "v1.8.1", from `k6 version`. */
export function k6Version(bin: string): string {
  const out = execFileSync(bin, ['version'], { encoding: 'utf8', env: { ...process.env, K6_NO_USAGE_REPORT: 'true' } });
  return /v\d+\.\d+\.\d+\S*/.exec(out)?.[0] ?? out.trim();
}

export interface K6Run {
  bin: string;
  script: string;
  /** Passed with -e (script variables, __ENV). */
  vars: Record<string, string>;
  /** k6's JSON lines output (gzip when the name ends in .gz). */
  jsonOut: string;
  /** The web dashboard's HTML report, written at the end of the run. */
  htmlReport: string;
  /** Dashboard aggregation period (default 1s: short runs still get a report with many points). */
  dashboardPeriod?: string;
  /** Prometheus remote-write URL (<prometheus>/api/v1/write), when metrics should also go there. */
  prometheusWrite?: string;
  logFile: string;
}

/** Starts `k6 run`; output (k6's log and the text summary) goes to `logFile`. */
export function startK6(run: K6Run): Proc {
  // --include-system-env-vars=false: the script sees only the -e variables below (__ENV), not this
  // process's environment (vitest sets MODE=test; a shell may have KILL or USER_OFFSET). k6 itself
  // still reads its K6_* settings from the environment.
  const args = ['run', '--quiet', '--no-usage-report', '--include-system-env-vars=false', '--out', `json=${run.jsonOut}`];
  if (run.prometheusWrite) args.push('--out', 'experimental-prometheus-rw');
  for (const [k, v] of Object.entries(run.vars)) args.push('-e', `${k}=${v}`);
  args.push(run.script);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    K6_NO_USAGE_REPORT: 'true',
    // The dashboard without its HTTP server (port -1): it only aggregates and exports the report.
    K6_WEB_DASHBOARD: 'true',
    K6_WEB_DASHBOARD_PORT: '-1',
    K6_WEB_DASHBOARD_EXPORT: run.htmlReport,
    // With the default 10 s period a run shorter than ~20 s gets no report ("not enough data").
    K6_WEB_DASHBOARD_PERIOD: run.dashboardPeriod ?? '1s',
    ...(run.prometheusWrite && { K6_PROMETHEUS_RW_SERVER_URL: run.prometheusWrite, K6_PROMETHEUS_RW_TREND_STATS: 'p(50),p(95),p(99),max' }),
  };
  return startProcess({ name: 'k6', command: run.bin, args, logFile: run.logFile, env });
}
