/**
 * infra/nginx/render.sh decides each mode's routing from its own `case` (shell cannot import the
 * mode descriptors): here it is held against them, mode by mode, as what it renders.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODE_DESCRIPTORS, SESSION_MODES } from '../../../services/app/src/modes.js';

const RENDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../nginx/render.sh');

function render(mode: string): { status: number | null; upstream: string | null; stderr: string } {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-render-'));
  try {
    const r = spawnSync('sh', [RENDER, out, mode, '127.0.0.1:1', '127.0.0.1:2', 'a=127.0.0.1:3', 'b=127.0.0.1:4'], { encoding: 'utf8' });
    const file = path.join(out, 'upstream.conf');
    return { status: r.status, upstream: fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null, stderr: r.stderr };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

describe('render.sh routes every mode as its descriptor says', () => {
  it.each(SESSION_MODES)('%s', (mode) => {
    const r = render(mode);
    expect(r.status, r.stderr).toBe(0);
    const sticky = MODE_DESCRIPTORS[mode].routing === 'sticky';
    // Sticky: the route cookie picks the node's own upstream; any node: one pool, no cookie.
    expect(r.upstream!.includes('map $cookie_scroute $backend'), `${mode}: route cookie`).toBe(sticky);
    expect(r.upstream!.includes('upstream node_1 {'), `${mode}: per-node upstreams`).toBe(sticky);
    expect(r.upstream).toContain('upstream app {');
  });

  it('and refuses a mode the descriptors do not know', () => {
    const r = render('sticky-ish');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`MODE must be ${SESSION_MODES.slice(0, -1).join(', ')} or ${SESSION_MODES.at(-1)}`);
    expect(r.upstream).toBeNull();
  });
});
