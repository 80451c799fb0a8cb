import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXPERIMENT_CLI, REPO_ROOT, runExperimentCli } from '../../../../testkit/experiment.js';
import type { RunSummary, Summary } from '../../src/experiment/report.js';

// The three-host swarm under a fault, end to end, as `npm run experiment -- failover --target swarm`
// runs it: three network namespaces with a dockerd each, one swarm, the stack deployed, k6 from
// outside the hosts through the front, the fault at 15 s, the host back later, everything removed
// afterwards. The claims are loadtest/lib/claims.js's (judgeSwarmFault); each run takes about 2.5
// minutes (a minute of it to start the swarm).
const VUS = 12;
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-swarm-test-'));

afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
});

/** What the swarm leaves on this machine: namespaces, links, engines, mounts, cgroups. Nothing, after a run. */
function leftovers(): string[] {
  const left: string[] = [];
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (/^sc-h\d/m.test(netns)) left.push(`namespaces: ${netns.trim()}`);
  if (execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).includes('scswarm0')) left.push('the bridge scswarm0');
  const swarmDir = path.join(REPO_ROOT, '.run/swarm');
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`${swarmDir}/`));
  if (mounts.length) left.push(`${mounts.length} mount(s) under ${swarmDir}`);
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const cmd = (() => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })();
    if (cmd.includes(`${swarmDir}/`) || cmd.includes('dist/swarm/front.js')) left.push(`process ${pid}: ${cmd.slice(0, 120)}`);
  }
  if (fs.existsSync('/sys/fs/cgroup/pids/session-cluster-swarm')) left.push('the cgroup session-cluster-swarm');
  return left;
}

async function experiment(name: string, args: string[]): Promise<RunSummary> {
  expect(fs.existsSync(EXPERIMENT_CLI), `${EXPERIMENT_CLI} is missing: build first (npm run build)`).toBe(true);
  const dir = path.join(out, name);
  const r = await runExperimentCli(['failover', '--target', 'swarm', '--vus', String(VUS), '--kill-at', '15s', ...args, '--out', dir], 9 * 60_000);
  const summaryFile = path.join(dir, 'summary.json');
  if (r.code !== 0) console.log(r.stdout.slice(-6000), r.stderr.slice(-3000));
  expect(fs.existsSync(summaryFile), `no summary.json (exit ${r.code})`).toBe(true);
  const run = (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Summary).runs[0]!;
  console.log(
    `${name}: ${run.requests} requests, ${run.failedRequests} failed ${JSON.stringify(run.failedByKind)}, ${run.sessionsLost} lost; ${run.fault} of ${run.killedNode} at ${run.killAtS}s ` +
      `(it ran ${run.lostNodes?.join(', ') || 'no replica'}); writes back after ${run.writesBackAfterS} s; replicas back after ${run.swarmRecoveryS} s; claim: ${run.claim.why}`,
  );
  expect(leftovers(), 'the swarm left something behind').toEqual([]);
  expect(run.k6.exitCode).toBe(0);
  // A partial partition without a guard loses acknowledged writes: the counters' checks are how k6 sees it.
  if (run.fault !== 'partial-partition' || run.acknowledgedWritesLost === 0) expect(run.checkFailures).toBe(0);
  expect(run.requests).toBeGreaterThan(run.durationS * 10);
  expect(run.claim).toMatchObject({ held: true, problems: [] });
  return run;
}

describe('the cluster on a three-host swarm', () => {
  it('host-kill: every process of one host killed at once; shared mode loses no session', { timeout: 10 * 60_000 }, async () => {
    const run = await experiment('host-kill', ['--fault', 'host-kill', '--mode', 'shared', '--duration', '75s', '--restart-after', '40s']);
    expect(run.hostsLost).toEqual([run.killedNode]);
    expect(run.lostNodes!.length).toBeGreaterThan(0);
    expect(run.sessionsLost).toBe(0);
    // The swarm noticed and ran the lost replicas elsewhere.
    expect(run.swarmRecoveryS).toBeGreaterThan(0);
  });

  it("host-partition: the Redis primary's host cut off for 20 s, then healed; shared mode loses no session", { timeout: 10 * 60_000 }, async () => {
    // h1 runs the first primary: the cut takes the primary, a Sentinel and an app replica away at once.
    const run = await experiment('host-partition', ['--fault', 'host-partition', '--host', 'h1', '--mode', 'shared', '--duration', '60s', '--restart-after', '20s']);
    expect(run.hostsLost).toEqual(['h1']);
    expect(run.sessionsLost).toBe(0);
    // min-replicas-to-write (the swarm's default): the cut-off primary acknowledged nothing that was then lost.
    expect(run.redisArgs).toContain('--min-replicas-to-write');
    expect(run.acknowledgedWritesLost).toBe(0);
    expect(run.readyAtS).not.toBeNull();
  });

  it("partial-partition: the primary's host cut off from the other hosts only; without a guard the old primary takes writes that are lost", { timeout: 10 * 60_000 }, async () => {
    // The fault itself, shown to happen: clients still reach the primary's host, its app replica
    // writes to the old primary, which acknowledges (no min-replicas-to-write, no WAIT), and those
    // writes are gone once it rejoins as a replica of the primary promoted on the other side.
    const run = await experiment('partial-partition', [
      '--fault',
      'partial-partition',
      '--min-replicas-to-write',
      '0',
      '--mode',
      'shared',
      '--duration',
      '60s',
      '--restart-after',
      '20s',
    ]);
    // Clients still reach h1: no host is lost to them; the victim is the primary's host (h1 at start).
    expect(run.hostsLost).toEqual([]);
    expect(run.killedNode).toBe('h1');
    expect(run.redisArgs).toEqual([]);
    expect(run.acknowledgedWritesLost).toBeGreaterThan(0);
  });

  it('rolling-update: docker service update of the app, one task at a time, start-first: no request fails', { timeout: 10 * 60_000 }, async () => {
    const run = await experiment('rolling-update', ['--fault', 'rolling-update', '--mode', 'shared', '--duration', '80s', '--restart-after', '1s']);
    expect(run.failedRequests).toBe(0);
    expect(run.sessionsLost).toBe(0);
    // It converged within the run: every replica was replaced while the load ran.
    expect(run.swarmRecoveryS).not.toBeNull();
  });
});
