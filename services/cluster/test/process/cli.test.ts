import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/cluster.js';

// The three command-line tools parse options one way (lib/cli.ts): a usage error names the bad
// option or value, prints the usage, and exits 2 at once, before anything is started.
// tiers: not load, faults or Docker, because every run here is a usage error that exits before anything starts
const CLIS = {
  cluster: path.join(REPO_ROOT, 'services/cluster/dist/cli.js'),
  experiment: path.join(REPO_ROOT, 'services/cluster/dist/experiment/cli.js'),
  bench: path.join(REPO_ROOT, 'services/cluster/dist/bench/cli.js'),
};

const run = (cli: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  promisify(execFile)(process.execPath, [cli, ...args], { env, timeout: 30_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

const made: string[] = [];
const nowhere = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-cli-'));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

describe('usage errors: exit 2, naming the option, nothing started', () => {
  const cases: [keyof typeof CLIS, string[], RegExp][] = [
    ['cluster', ['up', '--port', '0'], /--port must be a whole number from 1 to 65535, got "0"/],
    ['cluster', ['up', '--port', '65536'], /--port must be a whole number from 1 to 65535, got "65536"/],
    ['cluster', ['up', '--nodes', 'three'], /--nodes must be a whole number from 1 to 32, got "three"/],
    ['cluster', ['up', '--mode', 'both'], /--mode must be one of shared, sticky, database, cookie, jwt, got "both"/],
    ['cluster', ['up', '--frobnicate'], /Unknown option '--frobnicate'/],
    ['cluster', ['up', '--env', 'NOPE=1'], /--env NOPE: not a node setting; the settings are SESSION_IDLE_TIMEOUT/],
    ['cluster', ['up', '--env', 'PORT=9000'], /--env PORT: set by the cluster runner/],
    ['cluster', ['up', '--env', 'LOG_LEVEL'], /--env takes KEY=VALUE, got "LOG_LEVEL"/],
    ['cluster', ['up', '--env', 'SESSION_IDLE_TIMEOUT=soon'], /node setting SESSION_IDLE_TIMEOUT must be a duration like .*; got "soon"/],
    [
      'cluster',
      ['up', '--env', 'SESSION_IDLE_TIMEOUT=10m', '--env', 'SESSION_ABSOLUTE_TIMEOUT=5m'],
      /SESSION_ABSOLUTE_TIMEOUT must not be shorter than SESSION_IDLE_TIMEOUT; got "5m"/,
    ],
    ['cluster', ['up', '--log-max-size', 'big'], /--log-max-size must be a size/],
    ['cluster', ['frob'], /unknown verb "frob"/],
    ['cluster', ['kill'], /kill needs a part name/],
    ['cluster', ['kill', 'app-1', '--signal', 'HUP'], /--signal must be one of KILL, TERM, got "HUP"/],
    ['experiment', ['failover', '--duration', '1m30'], /--duration must be a duration like 90, 90s, 1m30s, 30m, 8h or 1d; got "1m30"/],
    ['experiment', ['failover', '--kill-at', 'x'], /--kill-at must be a duration/],
    ['experiment', ['failover', '--vus', '0'], /--vus must be a whole number from 1 to 10000, got "0"/],
    ['experiment', ['failover', '--bogus'], /Unknown option '--bogus'/],
    ['experiment', ['chaos'], /unknown experiment "chaos"/],
    ['experiment', ['failover', '--env', 'REDIS_WAIT_REPLICA=1'], /--env REDIS_WAIT_REPLICA: not a node setting/],
    ['experiment', ['failover', '--env', 'REDIS_WAIT_REPLICAS'], /--env takes KEY=VALUE, got "REDIS_WAIT_REPLICAS"/],
    [
      'experiment',
      ['failover', '--fault', 'redis-restart', '--store', 'sentinel'],
      /--fault redis-restart is the single Redis's fault; with --store sentinel use --fault redis-primary-kill/,
    ],
    ['experiment', ['failover', '--fault', 'redis-primary-kill'], /--fault redis-primary-kill needs --store sentinel or redis-cluster/],
    ['bench', ['--profile', '--rounds', 'x'], /--rounds must be a whole number from 1 to 100, got "x"/],
    ['bench', ['--seconds', '1.5s'], /--seconds must be a duration/],
    ['bench', ['--rounds', '0'], /--rounds must be a whole number from 1 to 100, got "0"/],
    ['bench', ['--bogus'], /Unknown option '--bogus'/],
    ['bench', ['--only', 'shared,nope'], /--only: no configuration "nope" \(one of shared, textbook, sticky/],
    ['bench', ['--rate', '0'], /--rate must be a whole number from 1 to 100000, got "0"/],
    ['bench', ['--capacity', '--login-rate', 'fast'], /--login-rate must be a whole number/],
  ];
  for (const [tool, args, message] of cases) {
    it(`${tool} ${args.join(' ')}`, async () => {
      const dir = nowhere();
      const r = await run(CLIS[tool], tool === 'cluster' ? [...args, '--dir', dir] : args);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(new RegExp(`^\\[${tool}\\] error: `));
      expect(r.stderr).toMatch(/usage: npm run/);
      expect(r.code).toBe(2);
      expect(fs.readdirSync(dir)).toEqual([]); // nothing was started or written
    });
  }

  it('a bad node setting in the environment of `cluster up` is named too', async () => {
    const dir = nowhere();
    const r = await run(CLIS.cluster, ['up', '--dir', dir], { ...process.env, SESSIONS_PER_USER_MAX: '0' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/node setting SESSIONS_PER_USER_MAX .*; got "0"/);
  });

  it('every duration option takes the same format: 1m30s works for each tool', async () => {
    // Valid durations get past parsing: the experiment then fails on its --out (a file), the
    // bench on a bad --connections: both after the durations were accepted.
    const file = path.join(nowhere(), 'a-file');
    fs.writeFileSync(file, '');
    const exp = await run(CLIS.experiment, ['failover', '--duration', '1m30s', '--kill-at', '1m', '--restart-after', '20s', '--out', path.join(file, 'x')]);
    expect(exp.stderr).not.toMatch(/must be a duration/);
    expect(exp.code).toBe(1);
    const bench = await run(CLIS.bench, ['--seconds', '1m30s', '--connections', '0']);
    expect(bench.stderr).toMatch(/--connections must be a whole number/);
  });
});

describe('the experiment explains itself', () => {
  it('says before starting that the restart would fall after the end of the run', async () => {
    const file = path.join(nowhere(), 'a-file');
    fs.writeFileSync(file, '');
    const r = await run(CLIS.experiment, ['failover', '--duration', '30s', '--kill-at', '20s', '--restart-after', '15s', '--out', path.join(file, 'x')]);
    expect(r.stdout).toMatch(/note: the restart would come at 35s, at or after the end of the load \(--duration 30s\): the killed node stays down/);
    const baseline = await run(CLIS.experiment, ['failover', '--duration', '30s', '--kill-at', '30s', '--out', path.join(file, 'x')]);
    expect(baseline.stdout).toMatch(/note: --kill-at 30s is at or after the end of the load .*no node is killed/);
    const fine = await run(CLIS.experiment, ['failover', '--duration', '30s', '--kill-at', '10s', '--restart-after', '5s', '--out', path.join(file, 'x')]);
    expect(fine.stdout).not.toMatch(/note:/);
  });
});

describe('output to a reader that stops early', () => {
  it('`ps --json | head -1` exits 0 without an EPIPE error', async () => {
    // A state with many (stopped) parts, so the output is larger than a pipe's buffer.
    const dir = nowhere();
    const parts = Array.from({ length: 3000 }, (_, i) => ({
      name: `app-${i + 1}`,
      kind: 'app',
      command: process.execPath,
      args: [],
      env: {},
      port: 1,
      url: 'http://127.0.0.1:1',
      health: { type: 'tcp' },
      pid: 2 ** 22 + i,
      log: '/dev/null',
    }));
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ dir, mode: 'shared', nodes: 3000, url: 'http://127.0.0.1:1', startedAt: new Date().toISOString(), parts }));
    const child = spawn(process.execPath, [CLIS.cluster, 'ps', '--json', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const first = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    child.stdout.destroy(); // what `head -1` does once it has its line
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(first).toMatch(/^\{/);
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  });
});
