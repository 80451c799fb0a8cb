import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPERIMENT_CLI, REPO_ROOT, runExperimentCli } from '../../../../testkit/experiment.js';
import type { RunSummary, Summary } from '../../src/experiment/report.js';

// The three-host swarm under each fault, end to end, as a user runs it: `npm run swarm -- up`
// (three network namespaces with a dockerd each, one swarm, the stack deployed), then one
// `npm run experiment -- failover --target swarm` per fault on that swarm (k6 from outside the
// hosts through the front, the fault at 15 s, the host back later; each run waits until the swarm
// has settled from the last), then `down`, which must leave nothing. The claims are
// loadtest/lib/claims.js's (judgeSwarmFault). One swarm for the four: an `up` takes about a minute.
const VUS = 12;
// The app's Redis command timeout, for the swarm and every run on it: 1,500 ms, not the default 500.
// Three hosts with a dockerd each share this machine's two cores, and while a new task starts the
// whole machine can stall: in one CI run's rolling update, three requests on one replica finished
// together after 469-627 ms and requests on the others took 300 ms, and the one whose command had
// waited past 500 ms got the store's 503 (ioredis: "Command timed out") though Redis had answered.
// (The app now takes a reply that reached its socket during its own stall: app/src/redis-timeouts.ts.
// The longer timeout stays for a stall that holds up Redis's host as well.)
// 1,500 ms is over twice that stall. A lost primary or Sentinel is given up after 3 s (twice the
// timeout: services/app/src/redis.ts), not 1 s: after a host partition writes came back in 7.8 s,
// where they took 4.2-4.6 s at 500 ms (the claims allow 10 s).
const APP_ENV = ['--env', 'REDIS_COMMAND_TIMEOUT_MS=1500'];
const SWARM_CLI = path.join(REPO_ROOT, 'services/cluster/dist/swarm/cli.js');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-swarm-test-'));
const swarm = (args: string[], timeout: number) => promisify(execFile)(process.execPath, [SWARM_CLI, ...args], { cwd: REPO_ROOT, timeout, maxBuffer: 16 * 1024 * 1024 });

beforeAll(async () => {
  expect(fs.existsSync(EXPERIMENT_CLI), `${EXPERIMENT_CLI} is missing: build first (npm run build)`).toBe(true);
  await swarm(['up', '--mode', 'shared', ...APP_ENV], 15 * 60_000);
}, 16 * 60_000);

afterAll(async () => {
  try {
    await swarm(['down'], 5 * 60_000);
    expect(leftovers(), 'the swarm left something behind').toEqual([]);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 6 * 60_000);

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

/** The app containers running on one host now (its own dockerd, as the swarm CLI reaches it). */
function appsOn(host: string): number {
  const ids = execFileSync('docker', ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=sc_app'], {
    encoding: 'utf8',
    env: { ...process.env, DOCKER_HOST: `unix://${path.join(REPO_ROOT, '.run/swarm', host, 'docker.sock')}` },
  });
  return ids.split('\n').filter(Boolean).length;
}

/** The last experiment's stderr: its progress lines, and the swarm's. */
let lastLog = '';

async function experiment(name: string, args: string[]): Promise<RunSummary> {
  const dir = path.join(out, name);
  const r = await runExperimentCli(['failover', '--target', 'swarm', '--mode', 'shared', '--vus', String(VUS), '--kill-at', '15s', ...APP_ENV, ...args, '--out', dir], 9 * 60_000);
  const summaryFile = path.join(dir, 'summary.json');
  lastLog = r.stderr;
  if (r.code !== 0) console.log(r.stdout.slice(-6000), r.stderr.slice(-3000));
  expect(fs.existsSync(summaryFile), `no summary.json (exit ${r.code})`).toBe(true);
  const run = (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Summary).runs[0]!;
  console.log(
    `${name}: ${run.requests} requests, ${run.failedRequests} failed ${JSON.stringify(run.failedByKind)}, ${run.sessionsLost} lost; ${run.fault} of ${run.killedNode} at ${run.killAtS}s ` +
      `${run.hostsLost?.length ? `(it ran ${run.lostNodes?.join(', ') || 'no replica'})` : '(not lost to clients)'}; writes back after ${run.writesBackAfterS} s; replicas back after ${run.swarmRecoveryS} s; claim: ${run.claim.why}`,
  );
  expect(run.k6.exitCode).toBe(0);
  // A partial partition loses acknowledged writes (measured): the counters' checks are how k6 sees it.
  if (run.fault !== 'partial-partition' || run.acknowledgedWritesLost === 0) expect(run.checkFailures).toBe(0);
  expect(run.requests).toBeGreaterThan(run.durationS * 10);
  expect(run.claim).toMatchObject({ held: true, problems: [] });
  return run;
}

// In this order on one swarm: the partial partition first, while the primary's host h1 runs an app
// replica as `up` spread them (its writer on the cut-off side; the swarm moves it away during the
// cut), then the update, the partition of wherever the primary runs by then, and the kill. Each run
// starts from a settled swarm, which has an app replica on every host again (faults.ts, spreadApps):
// the swarm itself never moves a replica back, and the update can leave a host without one.
describe('the cluster on a three-host swarm', () => {
  it("partial-partition: the primary's host cut off from the other hosts only; the old primary takes writes that are then lost", { timeout: 10 * 60_000 }, async () => {
    // The fault itself, shown to happen: clients still reach the primary's host, its app replica
    // writes to the old primary, which acknowledges them (no WAIT; min-replicas-to-write refuses
    // writes only once its replicas have been silent for min-replicas-max-lag), and those writes
    // are gone once it rejoins as a replica of the primary promoted on the other side.
    const run = await experiment('partial-partition', ['--fault', 'partial-partition', '--duration', '50s', '--restart-after', '15s']);
    // Clients still reach the host: none is lost to them. The victim is the primary's host (h1 since up).
    expect(run.hostsLost).toEqual([]);
    expect(run.killedNode).toBe('h1');
    expect(run.redisArgs).toContain('--min-replicas-to-write');
    expect(run.acknowledgedWritesLost).toBeGreaterThan(0);
  });

  it('rolling-update: docker service update of the app, one task at a time, start-first: no request fails', { timeout: 10 * 60_000 }, async () => {
    // First a drain, which leaves its host without an app replica once it is active again (the
    // swarm never moves one back): the run's settle step must put one there before the update
    // (one line per replica it moves; the partial partition may have left another host empty too).
    const { stdout } = await swarm(['fault', 'drain'], 5 * 60_000);
    const drained = /\] drain on (h\d)/.exec(stdout)?.[1];
    expect(drained, stdout).toBeDefined();
    expect(appsOn(drained!), `app containers on ${drained} after the drain`).toBe(0);
    const run = await experiment('rolling-update', ['--fault', 'rolling-update', '--duration', '60s', '--restart-after', '1s']);
    expect(run.failedRequests).toBe(0);
    expect(run.sessionsLost).toBe(0);
    // It converged within the run: every replica was replaced while the load ran.
    expect(run.swarmRecoveryS).not.toBeNull();
    expect(lastLog).toMatch(
      new RegExp(`\\[swarm\\] [^\\n]*\\b${drained}\\b[^\\n]* ran no app replica: stopped app-\\d on h\\d, the swarm started it again \\([^\\n]*\\b${drained}: app-\\d`),
    );
  });

  it("host-partition: the Redis primary's host cut off for 20 s, then healed; shared mode loses no session", { timeout: 10 * 60_000 }, async () => {
    // The primary's host: the cut takes the primary, a Sentinel and an app replica away at once.
    const run = await experiment('host-partition', ['--fault', 'host-partition', '--host', 'primary', '--duration', '55s', '--restart-after', '20s']);
    expect(run.hostsLost).toEqual([run.killedNode]);
    expect(run.sessionsLost).toBe(0);
    // min-replicas-to-write (the swarm's default): the cut-off primary acknowledged nothing that was then lost.
    expect(run.redisArgs).toContain('--min-replicas-to-write');
    expect(run.acknowledgedWritesLost).toBe(0);
    expect(run.readyAtS).not.toBeNull();
  });

  it('host-kill: every process of one host killed at once; shared mode loses no session', { timeout: 10 * 60_000 }, async () => {
    // Back after 75 s: the swarm reschedules a dead host's replicas about 18 s after the fault, and
    // 47-54 s (3 runs) when the host was the swarm's leader (a raft election, randomised, and then
    // the new leader gives every node a full heartbeat grace before it marks the dead one down).
    const run = await experiment('host-kill', ['--fault', 'host-kill', '--duration', '100s', '--restart-after', '75s']);
    expect(run.hostsLost).toEqual([run.killedNode]);
    expect(run.lostNodes!.length).toBeGreaterThan(0);
    expect(run.sessionsLost).toBe(0);
    // The swarm noticed and ran the lost replicas elsewhere.
    expect(run.swarmRecoveryS).toBeGreaterThan(0);
  });
});
