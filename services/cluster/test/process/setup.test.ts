/**
 * scripts/setup.sh on a machine it cannot install on: no apt-get (macOS, other distributions), and
 * the packages the local path needs missing. It must stop at once, before any other work (no npm
 * ci, no Go build), naming the packages to install and the Docker path, for either purpose.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
/** A PATH with only the shell tools setup.sh needs before its checks: no apt-get, no package, no Go, no npm. */
const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'setup-no-apt-'));
for (const tool of ['bash', 'dirname', 'sort']) {
  const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  fs.symlinkSync(found, path.join(bin, tool));
}
afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

describe('scripts/setup.sh without apt-get', () => {
  for (const purpose of ['run', 'test']) {
    it(`setup.sh ${purpose}: stops at once, naming the packages and the Docker path`, () => {
      const lock = fs.statSync(path.join(ROOT, 'node_modules/.package-lock.json')).mtimeMs;
      const r = spawnSync(path.join(bin, 'bash'), [path.join(ROOT, 'scripts/setup.sh'), purpose], {
        env: { PATH: bin, HOME: os.tmpdir() },
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/no apt-get/);
      for (const pkg of ['redis-server', 'nginx-light', 'prometheus', 'postgresql']) expect(r.stderr).toContain(pkg);
      if (purpose === 'test') expect(r.stderr).toContain('docker.io');
      else expect(r.stderr).not.toContain('chromium'); // `npm start` needs none of the test tools
      expect(r.stderr).toMatch(/Docker path.*docker compose up/);
      expect(r.stdout).not.toMatch(/npm ci|building/);
      expect(fs.statSync(path.join(ROOT, 'node_modules/.package-lock.json')).mtimeMs).toBe(lock);
    });
  }

  it('rejects an unknown purpose', () => {
    const r = spawnSync(path.join(bin, 'bash'), [path.join(ROOT, 'scripts/setup.sh'), 'deploy'], { env: { PATH: bin }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: scripts\/setup.sh run\|test/);
  });
});
