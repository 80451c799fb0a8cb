import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { resolveBinary } from '../parts.js';
import { REPO_ROOT, type Mode } from './state.js';

/**
 * Renders the nginx configuration for this run (nginx.conf + render.sh) and checks it with `nginx -t`.
 * `servers`: each node as NODE_ID=host:port (sticky routing names nodes by id; render.sh).
 * `rotationDir`: where a drain marks a node out of rotation (rotation.ts; render.sh's ROTATION_DIR).
 */
export function renderNginx(opts: { confDir: string; mode: Mode; port: number; statusPort: number; servers: string[]; rotationDir?: string }): void {
  fs.mkdirSync(opts.confDir, { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'nginx.conf'), path.join(opts.confDir, 'nginx.conf'));
  execFileSync('sh', [path.join(REPO_ROOT, 'infra/nginx/render.sh'), opts.confDir, opts.mode, `127.0.0.1:${opts.port}`, `127.0.0.1:${opts.statusPort}`, ...opts.servers], {
    stdio: 'pipe',
    env: { ...process.env, ROTATION_DIR: opts.rotationDir ?? '' },
  });
  // stdout must be a file, not a socketpair: nginx opens /dev/stdout for its access log.
  const out = fs.openSync(path.join(opts.confDir, 'nginx-t.out'), 'w');
  try {
    execFileSync(resolveBinary('nginx'), ['-t', '-q', '-p', opts.confDir + '/', '-c', path.join(opts.confDir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', out, 'pipe'] });
  } catch (err) {
    throw new Error(`nginx: the rendered configuration is invalid:\n${String((err as { stderr?: Buffer }).stderr ?? err)}`, { cause: err });
  } finally {
    fs.closeSync(out);
  }
}
