import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The built experiment CLI (`npm run experiment`). */
export const EXPERIMENT_CLI = path.join(REPO_ROOT, 'services/cluster/dist/experiment/cli.js');

/** Runs the experiment CLI with k6 on the PATH (Go's bin folder, where setup installs it); never rejects. */
export function runExperimentCli(args: string[], timeout: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const gobin = path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [EXPERIMENT_CLI, ...args],
      { cwd: REPO_ROOT, env: { ...process.env, PATH: `${process.env.PATH}:${gobin}` }, maxBuffer: 16 * 1024 * 1024, timeout },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
