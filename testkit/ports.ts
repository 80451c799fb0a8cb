/** Free ports and polling, as the cluster runner uses them. */
import { sleep } from '../services/cluster/src/lib/ports.js';

export { freePort, sleep, waitFor } from '../services/cluster/src/lib/ports.js';
export { signal, terminate, waitGone } from '../services/cluster/src/lib/pids.js';

/** Runs `fn` until it resolves, at most `attempts` more times after a failure, `delayMs` apart (a port just freed by a killed server). */
export async function retrying<T>(fn: () => Promise<T>, attempts: number, delayMs: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await sleep(delayMs);
    }
  }
}
