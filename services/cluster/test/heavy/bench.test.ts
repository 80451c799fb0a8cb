import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/cluster.js';
import { markdown } from '../../src/bench/report.js';
import { AB, type BenchReport, STEAL_LIMIT_PCT } from '../../src/bench/run.js';

// A short `npm run bench -- --json`: the claims that do not depend on timing, measured: which
// Redis commands a request costs (by name, from INFO commandstats), at 1k and at 100k stored
// sessions, what a metrics scrape costs, bytes per session. Speed ratios are reported by the full
// benchmark with their spread over rounds (docs/benchmarks.md), not asserted here: on a shared
// 2-core machine they are not stable enough to gate a test on.
/** PostgreSQL data folders under the system temp directory (parts.ts puts a root-run cluster's there). */
const postgresData = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('sc-postgres-data-'));

it('measures every configuration side by side and holds the deterministic targets', async () => {
  const dataBefore = postgresData();
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      path.join(REPO_ROOT, 'services/cluster/dist/bench/cli.js'),
      '--json',
      '--no-doc',
      // The per-round profiles of a missed target double the run; profile.test.ts covers profiling.
      '--no-target-profiles',
      '--rounds',
      '2',
      '--seconds',
      '1',
      '--saturation-seconds',
      '1',
      '--connections',
      '8',
      '--stored',
      '1000,100000',
      '--memory-sessions',
      '100000', // at 20,000 the ratio sat at 0.59-0.60, on the 0.6 line; 100,000 gives the stable 0.58
    ],
    // 387-524 s measured (windows that lost steal are measured again; the core probe runs around each).
    { timeout: 780_000, maxBuffer: 10 * 2 ** 20 },
  );
  const report = JSON.parse(stdout) as BenchReport;
  // It removed what it made, PostgreSQL's data (57 MB a run) included.
  expect(postgresData().filter((f) => !dataBefore.includes(f))).toEqual([]);
  const get = (config: string, operation: string) => report.results.find((r) => r.config === config && r.operation === operation)!;

  // Every configuration and operation twice: at the fixed offered rate (k6) and at saturation (wrk,
  // offeredRate null); the new fields of issue #25 on every result.
  for (const r of report.results) {
    const rate = r.operation === 'login' && r.config !== 'limit' ? report.settings.loginRate : report.settings.rate;
    expect([rate, null], `${r.config}/${r.operation} offeredRate`).toContain(r.offeredRate);
    expect(r.pinned).toBe(report.settings.pinned);
    expect(r.nodeUserCpuUsPerRequest, `${r.config}/${r.operation} node user CPU`).toBeGreaterThan(0);
    expect(r.nodeSystemCpuUsPerRequest).toBeGreaterThanOrEqual(0);
    expect(r.nodeCpuSpreadPct).toBeGreaterThanOrEqual(0);
    // The host's steal on the node's core, read over each window whenever the node is pinned.
    if (r.pinned) {
      expect(r.nodeCoreStealPct, `${r.config}/${r.operation} steal`).toBeGreaterThanOrEqual(0);
      expect(r.nodeCoreStealPctRange![0]).toBeLessThanOrEqual(r.nodeCoreStealPct!);
    } else expect(r.nodeCoreStealPct).toBeNull();
    // A window that lost over 1 % of the node's core to steal is measured again, at most twice per
    // round, and only at the fixed rate; a round keeps a window within the limit, or its least-stolen.
    expect(r.roundsMeasuredAgain, `${r.config}/${r.operation} measured again`).toBeLessThanOrEqual(r.offeredRate === null ? 0 : 2 * report.settings.rounds);
    if (r.offeredRate !== null && r.roundsMeasuredAgain === 0 && r.nodeCoreStealPctRange) expect(r.nodeCoreStealPctRange[1]).toBeLessThanOrEqual(STEAL_LIMIT_PCT);
    // The node's CPU split by thread: its main thread and its other threads add up to it (with two
    // rounds a median is a mean; each figure is rounded), and the collector's pauses are read.
    expect(r.nodeMainThreadCpuUsPerRequest, `${r.config}/${r.operation} main thread`).toBeGreaterThan(0);
    expect(Math.abs(r.nodeMainThreadCpuUsPerRequest + r.nodeOtherThreadsCpuUsPerRequest - r.nodeCpuUsPerRequest), `${r.config}/${r.operation} threads`).toBeLessThanOrEqual(2);
    expect(r.nodeGcPauseUsPerRequest).toBeGreaterThanOrEqual(0);
    expect(r.spread.nodeGcPauseUs[0]).toBeLessThanOrEqual(r.spread.nodeGcPauseUs[1]);
    expect(r.majorGcsPerRound[0]).toBeGreaterThanOrEqual(0);
    // The core-speed probe ran around each fixed-rate window on the node's core (none at saturation).
    if (r.offeredRate !== null && r.pinned) {
      expect(r.coreSpeedUs, `${r.config}/${r.operation} core probe`).toBeGreaterThan(0);
      expect(r.coreSpeedUsRange![0]).toBeLessThanOrEqual(r.coreSpeedUs!);
      expect(r.coreSpeedUsRange![1]).toBeGreaterThanOrEqual(r.coreSpeedUs!);
      expect(r.roundGap.coreSlowerPct).not.toBeNull();
    } else expect(r.coreSpeedUs).toBeNull();
    // The spread against nginx's run time in the same window, read to the nanosecond: a 1 s window of
    // 40 logins costs nginx less than one clock tick (10 ms), and still has a reference.
    expect(r.nodeCpuSpreadPctAgainstNginx, `${r.config}/${r.operation} against nginx`).toBeGreaterThanOrEqual(0);
    if (r.offeredRate === null) expect(r.nodeCpuSpreadPctAgainstNginx).toBe(0);
    // The rounds' node CPU over nginx's, which A/B claims and the textbook target also hold apart.
    const [lo, hi] = r.nodeCpuAgainstNginxRange!;
    expect(lo, `${r.config}/${r.operation} node CPU over nginx's`).toBeGreaterThan(0);
    expect(hi).toBeGreaterThanOrEqual(lo);
    // The round gap spans the rounds' range of node CPU (each end rounded); one run has none.
    expect(Math.abs(r.roundGap.nodeCpuUs - (r.spread.nodeCpuUs[1] - r.spread.nodeCpuUs[0]))).toBeLessThanOrEqual(1);
    if (r.offeredRate === null) expect(r.roundGap).toEqual({ nodeCpuUs: 0, mainThreadUs: 0, otherThreadsUs: 0, gcPauseUs: 0, majorGcs: 0, stealPct: 0, coreSlowerPct: null });
  }
  for (const config of ['limit', 'textbook', 'shared', 'sticky', 'database', 'cookie', 'jwt', 'shared-no-pipelining'])
    expect(
      report.results.filter((r) => r.config === config && r.operation === 'read').map((r) => r.offeredRate),
      config,
    ).toEqual([report.settings.rate, null]);
  // On this 2-core machine the node runs on a core of its own.
  expect(report.settings.pinned).toBe(true);
  // The targets are judged in the run (met or missed is the machine's business, not the test's).
  expect(report.targets.map((t) => t.name)).toEqual([
    'shared read: node CPU ≤ 0.80× textbook, ranges apart',
    'shared read: node CPU ≤ 1.10× sticky',
    'shared read: p99 ≤ 1.5× the no-session route',
  ]);
  for (const t of report.targets) expect(t.ratio, t.name).toBeGreaterThan(0);
  expect(report.spreadTarget.boundPct).toBe(10);
  expect(typeof report.spreadTarget.metAgainstNginx).toBe('boolean');
  // The machine's own noise: the fixed-rate cell whose nginx run time per request (the same requests
  // in every round) spread the most, named beside the judgement.
  const ownPaced = report.results.filter((r) => r.offeredRate !== null && !(r.config === 'limit' && r.operation !== 'read'));
  for (const r of ownPaced) expect(r.nginxRunSpreadPct, `${r.config}/${r.operation}`).toBeTypeOf('number');
  const noisiest = ownPaced.reduce((a, r) => (r.nginxRunSpreadPct! > a.nginxRunSpreadPct! ? r : a));
  expect(noisiest.nginxRunSpreadPct).toBeGreaterThan(0);
  expect(report.spreadTarget.worstNginx).toEqual({ config: noisiest.config, operation: noisiest.operation, spreadPct: noisiest.nginxRunSpreadPct });
  expect(report.abClaims.map((c) => `${c.operation}`)).toEqual(['read', 'me', 'read', 'me']);
  // Each claim carries both configurations' rounds against nginx, from their fixed-rate results.
  const paced = (config: string, operation: string) => report.results.find((r) => r.config === config && r.operation === operation && r.offeredRate !== null)!;
  for (const c of report.abClaims) {
    const ab = AB.find((x) => x.change === c.change)!;
    expect(c.onAgainstNginx, `${c.change} ${c.operation}`).toEqual(paced(ab.on, c.operation).nodeCpuAgainstNginxRange);
    expect(c.offAgainstNginx, `${c.change} ${c.operation}`).toEqual(paced(ab.off, c.operation).nodeCpuAgainstNginxRange);
    expect(c.holds).toBe(c.direction !== 'none');
  }

  for (const config of ['limit', 'textbook', 'shared', 'sticky', 'database', 'cookie', 'jwt']) {
    for (const operation of ['read', 'me', 'login']) {
      const r = get(config, operation);
      expect(r, `${config}/${operation}`).toBeDefined();
      expect(r.rps).toBeGreaterThan(0);
      expect(r.errors, `${config}/${operation} errors`).toBe(0);
      // The median lies within the rounds' range, and the ratio's range contains the ratio of medians' neighbourhood.
      expect(r.spread.rps[0]).toBeLessThanOrEqual(r.rps);
      expect(r.spread.rps[1]).toBeGreaterThanOrEqual(r.rps);
      expect(r.spread.ratioToLimit[0]).toBeGreaterThan(0);
      expect(r.spread.ratioToLimit[0]).toBeLessThanOrEqual(r.spread.ratioToLimit[1]);
      expect([r.rpsMin, r.rpsMax]).toEqual(r.spread.rps);
      // CPU per request, from /proc: every request passes nginx and a node, so both cost something;
      // Redis only where the configuration uses it (sticky: 0; the limit, GET /api/ping: ~0).
      expect(r.nodeCpuUsPerRequest, `${config}/${operation} node CPU`).toBeGreaterThan(0);
      expect(r.nginxCpuUsPerRequest, `${config}/${operation} nginx CPU`).toBeGreaterThan(0);
      expect(r.loadGeneratorCpuUsPerRequest, `${config}/${operation} wrk CPU`).toBeGreaterThan(0);
      expect(r.spread.nodeCpuUs[0]).toBeLessThanOrEqual(r.nodeCpuUsPerRequest);
      expect(r.spread.nodeCpuUs[1]).toBeGreaterThanOrEqual(r.nodeCpuUsPerRequest);
      expect(r.spread.p99Ms[0]).toBeLessThanOrEqual(r.p99Ms);
      expect(r.spread.p99Ms[1]).toBeGreaterThanOrEqual(r.p99Ms);
      // Node CPU against the limit's in the same round: the limit against itself is exactly 1.
      expect(r.spread.nodeCpuRatioToLimit[0]).toBeGreaterThan(0);
      expect(r.spread.nodeCpuRatioToLimit[0]).toBeLessThanOrEqual(r.spread.nodeCpuRatioToLimit[1]);
      if (config === 'limit') expect(r.spread.nodeCpuRatioToLimit).toEqual([1, 1]);
      if (config === 'database') expect(r.redisCpuUsPerRequest, `${config}/${operation}: no Redis`).toBe(0);
      // Sticky and cookie modes keep only their login budgets in Redis: a read sends it nothing.
      if ((config === 'sticky' || config === 'cookie') && operation !== 'login') expect(r.redisCommandsPerRequest, `${config}/${operation}: nothing sent to Redis`).toBe(0);
      if ((config === 'shared' || config === 'textbook') && operation !== 'read') expect(r.redisCpuUsPerRequest, `${config}/${operation} Redis CPU`).toBeGreaterThan(0);
    }
  }
  // The variants of the A/B rows: the same shared cluster without auto-pipelining, and shared on the
  // Sentinel store with and without WAIT.
  for (const config of ['shared-no-pipelining', 'shared-sentinel', 'shared-sentinel-wait']) {
    for (const operation of ['read', 'me']) {
      const r = get(config, operation);
      expect(r, `${config}/${operation}`).toBeDefined();
      expect(r.errors, `${config}/${operation} errors`).toBe(0);
      expect(r.nodeCpuUsPerRequest).toBeGreaterThan(0);
      expect(r.redisCpuUsPerRequest).toBeGreaterThan(0);
    }
  }
  // The logins of every configuration measured at the fixed rate without a failure (no shedding either: the bench's hash queue holds them).
  for (const r of report.results.filter((x) => x.operation === 'login' && x.config !== 'limit')) expect(r.errors, `${r.config}/login at ${r.offeredRate ?? 'saturation'}`).toBe(0);
  // A login hashes a password (scrypt): it costs a node far more CPU than a read.
  // (2×, not more: 1 s windows on a loaded machine measured ratios from 4.7 to 9.)
  expect(get('shared', 'login').nodeCpuUsPerRequest).toBeGreaterThan(2 * get('shared', 'read').nodeCpuUsPerRequest);
  // Under load every node collects garbage: the pauses are read from its metrics (a misread metric reads 0).
  expect(report.results.filter((r) => r.offeredRate === null).reduce((a, r) => a + r.nodeGcPauseUsPerRequest, 0)).toBeGreaterThan(0);
  // And the hash runs in libuv's pool, not on the main thread: a login's other threads cost more than 1 ms
  // (scrypt N=2^10, r=8: ~2 ms of work), a read's far less.
  expect(paced('shared', 'login').nodeOtherThreadsCpuUsPerRequest).toBeGreaterThan(1000);
  expect(paced('shared', 'login').nodeOtherThreadsCpuUsPerRequest).toBeGreaterThan(2 * paced('shared', 'read').nodeOtherThreadsCpuUsPerRequest);
  console.log(
    `bench: commands per request ${report.results
      .filter((r) => r.redisCommandsByName)
      .map((r) => `${r.config}/${r.operation} ${JSON.stringify(r.redisCommandsByName)}`)
      .join('; ')}`,
  );
  // One Redis command per authenticated read, and it is GETEX; the textbook's is GET + SET
  // (resave: true writes every session back on every request).
  // Per request: the same command names (leaving out what ran less than once in 20 requests, e.g. a
  // script's first EVAL), each within `tol` of the expected count.
  // Default tolerance 0.15: requests in flight when wrk stops send commands wrk does not count (measured up to ~0.1 on a loaded machine).
  const about = (m: Record<string, number> | null, expected: Record<string, number>, tol = 0.15) => {
    const got = Object.fromEntries(Object.entries(m ?? {}).filter(([, v]) => v >= 0.05));
    expect(Object.keys(got).sort(), JSON.stringify(got)).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expect(Math.abs(got[k]! - v), `${k}: ${got[k]} vs ${v}`).toBeLessThanOrEqual(tol);
  };
  about(get('shared', 'read').redisCommandsByName, { getex: 1 });
  about(get('textbook', 'read').redisCommandsByName, { get: 1, set: 1 });
  // /api/me writes its counter: the read's GETEX, then one EVALSHA, whose GET and SET run inside
  // the script (INFO commandstats counts those too). EVAL appears once per node, on first use. wrk
  // sends a session's requests concurrently, so a compare-and-set sometimes runs again (a few %).
  about(get('shared', 'me').redisCommandsByName, { getex: 1, evalsha: 1, get: 1, set: 1 }, 0.15);
  about(get('textbook', 'me').redisCommandsByName, { get: 1, set: 1, expire: 1 });
  // Commands *sent* by the nodes (their redis_commands_total; a script call is one EVALSHA): a read
  // sends one GETEX, a counted write one EVALSHA more, a login three (reserve, SET, index-and-settle).
  about(get('shared', 'read').redisCommandsSentByName, { getex: 1 });
  about(get('shared-no-pipelining', 'read').redisCommandsSentByName, { getex: 1 });
  // The WAIT knob: one WAIT after each write (the counter's EVALSHA), none after a read, and no
  // other change; without it the Sentinel store costs the same commands as a single Redis.
  about(get('shared-sentinel', 'me').redisCommandsSentByName, { getex: 1, evalsha: 1 });
  about(get('shared-sentinel-wait', 'me').redisCommandsSentByName, { getex: 1, evalsha: 1, wait: 1 });
  about(get('shared-sentinel-wait', 'read').redisCommandsSentByName, { getex: 1 });
  about(get('shared', 'me').redisCommandsSentByName, { getex: 1, evalsha: 1 }, 0.15); // a compare-and-set re-sent on conflict (wrk shares sessions across connections)
  // (Requests still in flight when wrk stops send commands but are not counted: with 1 s runs and
  // ~150 logins/s that adds up to ~0.1 per request, hence the wider tolerance.)
  about(get('shared', 'login').redisCommandsSentByName, { evalsha: 2, set: 1 }, 0.3);
  expect(get('shared', 'login').redisCommandsSentPerRequest).toBeLessThan(get('textbook', 'login').redisCommandsSentPerRequest!);
  // Every measured login finds its user's index full (the bench logs the users in up to the cap
  // first), so each ends the oldest session (one ZPOPMIN); the index script checks the other 20
  // members' sessions with one EXISTS, not one each.
  const login = get('shared', 'login');
  expect(login.offeredRate).toBe(report.settings.loginRate);
  for (const [command, why] of [
    ['zpopmin', 'a full index: the oldest session ended'],
    ['exists', 'one EXISTS over the index'],
  ])
    expect(Math.abs((login.redisCommandsByName?.[command!] ?? 0) - 1), `shared/login ${command}: ${why}`).toBeLessThanOrEqual(0.15);
  // The other modes' store traffic per request: database one statement per read (and one more for a
  // counted write); jwt one Redis script call (the denylist's epoch, the token's denial, its user's
  // cut-off); cookie nothing at all (its Redis holds login budgets only).
  about(get('database', 'read').dbQueriesByName, { session_read: 1 });
  // wrk sends one session's requests on several connections at once: a compare-and-set that loses
  // re-reads the row (session_current) and tries again, a few in a hundred.
  const { session_current: conflicts = 0, ...dbMe } = get('database', 'me').dbQueriesByName ?? {};
  about(dbMe, { session_read: 1, session_cas: 1 }, 0.3);
  expect(conflicts).toBeLessThanOrEqual(0.3);
  about(get('jwt', 'read').redisCommandsSentByName, { evalsha: 1 });
  for (const operation of ['read', 'me']) {
    expect(get('cookie', operation).redisCommandsSentByName, `cookie/${operation}`).toEqual({});
    expect(get('cookie', operation).dbQueriesByName, `cookie/${operation}`).toBeNull();
  }
  // Concurrent writes on one session: this project keeps every acknowledged one; the textbook does not.
  const writes = Object.fromEntries(report.concurrentWrites.map((w) => [w.config, w]));
  // In cookie mode every write answered with a whole cookie, and the browser keeps the last: one each.
  expect(writes.cookie!.counter).toMatchObject({ acknowledged: 100, kept: 1 });
  expect(writes.cookie!.cartLines).toMatchObject({ acknowledged: 40, kept: 1 });
  for (const config of ['shared', 'sticky', 'database']) {
    expect(writes[config]!.counter.kept, config).toBe(writes[config]!.counter.acknowledged);
    expect(writes[config]!.cartLines.kept, config).toBe(writes[config]!.cartLines.acknowledged);
  }
  expect(writes.textbook!.counter.kept).toBeLessThan(writes.textbook!.counter.acknowledged);
  expect(get('sticky', 'read').redisCommandsPerRequest).toBe(0); // its Redis holds login budgets only
  // Nothing on any request path scans the keyspace.
  for (const r of report.results)
    expect(
      Object.keys(r.redisCommandsByName ?? {}).filter((n) => /scan|keys/.test(n)),
      `${r.config}/${r.operation}`,
    ).toEqual([]);

  // O(1) in the number of stored sessions: at 1k and at 100k keys a read is the same one GETEX,
  // and a scrape of every node's metrics costs a DBSIZE per node, never a SCAN.
  expect(report.storedSessions.map((s) => s.stored)).toEqual([1000, 100_000]);
  for (const s of report.storedSessions) {
    expect(s.keys).toBeGreaterThanOrEqual(s.stored);
    about(s.redisCommandsByName, { getex: 1 });
    // (A read still in flight when wrk stopped may land in the scrape's window: only DBSIZE is the scrape's.)
    expect(s.scrapeCommands.dbsize, `scrape at ${s.stored} stored`).toBe(report.settings.nodes);
    expect(Object.keys(s.scrapeCommands).filter((n) => /scan|keys/.test(n))).toEqual([]);
  }
  // Redis memory per stored session: at most 60 % of connect-redis's default for the same contents.
  expect(report.redisBytesPerSession.ratio).toBeLessThanOrEqual(0.6);
  // Throughput by node count was measured for 1, 2 and 3 nodes (the values are reported, not judged).
  for (const n of ['1', '2', '3'] as const) {
    expect(report.scaling[n]).toBeGreaterThan(0);
    // Unpinned means every core: the clusters are started by the bench, which runs pinned to the
    // rest's cores, and its children would inherit that (the capacity check then measured one core).
    expect(report.scalingCpu[n].cpus, `the ${n}-node scaling cluster's cores`).toEqual([`0-${os.cpus().length - 1}`]);
  }

  // docs/benchmarks.md from this report: each result's row names its threads and GC pauses, and the
  // rounds' gap is shown for exactly the fixed-rate cells whose spread passed the bound.
  const doc = markdown(report);
  expect(doc).toContain(`spread up to ${noisiest.nginxRunSpreadPct} % in its own run time per request (${noisiest.config}/${noisiest.operation})`);
  const shared = report.results.find((r) => r.config === 'shared' && r.operation === 'read' && r.offeredRate !== null)!;
  expect(doc).toContain(
    `| ${shared.nodeMainThreadCpuUsPerRequest} (${shared.spread.nodeMainThreadCpuUs[0]}–${shared.spread.nodeMainThreadCpuUs[1]}) / ${shared.nodeOtherThreadsCpuUsPerRequest} (`,
  );
  const wide = report.results.filter((r) => r.offeredRate !== null && !(r.config === 'limit' && r.operation !== 'read') && r.nodeCpuSpreadPct > report.spreadTarget.boundPct);
  const gapRows = /### Where the rounds differ[^\n]*\n\n[^\n]*\n\n((?:\|[^\n]*\n)+)/.exec(doc);
  if (wide.length) expect(gapRows![1]!.trim().split('\n').length - 2, 'rows of the rounds-gap table').toBe(wide.length);
  else expect(gapRows).toBeNull();
}, 840_000);
