/** Hooks the stores call around each operation; metrics.ts implements them. */
export type StoreOp = 'get' | 'set' | 'touch' | 'destroy';

export interface StoreObserver {
  /** Call at the start of an operation; call the returned function when it ends (with the error, if any). */
  start(op: StoreOp): (err?: unknown) => void;
}

export const noopObserver: StoreObserver = { start: () => () => {} };
