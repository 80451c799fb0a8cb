import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { resolveK6 } from '../experiment/k6.js';
import { pinnedCommand, type PinPlan } from '../lib/pin.js';
import { parseTimes, type WrkResult } from './wrk.js';

/**
 * A fixed offered rate: k6's constant-arrival-rate executor starts `rate` requests every second
 * whatever the answers' latency (open model, no coordinated omission), unlike wrk, which sends the
 * next request on a connection as soon as the last one is answered (so it always runs at
 * saturation). At a rate below saturation the node is idle between requests and every request costs
 * what it costs alone: its CPU per request does not depend on how many requests share an event-loop
 * turn (it still moves with the machine's speed: docs/results.md).
 */
export interface PacedResult extends WrkResult {
  /** Requests k6 could not start on time (no free VU): the rate was not held when > 0. */
  dropped: number;
}

const SCRIPT = `
import http from 'k6/http';
const creds = __ENV.CREDS
  ? open(__ENV.CREDS).split('\\n').filter((l) => l.includes(':')).map((l) => {
      const i = l.indexOf(':');
      return { [l.slice(0, i).trim()]: l.slice(i + 1).trim() };
    })
  : [];
const first = Number(__ENV.FIRST || 1);
const count = Number(__ENV.COUNT || 100);
export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(99)'],
  scenarios: {
    paced: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE),
      timeUnit: '1s',
      duration: __ENV.SECONDS + 's',
      preAllocatedVUs: Number(__ENV.VUS),
      maxVUs: Number(__ENV.VUS),
      gracefulStop: '5s',
    },
  },
};
export default function () {
  const n = __VU * 7919 + __ITER;
  if (__ENV.KIND === 'login') {
    const u = first + (n % count);
    http.post(__ENV.URL + '/api/login', JSON.stringify({ username: 'user' + u, password: 'pass' + u }), { headers: { 'Content-Type': 'application/json' } });
  } else {
    http.get(__ENV.URL + __ENV.TARGET, { headers: creds.length ? creds[n % creds.length] : {} });
  }
}
export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
`;

/** The parts of k6's handleSummary data the benchmark reads. */
export interface K6PacedSummary {
  metrics: Record<string, { values: Record<string, number> } | undefined>;
}

/** Requests, latency and failures from k6's summary; `seconds` is the scenario's length (k6's own rate also counts the graceful stop). */
export function parsePacedSummary(summary: K6PacedSummary, seconds: number): Omit<PacedResult, 'cpuUs'> {
  const v = (metric: string, key: string) => summary.metrics[metric]?.values[key];
  const requests = v('http_reqs', 'count');
  if (requests === undefined) throw new Error('k6 summary has no http_reqs: no request was sent');
  return {
    requests,
    rps: requests / seconds,
    p50Ms: v('http_req_duration', 'med') ?? NaN,
    p99Ms: v('http_req_duration', 'p(99)') ?? NaN,
    errors: v('http_req_failed', 'passes') ?? 0,
    dropped: v('dropped_iterations', 'count') ?? 0,
  };
}

export async function runPaced(opts: {
  url: string;
  kind: 'get' | 'login';
  path?: string;
  cookieFile?: string;
  users?: { first: number; count: number };
  rate: number;
  seconds: number;
  workDir: string;
  pin: PinPlan;
}): Promise<PacedResult> {
  const script = path.join(opts.workDir, 'paced.js');
  fs.writeFileSync(script, SCRIPT);
  const summary = path.join(opts.workDir, 'paced-summary.json');
  fs.rmSync(summary, { force: true });
  // Enough VUs for every request in flight at 100 ms each (logins at the rate's own pace).
  const vus = Math.max(10, Math.ceil(opts.rate / 10));
  const vars = {
    URL: opts.url,
    KIND: opts.kind,
    TARGET: opts.path ?? '/',
    CREDS: opts.cookieFile ?? '',
    FIRST: String(opts.users?.first ?? 1),
    COUNT: String(opts.users?.count ?? 100),
    RATE: String(opts.rate),
    SECONDS: String(opts.seconds),
    VUS: String(vus),
    SUMMARY: summary,
  };
  const k6Args = ['run', '--quiet', '--no-color', ...Object.entries(vars).flatMap(([k, val]) => ['-e', `${k}=${val}`]), script];
  const [cmd, args] = pinnedCommand(opts.pin, opts.pin.rest, resolveK6(), k6Args);
  // Under bash so that `times` reports k6's CPU time once it has exited (the load generator's cost).
  const { stdout } = await promisify(execFile)('bash', ['-c', '"$0" "$@"; status=$?; times; exit $status', cmd, ...args], {
    timeout: (opts.seconds + 60) * 1000,
    env: { ...process.env, K6_NO_USAGE_REPORT: 'true' },
    maxBuffer: 16 * 2 ** 20,
  });
  const data = JSON.parse(fs.readFileSync(summary, 'utf8')) as K6PacedSummary;
  return { ...parsePacedSummary(data, opts.seconds), cpuUs: parseTimes(stdout) };
}
