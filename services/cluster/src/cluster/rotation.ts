import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from '../lib/ports.js';
import { owns, partsOfKind, type ClusterState } from './state.js';

/**
 * A node's place in nginx's rotation, for a drain. A node draining on SIGTERM closes its
 * listener, and the kernel resets every connection it had completed for that listener but the
 * node had not accepted yet; nginx has sent a request on each, and it does not replay a POST it
 * has sent (502). Only the load balancer can stop new connections cleanly, so a drain first takes
 * the node out of rotation, waits until nothing is left in the node's accept queue, and only then
 * signals it; a node started again is put back.
 *
 * Out of rotation means a file named after the node in `<run>/nginx/out`, which nginx checks on
 * every request (render.sh's ROTATION_DIR), not a reload: a reload closes every idle client
 * connection of nginx's old workers, and a client that sends its next request on one at that
 * moment gets no answer (measured: a few hundred of 10 000 requests failed in 9 drains at 100
 * busy keep-alive clients).
 */
export const rotationDirOf = (state: Pick<ClusterState, 'dir'>) => path.join(state.dir, 'nginx', 'out');

/**
 * An empty rotation folder that nginx's workers can reach. Started as root, nginx runs its workers
 * as `nobody`, and a file in a folder they cannot search is never there for `-f`: every folder on
 * the way must let others search it (x, not read). Returns the folders outside the run folder that
 * do not, for a warning (the runner changes only its own).
 */
export function prepareRotationDir(runDir: string): string[] {
  const out = rotationDirOf({ dir: runDir });
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  if (process.getuid?.() !== 0) return [];
  for (let d = out; d.startsWith(runDir); d = path.dirname(d)) fs.chmodSync(d, fs.statSync(d).mode | 0o001);
  const closed: string[] = [];
  for (let d = path.dirname(runDir); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) closed.push(d);
    if (d === path.dirname(d)) break;
  }
  return closed;
}

/** How long the connections nginx opened before the node left rotation may take to be accepted. */
const ACCEPT_QUEUE_TIMEOUT_MS = 5_000;

export async function takeOutOfRotation(state: ClusterState, node: string): Promise<void> {
  const part = partsOfKind(state, 'app').find((p) => p.name === node);
  const nginx = partsOfKind(state, 'nginx')[0];
  if (!part || !nginx) return;
  fs.writeFileSync(path.join(rotationDirOf(state), node), '');
  if (!owns(nginx)) return;
  // Each nginx worker picks a node and connects to it in one pass (a request's body, small here,
  // has been read by then); a connect on loopback is in the accept queue when it returns. So once
  // the file is there, the queue only empties: seen empty twice, a poll apart, nothing nginx chose
  // before it is still waiting there to be reset.
  let emptyBefore = false;
  await waitFor(
    `${node}'s accept queue to empty after it left nginx's rotation`,
    () => {
      const empty = (acceptQueue(part.port) ?? 0) === 0;
      const settled = empty && emptyBefore;
      emptyBefore = empty;
      return settled;
    },
    ACCEPT_QUEUE_TIMEOUT_MS,
    10,
  );
}

export function putBackIntoRotation(state: ClusterState, node: string): void {
  fs.rmSync(path.join(rotationDirOf(state), node), { force: true });
}

/**
 * Connections completed for the listener on 127.0.0.1:`port` and not accepted yet (for a listening
 * socket, /proc/net/tcp's rx_queue), or null when nothing listens there.
 */
export function acceptQueue(port: number): number | null {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue …; st 0A is LISTEN.
    if (f[1] === local && f[3] === '0A') return parseInt(f[4]!.split(':')[1]!, 16);
  }
  return null;
}
