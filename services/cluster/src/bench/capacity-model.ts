/**
 * The capacity model's arithmetic (no process is started here): from the CPU each class of process
 * spends per request, what one core serves, how many nodes a load needs at a target utilisation,
 * where one Redis primary saturates and how many Redis Cluster shards a load needs, and what this
 * machine should serve with 1, 2 and 3 nodes (the prediction checked against a measurement).
 */
export type Op = 'read' | 'me' | 'login';

/** CPU microseconds per request of each class of process. */
export interface ClassCost {
  node: number;
  nginx: number;
  redis: number;
  postgres: number;
}

/** The share of each operation in the load the model sizes for (sums to 1). */
export type Mix = Record<Op, number>;

export const DEFAULT_MIX: Mix = { read: 0.9, me: 0.09, login: 0.01 };
export const UTILISATION = 0.7;
export const LEVELS = [10_000, 100_000, 1_000_000] as const;

/** Requests per second one fully busy core serves at `us` CPU microseconds per request (Infinity when free). */
export function perCore(us: number): number {
  return us > 0 ? 1e6 / us : Infinity;
}

/** The mix's average CPU per request, class by class. */
export function mixCost(costs: Record<Op, ClassCost>, mix: Mix): ClassCost {
  const sum = Object.values(mix).reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-9) throw new Error(`the mix must sum to 1, got ${sum}`);
  const out: ClassCost = { node: 0, nginx: 0, redis: 0, postgres: 0 };
  for (const op of Object.keys(mix) as Op[]) for (const k of Object.keys(out) as Array<keyof ClassCost>) out[k] += mix[op] * costs[op][k];
  return out;
}

/**
 * Single-threaded units (a node's event loop, a Redis primary) needed to serve `rps` at `us` per
 * request with each held at `utilisation` of its core: at least 1 whenever the class does any work.
 */
export function unitsNeeded(rps: number, us: number, utilisation = UTILISATION): number {
  if (us <= 0) return 0;
  return Math.max(1, Math.ceil((rps * us) / (utilisation * 1e6)));
}

/** Where one single-threaded unit reaches `utilisation` (req/s), at `us` per request. */
export function ceiling(us: number, utilisation = UTILISATION): number {
  return us > 0 ? (utilisation * 1e6) / us : Infinity;
}

/**
 * Saturation throughput on one machine of `cores` cores with `nodes` nodes, every process sharing
 * them: a node's event loop serves at most one core (nodes × 1e6 / node µs), and all the processes
 * together at most the machine (cores × 1e6 / the sum of every class's µs, the load generator's too).
 */
export function predictThroughput(x: { nodes: number; cores: number; nodeUs: number; otherUs: number }): number {
  const byNodes = (x.nodes * 1e6) / x.nodeUs;
  const byMachine = (x.cores * 1e6) / (x.nodeUs + x.otherUs);
  return Math.min(byNodes, byMachine);
}

/** How far a measurement lies from its prediction, percent of the prediction (positive: measured more). */
export function errorPct(predicted: number, measured: number): number {
  return ((measured - predicted) / predicted) * 100;
}
