#!/usr/bin/env node
// Builds the TypeScript packages only when a source changed since the last build, so that
// `npm run cluster -- ps` (and every other verb) does not spend seconds in `tsc -b` for nothing.
// Stale means: a file under services/<pkg>/src, a tsconfig or a package.json is newer than the
// stamp this script writes after a successful build (.run/build-stamp), or a dist is missing.
// Then it runs the one build command (`npm run -s build`, i.e. tsc -b), whose output and exit code
// it passes on; a failed build leaves no stamp, so the next run builds (and reports) again.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const packages = ['services/app', 'services/cluster'];
const shared = ['tsconfig.base.json', 'package.json', 'package-lock.json'].map((f) => path.join(root, f));
const stampFile = path.join(root, '.run', 'build-stamp');

function newest(dir) {
  let latest = 0;
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else latest = Math.max(latest, fs.statSync(p).mtimeMs);
    }
  };
  walk(dir);
  return latest;
}

const mtime = (f) => {
  try {
    return fs.statSync(f).mtimeMs;
  } catch {
    return 0;
  }
};

function stale() {
  const sharedNewest = Math.max(...shared.map(mtime));
  const built = mtime(stampFile);
  if (!built) return 'no successful build recorded';
  for (const pkg of packages) {
    const dir = path.join(root, pkg);
    if (!mtime(path.join(dir, 'dist', '.tsbuildinfo'))) return `${pkg} was never built`;
    const inputs = Math.max(newest(path.join(dir, 'src')), mtime(path.join(dir, 'tsconfig.json')), mtime(path.join(dir, 'package.json')), sharedNewest);
    if (inputs > built) return `${pkg} changed`;
  }
  return null;
}

if (stale() !== null || process.env.FORCE_BUILD) {
  const startedAt = new Date();
  const r = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status === 0) {
    // Stamped with the start time: a source saved during the build is newer, so it builds again.
    fs.mkdirSync(path.dirname(stampFile), { recursive: true });
    fs.writeFileSync(stampFile, `${startedAt.toISOString()}\n`);
    fs.utimesSync(stampFile, startedAt, startedAt);
  }
  process.exit(r.status ?? 1);
}
