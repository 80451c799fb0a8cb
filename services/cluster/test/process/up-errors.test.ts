import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/cluster.js';
import { isAlive, signal } from '../../src/lib/pids.js';
import { processesUsing } from '../../../../testkit/procs.js';
import { freePort } from '../../src/lib/ports.js';

// `cluster up` that cannot succeed: a clear error naming the part, and nothing left running.
const CLI = path.join(REPO_ROOT, 'services/cluster/dist/cli.js');
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  promisify(execFile)(process.execPath, [CLI, ...args], { env, timeout: 60_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

/** A PATH with every tool but `hide`. */
function pathWithout(hide: string): string {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-bin-'));
  made.push(bin);
  for (const tool of ['nginx', 'redis-server', 'prometheus', 'prometheus-nginx-exporter', 'prometheus-redis-exporter', 'sh']) {
    if (tool === hide) continue;
    for (const dir of ['/usr/sbin', '/usr/bin', '/bin']) {
      if (fs.existsSync(path.join(dir, tool))) {
        fs.symlinkSync(path.join(dir, tool), path.join(bin, tool));
        break;
      }
    }
  }
  return bin;
}

/** What a failed `up` left running in its run folder, by pid and command (state.json is gone by then, if it was ever written). */
const leftRunning = (dir: string) => processesUsing(dir).map((p) => `${p.pid} ${p.command}`);

// A failing test leaks nothing: whatever is still running in a run folder is SIGKILLed after it.
const runDirs: string[] = [];
const runDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-up-'));
  runDirs.push(dir);
  return dir;
};
const made: string[] = [];
afterEach(() => {
  for (const dir of runDirs.splice(0)) {
    for (const p of processesUsing(dir)) signal(p.pid, 'SIGKILL');
    made.push(dir);
  }
});
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

it('refuses a taken port, naming it, and starts nothing', async () => {
  const port = await freePort();
  const blocker = net.createServer().listen(port, '127.0.0.1');
  const dir = runDir();
  const r = await run(['up', '--detach', '--no-monitoring', '--port', String(port), '--dir', dir]);
  blocker.close();
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`nginx: port ${port} on 127.0.0.1 is already in use`));
  expect(fs.existsSync(path.join(dir, 'state.json'))).toBe(false);
  expect(leftRunning(dir)).toEqual([]);
});

for (const [missing, part] of [
  ['nginx', 'nginx'],
  ['redis-server', 'redis'],
] as const) {
  it(`names ${missing} when it is not installed, and leaves nothing running`, async () => {
    const dir = runDir();
    const r = await run(['up', '--detach', '--no-monitoring', '--port', String(await freePort()), '--dir', dir], { ...process.env, PATH: pathWithout(missing) });
    expect(leftRunning(dir)).toEqual([]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${part}: ${missing} is not installed`);
  });
}

it('a bad node setting is refused before anything starts, naming it (exit 2)', async () => {
  const dir = runDir();
  const r = await run(['up', '--detach', '--no-monitoring', '--port', String(await freePort()), '--dir', dir], { ...process.env, SESSION_SECRETS: 'too-short' });
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/node setting SESSION_SECRETS every secret must be at least 32 characters/);
  expect(r.stderr).not.toContain('too-short'); // the node's rule: secrets are never printed
  expect(r.stdout).not.toMatch(/healthy/);
  expect(fs.readdirSync(dir)).toEqual([]);
  expect(leftRunning(dir)).toEqual([]);
});

it('a part that fails after others started: everything started is stopped', async () => {
  // Real redis and nodes, then an nginx that refuses its configuration (a stand-in binary on PATH).
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-bin-'));
  made.push(bin);
  fs.writeFileSync(path.join(bin, 'nginx'), '#!/bin/sh\necho "nginx: [emerg] stand-in nginx refuses every configuration" >&2\nexit 1\n', { mode: 0o755 });
  const dir = runDir();
  const r = await run(['up', '--detach', '--no-monitoring', '--nodes', '2', '--demo-users', '20', '--port', String(await freePort()), '--dir', dir], {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/nginx: the rendered configuration is invalid/);
  expect(r.stderr).toMatch(/stand-in nginx refuses/);
  expect(r.stdout).toMatch(/redis +healthy/);
  expect(r.stdout).toMatch(/app-2 +healthy/);
  const started = [...r.stdout.matchAll(/\(pid (\d+),/g)].map((m) => Number(m[1]));
  expect(started.length).toBe(3);
  expect(started.filter(isAlive)).toEqual([]);
  expect(leftRunning(dir)).toEqual([]);
  expect(fs.existsSync(path.join(dir, 'state.json'))).toBe(false);
});
