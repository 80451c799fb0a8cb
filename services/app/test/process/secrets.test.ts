import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { initSecrets, MAX_KEPT, rotateSecrets, SecretsError, type SecretsPaths } from '../../src/secrets.js';

// The compose stack's `secrets` service (docker-compose.yml): the lifecycle of the signing secrets
// in their volume, on a real file system. What it writes is what a node accepts (parseConfig).
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/secrets.js');
const root = process.getuid?.() === 0;
let dir: string;
let p: SecretsPaths;
const read = () => fs.readFileSync(p.target, 'utf8').trim().split('\n');
const nodeAccepts = () => parseConfig({ SESSION_SECRETS_FILE: p.target, NODE_ID: 'n' }).secrets;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secrets-'));
  p = { target: path.join(dir, 'volume', 'session_secrets'), seed: path.join(dir, 'seed', 'session_secrets'), uid: root ? 1000 : null };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('init', () => {
  it('generates one secret the first time (64 hex characters, 0400, the nodes’ uid), then keeps it', () => {
    expect(initSecrets(p)).toMatch(/generated/);
    const [first] = read();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    const st = fs.statSync(p.target);
    expect((st.mode & 0o777).toString(8)).toBe('400');
    if (root) expect(st.uid).toBe(1000);
    expect(nodeAccepts()).toEqual([first]);
    expect(initSecrets(p)).toMatch(/kept/);
    expect(read()).toEqual([first]);
  });

  it('copies your own file, checked, and it wins over the volume’s; a weak one is refused and nothing changes', () => {
    initSecrets(p);
    const generated = read();
    fs.mkdirSync(path.dirname(p.seed));
    const mine = ['f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff', '9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100'];
    fs.writeFileSync(p.seed, `${mine.join('\n')}\n\n`);
    expect(initSecrets(p)).toMatch(/2 from .*copied/);
    expect(read()).toEqual(mine);
    expect(nodeAccepts()).toEqual(mine);
    fs.writeFileSync(p.seed, 'password\n');
    expect(() => initSecrets(p)).toThrow(SecretsError);
    expect(() => initSecrets(p)).toThrow(/your own secrets file.*at least 32 characters/);
    expect(read()).toEqual(mine);
    expect(read()).not.toEqual(generated);
  });

  it('refuses a volume file someone broke, and names it', () => {
    fs.mkdirSync(path.dirname(p.target));
    fs.writeFileSync(p.target, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n');
    expect(() => initSecrets(p)).toThrow(/session-secrets volume.*guessable/);
  });
});

describe('rotate', () => {
  it('puts a new secret first and keeps the previous ones, at most MAX_KEPT; the node accepts each list', () => {
    initSecrets(p);
    const seen = [read()[0]!];
    for (let i = 0; i < MAX_KEPT + 2; i++) {
      rotateSecrets(p);
      const now = read();
      expect(now[0]).not.toBe(seen[0]);
      expect(now.slice(1)).toEqual(seen.slice(0, MAX_KEPT - 1));
      seen.unshift(now[0]!);
      expect(nodeAccepts()).toEqual(now);
    }
    expect(read()).toHaveLength(MAX_KEPT);
    expect((fs.statSync(p.target).mode & 0o777).toString(8)).toBe('400');
  });

  it('is refused while the secrets come from your own file (edit that one)', () => {
    fs.mkdirSync(path.dirname(p.seed));
    fs.writeFileSync(p.seed, 'f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff\n');
    initSecrets(p);
    expect(() => rotateSecrets(p)).toThrow(/your own file/);
  });
});

describe('the command', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', SESSION_SECRETS_FILE: p.target, SESSION_SECRETS_SEED: p.seed },
    });

  it('exits 0 with one line, 1 with the reason (no stack), 2 on usage', () => {
    const ok = run('init');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);
    fs.mkdirSync(path.dirname(p.seed));
    fs.writeFileSync(p.seed, 'short\n');
    const bad = run('init');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^secrets init: .*session_secrets \(your own secrets file\) every secret must be at least 32 characters/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(run().status).toBe(2);
    expect(run('init', 'extra').status).toBe(2);
    expect(run('bogus').status).toBe(2);
  });
});
