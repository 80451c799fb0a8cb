import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { Summary } from '../src/experiment/report.js';

// The failover experiment end to end: the built CLI starts a real cluster per mode (nginx,
// nodes, Redis in shared mode), runs real k6 (loadtest/survival.js) against it, SIGKILLs the
// busiest node at 7 s and starts it again 6 s later. Two 20 s runs plus start-up and teardown:
// about 55 s on a 2-core machine.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = path.join(ROOT, 'services/cluster/dist/experiment/cli.js');
const VUS = 10;
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-experiment-test-'));

afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
});

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const gobin = path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin');
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, PATH: `${process.env.PATH}:${gobin}` }, maxBuffer: 16 * 1024 * 1024, timeout: 140_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

it('shared mode keeps every session through a SIGKILL; sticky mode loses the killed node\'s sessions', { timeout: 150_000 }, async () => {
  expect(fs.existsSync(CLI), `${CLI} is missing: build first (npx tsc -p services/cluster)`).toBe(true);
  const args = ['failover', '--mode', 'both', '--nodes', '3', '--duration', '20s', '--kill-at', '7s', '--restart-after', '6s', '--vus', String(VUS), '--out', out];
  const r = await runCli(args);
  if (r.code !== 0) console.log(r.stdout, r.stderr);
  // Progress lines while it runs, and the table at the end.
  expect(r.stdout).toMatch(/shared: cluster up at http:\/\/127\.0\.0\.1:\d+/);
  expect(r.stdout).toMatch(/shared: k6 started/);
  expect(r.stdout).toMatch(/sticky: t=\d+\.\ds {2}SIGKILL app-\d/);
  expect(r.stdout).toMatch(/starting app-\d again/);
  expect(r.stdout).toMatch(/mode\s+nodes\s+VUs\s+requests/);
  expect(r.code).toBe(0); // every claim held

  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as Summary;
  expect(summary.machine.k6).toMatch(/^v1\./);
  expect(summary.runs.map((x) => x.mode)).toEqual(['shared', 'sticky']);
  const shared = summary.runs[0]!;
  const sticky = summary.runs[1]!;
  for (const run of [shared, sticky]) {
    console.log(`${run.mode}: ${run.requests} requests, ${run.failedRequests} failed, ${run.sessionsLost} lost (${run.sessionsLostDuringOutage} during the outage), p95 ${run.p95Ms} ms; killed ${run.killedNode} at ${run.killAtS}s, ready again at ${run.readyAtS}s; share ${JSON.stringify(run.shareBeforeKill)} -> ${JSON.stringify(run.shareAfterKill)}`);
    // 10 VUs pace at 50-100 ms, so ~100+ req/s; 600 in 20 s is far below that even on a busy machine.
    expect(run.requests).toBeGreaterThan(600);
    expect(run.killedNode).toMatch(/^app-[123]$/);
    expect(run.killAtS).toBeGreaterThanOrEqual(6.5);
    expect(run.killAtS).toBeLessThan(9);
    // The dead node answers nothing from the kill until it is back (nginx fails over at once).
    expect(run.shareBeforeKill[run.killedNode!]).toBeGreaterThan(0.1);
    expect(run.shareAfterKill[run.killedNode!]).toBeLessThan(0.02);
    expect(run.checkFailures).toBe(0); // identity and counters never went wrong
    expect(run.claim.held).toBe(true);
  }

  // Shared: no session lost. Failed requests: a GET in flight on the dying node is replayed by
  // nginx on another node, a POST already sent is not, so at most one failed write per VU (the
  // request each VU may have had in flight at the kill) and no failed read or login.
  expect(shared.sessionsLost).toBe(0);
  expect(shared.sessionsTotal).toBe(VUS); // one login per VU, never a second
  expect(shared.failedByKind.read).toBe(0);
  expect(shared.failedByKind.login).toBe(0);
  expect(shared.failedRequests).toBeLessThanOrEqual(VUS);

  // Sticky: exactly the sessions the killed node held are lost while it is down (each is a VU
  // whose route led there), roughly its share of the VUs; the others continue.
  const held = sticky.killedNodeSessions!;
  expect(held).toBeGreaterThan(0); // the busiest of 3 nodes holds at least ceil(10/3) sessions
  expect(sticky.sessionsLost).toBeGreaterThan(0);
  expect(Math.abs(sticky.sessionsLostDuringOutage - held)).toBeLessThanOrEqual(1);
  expect(sticky.sessionsLostByNode[sticky.killedNode!]).toBeGreaterThanOrEqual(held - 1);
  expect(Math.abs(held - sticky.shareBeforeKill[sticky.killedNode!]! * VUS)).toBeLessThanOrEqual(2);
  // Each loss is followed by one new login (unless it came in the run's last moments).
  expect(sticky.sessionsTotal).toBeLessThanOrEqual(VUS + sticky.sessionsLost);
  expect(sticky.sessionsTotal).toBeGreaterThanOrEqual(VUS + sticky.sessionsLostDuringOutage);

  // The report: summary.md with a table and one SVG per run, and k6's HTML report per run.
  const md = fs.readFileSync(path.join(out, 'summary.md'), 'utf8');
  expect(md).toMatch(/\| mode \| nodes \| VUs \| requests \|/);
  for (const run of [shared, sticky]) {
    expect(md).toContain(`](${run.files.plot})`);
    const svg = fs.readFileSync(path.join(out, run.files.plot), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toContain(`SIGKILL ${run.killedNode}`);
    const html = fs.readFileSync(path.join(out, `k6-${run.mode}.html`), 'utf8');
    expect(html.length).toBeGreaterThan(10_000);
    expect(html).toMatch(/<html/i);
  }
});
