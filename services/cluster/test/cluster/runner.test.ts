import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/cluster.js';
import { isAlive } from '../../src/lib/pids.js';
import { freePort, waitFor } from '../../src/lib/ports.js';

// `npm start` as a person (or a process manager, or `timeout`) runs it: the runner in the
// foreground, with node settings from its environment and --env, logs capped by size, and a
// SIGTERM to the npm process itself stopping everything it started.
const CLI = path.join(REPO_ROOT, 'services/cluster/dist/cli.js');
const CAP = 64 * 1024;
const started: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  for (const dir of dirs) {
    await promisify(execFile)(process.execPath, [CLI, 'down', '--dir', dir]).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

const statePids = (dir: string): number[] => JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).parts.map((p: { pid: number }) => p.pid);
const environ = (pid: number) =>
  Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );

/** `requests` GETs through nginx, `concurrency` at a time; bounded in count and by a 60 s deadline. */
async function burst(url: string, requests: number, concurrency: number): Promise<number> {
  let next = 0;
  let ok = 0;
  const deadline = Date.now() + 60_000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests && Date.now() < deadline) {
        next++;
        const res = await fetch(`${url}/api/ping`, { signal: AbortSignal.timeout(10_000) }).catch(() => null);
        if (res?.ok) ok++;
        await res?.arrayBuffer();
      }
    }),
  );
  return ok;
}

it('npm start: settings from the environment and --env, reused by start; logs stay under the cap; SIGTERM to npm stops everything', { timeout: 180_000 }, async () => {
  // A fresh build stamp, so that npm start's build step is the no-op it is after `npm test`'s build.
  await promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'scripts/build-if-stale.mjs')], { cwd: REPO_ROOT });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-runner-'));
  dirs.push(dir);
  const port = await freePort();
  const env = { ...process.env, LOG_LEVEL: 'info', SESSIONS_PER_USER_MAX: '7' };
  const npm = spawnLogged(
    'npm',
    ['start', '--', '--no-monitoring', '--nodes', '2', '--demo-users', '20', '--port', String(port), '--dir', dir, '--log-max-size', '64k', '--env', 'SESSION_IDLE_TIMEOUT=90s'],
    env,
  );
  await waitFor(
    'the cluster to come up',
    () => /following logs/.test(npm.output()),
    120_000,
    200,
    () => (npm.child.exitCode !== null ? `npm start exited:\n${npm.output()}` : null),
  );

  // Settings: environment (LOG_LEVEL, SESSIONS_PER_USER_MAX), --demo-users and --env, in state, ps and the nodes.
  const psJson = JSON.parse((await promisify(execFile)(process.execPath, [CLI, 'ps', '--json', '--dir', dir])).stdout);
  expect(psJson.settings).toEqual({ DEMO_USERS: '20', LOG_LEVEL: 'info', SESSIONS_PER_USER_MAX: '7', SESSION_IDLE_TIMEOUT: '90s' });
  const psText = (await promisify(execFile)(process.execPath, [CLI, 'ps', '--dir', dir])).stdout;
  expect(psText).toContain('node settings: DEMO_USERS=20 LOG_LEVEL=info SESSIONS_PER_USER_MAX=7 SESSION_IDLE_TIMEOUT=90s');
  const app1 = psJson.parts.find((p: { name: string }) => p.name === 'app-1');
  expect(environ(app1.pid)).toMatchObject({ SESSION_IDLE_TIMEOUT: '90s', LOG_LEVEL: 'info', SESSIONS_PER_USER_MAX: '7' });

  // `start` after `kill` brings the node back with the same settings (from state, not this environment).
  await promisify(execFile)(process.execPath, [CLI, 'kill', 'app-1', '--dir', dir]);
  await promisify(execFile)(process.execPath, [CLI, 'start', 'app-1', '--dir', dir], { env: { ...process.env, LOG_LEVEL: 'error' } });
  const restarted = statePids(dir)[JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).parts.findIndex((p: { name: string }) => p.name === 'app-1')]!;
  expect(restarted).not.toBe(app1.pid);
  expect(environ(restarted)).toMatchObject({ SESSION_IDLE_TIMEOUT: '90s', LOG_LEVEL: 'info', SESSIONS_PER_USER_MAX: '7' });

  // A bounded burst writes many times the cap into the logs (nginx: one access line per request,
  // each node: one JSON line per request at info); the runner keeps each log under it.
  const REQUESTS = 4000;
  const ok = await burst(`http://127.0.0.1:${port}`, REQUESTS, 16);
  expect(ok).toBeGreaterThan(REQUESTS * 0.95);
  await new Promise((r) => setTimeout(r, 1500)); // a few of the follower's 250 ms rounds
  const logDir = path.join(dir, 'logs');
  const sizes = Object.fromEntries(fs.readdirSync(logDir).map((f) => [f, fs.statSync(path.join(logDir, f)).size]));
  console.log('log sizes after the burst:', sizes);
  for (const [f, size] of Object.entries(sizes)) {
    if (f.endsWith('.log')) expect(size, f).toBeLessThanOrEqual(CAP);
    // The previous generation: the cap plus what arrived within one round before it was cut.
    if (f.endsWith('.log.1')) expect(size, f).toBeLessThanOrEqual(CAP + 512 * 1024);
  }
  // Rotation happened, and dropped older lines: nginx wrote at least 100 bytes per request.
  expect(sizes['nginx.log.1']).toBeGreaterThan(0);
  expect(sizes['nginx.log']! + sizes['nginx.log.1']!).toBeLessThan(REQUESTS * 100);
  expect(sizes['app-2.log.1']).toBeGreaterThan(0);
  // The newest lines are still there (the node's log goes on after a truncation, from the start).
  expect(fs.readFileSync(path.join(logDir, 'app-2.log.1'), 'utf8')).toMatch(/"url":"\/api\/ping"|\/api\/ping/);

  // SIGTERM to the npm process itself, as `timeout` or a process manager sends it.
  const pids = statePids(dir);
  expect(pids.every(isAlive)).toBe(true);
  const t0 = Date.now();
  npm.child.kill('SIGTERM');
  await waitFor('every part to exit', () => pids.every((p) => !isAlive(p)), 20_000, 100);
  const code = await npm.exited;
  console.log(`SIGTERM to npm start: every part gone after ${Date.now() - t0} ms; npm exit ${code}`);
  expect(code).toBe(0);
  expect(npm.output()).toMatch(/SIGTERM: stopping everything this cluster started/);
  expect(fs.existsSync(path.join(dir, 'state.json'))).toBe(false);
});

it('SIGINT while the cluster is still starting: what was started is stopped, exit 130', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-runner-'));
  dirs.push(dir);
  const up = spawnLogged(process.execPath, [CLI, 'up', '--no-monitoring', '--nodes', '2', '--demo-users', '20', '--port', String(await freePort()), '--dir', dir], process.env);
  await waitFor(
    'redis to start',
    () => /redis +healthy/.test(up.output()),
    60_000,
    50,
    () => (up.child.exitCode !== null ? `up exited:\n${up.output()}` : null),
  );
  const redisPid = Number(/redis +healthy .*\(pid (\d+),/.exec(up.output())![1]);
  up.child.kill('SIGINT');
  const code = await up.exited;
  expect(up.output()).toMatch(/interrupted during start-up; everything started is stopped/);
  expect(code).toBe(130);
  const pids = [redisPid, ...[...up.output().matchAll(/\(pid (\d+),/g)].map((m) => Number(m[1]))];
  expect(pids.filter(isAlive)).toEqual([]);
  expect(fs.existsSync(path.join(dir, 'state.json'))).toBe(false);
});
