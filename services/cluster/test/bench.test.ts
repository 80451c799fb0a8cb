import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../src/cluster.js';
import type { BenchReport } from '../src/bench/run.js';

// A short `npm run bench -- --json`: its shape, and the claims that do not depend on timing
// (commands per request, bytes per session). Speed ratios are reported by the full benchmark,
// not asserted here.
it('measures every configuration side by side and holds the deterministic targets', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [path.join(REPO_ROOT, 'services/cluster/dist/bench/cli.js'), '--json', '--no-doc', '--rounds', '2', '--seconds', '1', '--connections', '8', '--stored', '1000', '--memory-sessions', '20000'],
    { timeout: 240_000, maxBuffer: 10 * 2 ** 20 },
  );
  const report = JSON.parse(stdout) as BenchReport;
  const get = (config: string, operation: string) => report.results.find((r) => r.config === config && r.operation === operation)!;

  for (const config of ['limit', 'seed', 'shared', 'sticky']) {
    for (const operation of ['read', 'me', 'login']) {
      const r = get(config, operation);
      expect(r, `${config}/${operation}`).toBeDefined();
      expect(r.rps).toBeGreaterThan(0);
      expect(r.ratioToLimit).toBeGreaterThan(0);
      expect(r.errors, `${config}/${operation} errors`).toBe(0);
    }
  }
  // One Redis command per authenticated read (GETEX), against the textbook's GET + EXPIRE.
  expect(get('shared', 'read').redisCommandsPerRequest).toBeGreaterThanOrEqual(0.98);
  expect(get('shared', 'read').redisCommandsPerRequest).toBeLessThanOrEqual(1.02);
  expect(get('seed', 'read').redisCommandsPerRequest).toBeGreaterThanOrEqual(1.98);
  // /api/me writes its counter: GETEX + SET.
  expect(get('shared', 'me').redisCommandsPerRequest).toBeLessThanOrEqual(2.02);
  // A login: MGET (limits) + SET + ZADD/EXPIRE/ZCARD, and sometimes ZPOPMIN + DEL of an evicted session.
  expect(get('shared', 'login').redisCommandsPerRequest).toBeLessThan(get('seed', 'login').redisCommandsPerRequest!);
  expect(get('shared', 'login').redisCommandsPerRequest).toBeLessThanOrEqual(7.5);
  expect(get('sticky', 'read').redisCommandsPerRequest).toBeNull();
  // Redis memory per stored session: at most 60 % of connect-redis's default for the same contents.
  expect(report.redisBytesPerSession.ratio).toBeLessThanOrEqual(0.6);
  expect(report.storedSessions[0]!.redisCommandsPerRequest).toBeLessThanOrEqual(1.02);
  expect(Object.keys(report.scaling)).toEqual(['1', '2', '3']);
}, 300_000);
