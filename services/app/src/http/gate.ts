import { AppError } from '../errors.js';

/**
 * Bounds concurrent work of one kind on this node (password hashing): at most `concurrency` run
 * at once, at most `queue` wait, and anything beyond is refused at once with BUSY (503 +
 * Retry-After) instead of piling up. A login flood then costs the node a bounded share of its
 * CPU and memory (scrypt N=2^17 takes 128 MiB a hash), and reads keep their latency.
 */
export interface Gate {
  run<T>(work: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

export function createGate(opts: { concurrency: number; queue: number }): Gate {
  let active = 0;
  const waiters: Array<() => void> = [];
  const release = () => {
    const next = waiters.shift();
    if (next)
      next(); // the slot passes straight to the next waiter: `active` is unchanged
    else active--;
  };
  return {
    get active() {
      return active;
    },
    get waiting() {
      return waiters.length;
    },
    async run(work) {
      if (active < opts.concurrency) active++;
      else if (waiters.length < opts.queue) await new Promise<void>((resolve) => waiters.push(resolve));
      else throw new AppError('BUSY', undefined, { retryAfterS: 1 });
      try {
        return await work();
      } finally {
        release();
      }
    },
  };
}
