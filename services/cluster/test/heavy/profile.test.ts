import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/cluster.js';
import { codeLocation, groupRows, type ProfileReport } from '../../src/bench/profile.js';

// `npm run bench -- --profile`, short: a real node under `node --cpu-prof`, loaded by wrk. What it
// must find is structural, not a speed: a read runs express-session and ioredis, the limit runs
// neither, and the read's CPU per request is above the limit's.
it('profiles a read against the limit and attributes the difference to the code that spends it', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [path.join(REPO_ROOT, 'services/cluster/dist/bench/cli.js'), '--profile', '--json', '--no-doc', '--rounds', '1', '--seconds', '2', '--connections', '4'],
    {
      timeout: 90_000,
      maxBuffer: 10 * 2 ** 20,
    },
  );
  const report = JSON.parse(stdout) as ProfileReport;
  const row = (where: string) => report.rows.find((r) => r.where === where) ?? { where, limitUs: 0, readUs: 0 };
  for (const p of ['limit', 'read'] as const) {
    expect(report.paths[p].requests, p).toBeGreaterThan(100);
    expect(report.paths[p].profiledUsPerRequest, p).toBeGreaterThan(0);
  }
  // The limit's profile holds the 20 logins that made its cookies too, hence not exactly 0.
  for (const pkg of ['express-session', 'ioredis']) {
    expect(row(pkg).readUs, pkg).toBeGreaterThan(1);
    expect(row(pkg).limitUs, pkg).toBeLessThan(row(pkg).readUs / 5);
  }
  expect(row('express').limitUs).toBeGreaterThan(0); // both run through express
  expect(report.paths.read.profiledUsPerRequest).toBeGreaterThan(report.paths.limit.profiledUsPerRequest);
  // The summary by group accounts for every location once.
  const groups = groupRows(report.rows);
  expect(groups.reduce((a, g) => a + g.readUs, 0)).toBeCloseTo(report.paths.read.profiledUsPerRequest, 6);
  expect(groups.reduce((a, g) => a + g.limitUs, 0)).toBeCloseTo(report.paths.limit.profiledUsPerRequest, 6);
  expect(groups[0]!.readUs - groups[0]!.limitUs).toBeGreaterThan(1); // express-session's group
  // Sorted by what the read adds.
  const adds = report.rows.map((r) => r.readUs - r.limitUs);
  expect(adds).toEqual([...adds].sort((a, b) => b - a));
  // One set of rows per round, for the same locations; with one round, they are the pooled rows.
  expect(report.rowsByRound).toHaveLength(1);
  const byWhere = new Map(report.rowsByRound[0]!.map((r) => [r.where, r]));
  expect(byWhere.size).toBe(report.rows.length);
  for (const r of report.rows) {
    expect(byWhere.get(r.where)!.readUs).toBeCloseTo(r.readUs, 6);
    expect(byWhere.get(r.where)!.limitUs).toBeCloseTo(r.limitUs, 6);
  }
}, 120_000);

it('names where code lives: a package (scoped too), a file of the app, a Node core module, the VM', () => {
  expect(codeLocation({ functionName: 'session', url: 'file:///x/node_modules/express-session/index.js' })).toBe('express-session');
  expect(codeLocation({ functionName: 'f', url: 'file:///x/node_modules/@eslint/js/src/a.js' })).toBe('@eslint/js');
  expect(codeLocation({ functionName: 'get', url: 'file:///x/services/app/dist/session/shared-store.js' })).toBe('app: session/shared-store.js');
  expect(codeLocation({ functionName: 'Hmac', url: 'node:internal/crypto/hash' })).toBe('node:crypto');
  expect(codeLocation({ functionName: 'end', url: 'node:_http_outgoing' })).toBe('node:_http_outgoing');
  expect(codeLocation({ functionName: '(garbage collector)', url: '' })).toBe('(garbage collector)');
  expect(codeLocation({ functionName: 'writev', url: '' })).toBe('(native code)');
});
