/** What a run interrupted by its AbortSignal (Ctrl-C, SIGTERM) rejects with; the CLIs answer it with exit 130. */
export class Aborted extends Error {
  override name = 'AbortError';
  constructor() {
    super('interrupted');
  }
}

/**
 * Waits `ms` (none if negative), or rejects with Aborted as soon as `signal` is aborted (at once
 * if it already is): an interrupted run stops where it waits, and its `finally` tears down.
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new Aborted());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), Math.max(0, ms));
    const onAbort = () => (clearTimeout(timer), reject(new Aborted()));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
