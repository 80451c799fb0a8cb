// Types of lib/faults.js for the TypeScript side (services/cluster/src/experiment).
export type Fault = 'node-kill' | 'node-term' | 'redis-restart' | 'redis-primary-kill' | 'host-kill' | 'host-partition' | 'partial-partition' | 'rolling-update' | 'drain';
export type StoreTopology = 'single' | 'sentinel' | 'redis-cluster';

export interface FaultAction {
  readonly summary: string;
  readonly store: boolean;
  readonly victim: 'node' | 'redis' | 'redis-primary' | 'host' | 'primary-host' | 'service';
  readonly signal: 'KILL' | 'TERM';
  readonly stores: readonly StoreTopology[] | null;
  readonly wrongStore?: (store: string) => string;
  readonly keepsSessions: boolean;
  readonly failsNone: boolean;
  readonly swarm?: 'power-off' | 'cut' | 'cut-from-hosts' | 'update' | 'drain-host';
  readonly losesHost?: boolean;
}

export const FAULTS: Readonly<Record<Fault, FaultAction>>;
export const FAULT_NAMES: readonly Fault[];
export const DEFAULT_FAULT: Fault;
export const STORE_FAULTS: readonly Fault[];
export function isStoreFault(fault: string): boolean;
export function faultRefusal(fault: string, store: string): string | null;
export const SWARM_FAULTS: readonly Fault[];
export function isSwarmFault(fault: string): boolean;
export function targetRefusal(fault: string, target: string): string | null;
