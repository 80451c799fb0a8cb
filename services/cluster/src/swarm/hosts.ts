import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../cluster.js';

/**
 * The hosts (infra/swarm/hosts.sh: network namespaces with a dockerd each) and the Docker CLI
 * pointed at one of them. Every command runs with a timeout and fails with its own stderr.
 */
const run = promisify(execFile);
export const HOSTS_SH = path.join(REPO_ROOT, 'infra/swarm/hosts.sh');
export const SWARM_RUN_DIR = path.join(REPO_ROOT, '.run/swarm');

type ShOptions = { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string };

/** A command's stdout and stderr; it fails with the last lines of its stderr. */
async function shStreams(cmd: string, args: string[], opts: ShOptions = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    const p = run(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024 });
    if (opts.input !== undefined) {
      p.child.stdin!.end(opts.input);
    }
    return await p;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${path.basename(cmd)} ${args.join(' ')}: ${(e.stderr || e.message).trim().split('\n').slice(-8).join('\n')}`, { cause: err });
  }
}

export const sh = async (cmd: string, args: string[], opts: ShOptions = {}): Promise<string> => (await shStreams(cmd, args, opts)).stdout;

export const hostsSh = (args: string[], timeoutMs = 180_000) => sh('bash', [HOSTS_SH, ...args], { env: { SWARM_RUN_DIR }, timeoutMs });

export const socketOf = (host: string) => path.join(SWARM_RUN_DIR, host, 'docker.sock');
export const addressOf = (host: string) => `10.214.0.${10 + Number(host.slice(1))}`;
export const hostNames = (n: number) => Array.from({ length: n }, (_, i) => `h${i + 1}`);

/** `docker ARGS` on one host. */
export const docker = (host: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}) =>
  sh('docker', args, { env: { DOCKER_HOST: `unix://${socketOf(host)}` }, ...opts });

/** `docker ARGS` on one host, with both of what it printed (docker logs: a container's stdout and stderr). */
export const dockerStreams = (host: string, args: string[], timeoutMs = 120_000) => shStreams('docker', args, { env: { DOCKER_HOST: `unix://${socketOf(host)}` }, timeoutMs });
