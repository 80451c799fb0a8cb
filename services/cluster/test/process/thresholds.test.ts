import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { k6Thresholds } from '../../../../loadtest/lib/claims.js';
import { freePort } from '../../src/lib/ports.js';
import { resolveK6 } from '../../src/experiment/k6.js';
import { SURVIVAL_SCRIPT } from '../../src/experiment/run.js';
import type { K6Summary } from '../../src/experiment/run.js';

// k6's thresholds are the only pass/fail on the docker and hand-run paths. Real k6 runs
// survival.js against a loopback port nothing listens on: every request fails and nobody logs in.
// Empty metrics pass thresholds, so such a run passed before sessions_started had one; here it
// must fail (exit 99), and k6 must have run exactly the thresholds lib/claims.js defines.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-thresholds-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function k6(vars: Record<string, string>): Promise<{ code: number; summary: K6Summary; out: string }> {
  const summaryPath = path.join(
    tmp,
    `summary-${Object.values(vars)
      .join('-')
      .replace(/[^a-z0-9-]/gi, '')}.json`,
  );
  const args = ['run', '--quiet', '--no-usage-report', ...Object.entries({ ...vars, SUMMARY_PATH: summaryPath }).flatMap(([k, v]) => ['-e', `${k}=${v}`]), SURVIVAL_SCRIPT];
  return new Promise((resolve) => {
    execFile(resolveK6(), args, { timeout: 60_000, env: { ...process.env, K6_NO_USAGE_REPORT: 'true' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, summary: JSON.parse(fs.readFileSync(summaryPath, 'utf8')) as K6Summary, out: stdout + stderr }),
    );
  });
}

const ran = (s: K6Summary) => {
  const out: Record<string, string[]> = {};
  for (const [name, m] of Object.entries(s.metrics)) if (m.thresholds) out[name] = Object.keys(m.thresholds).sort();
  return out;
};
const sorted = (t: Record<string, string[]>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, [...v].sort()]));

it('a run in which nobody logs in fails, in both modes, with and without a kill', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const runs = await Promise.all([
    k6({ BASE_URL: dead, MODE: 'shared', PROFILE: 'experiment', DURATION: '2s', VUS: '2' }),
    k6({ BASE_URL: dead, MODE: 'sticky', PROFILE: 'experiment', DURATION: '2s', VUS: '3', KILL: '1', RESTART: '0' }),
  ]);
  const [shared, sticky] = runs;
  for (const r of runs) {
    expect(r.code, r.out.slice(-1500)).toBe(99); // a threshold failed
    expect(r.summary.metrics.sessions_started!.thresholds).toMatchObject({ [`count>=${r === shared ? 2 : 3}`]: { ok: false } });
  }
  // Exactly the thresholds of lib/claims.js, with the profile's VUs and the run's kill/restart.
  expect(ran(shared!.summary)).toEqual(sorted(k6Thresholds({ mode: 'shared', kill: false, restart: false, vus: 2 })));
  expect(ran(sticky!.summary)).toEqual(sorted(k6Thresholds({ mode: 'sticky', kill: true, restart: false, vus: 3 })));
  // Without a kill nothing may fail; with one, logins still may not.
  expect(shared!.summary.metrics.failed_requests!.thresholds).toMatchObject({ 'count==0': { ok: false } });
  expect(sticky!.summary.metrics['failed_requests{kind:login}']!.thresholds).toMatchObject({ 'count==0': { ok: false } });
  // And nothing was lost: with nobody logged in, sticky's "sessions are lost" fails too.
  expect(sticky!.summary.metrics.sessions_lost!.thresholds).toMatchObject({ 'count>0': { ok: false } });
}, 90_000);

it('rejects a KILL or RESTART that is not 1 or 0', async () => {
  const r = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile(
      resolveK6(),
      ['run', '--quiet', '--no-usage-report', '-e', 'MODE=shared', '-e', 'KILL=maybe', '-e', `SUMMARY_PATH=${path.join(tmp, 'x.json')}`, SURVIVAL_SCRIPT],
      { timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: stdout + stderr }),
    ),
  );
  expect(r.code).not.toBe(0);
  expect(r.out).toMatch(/KILL must be 1 or 0, got \\?"maybe\\?"/);
}, 40_000);
