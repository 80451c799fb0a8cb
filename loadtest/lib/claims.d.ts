// Types of lib/claims.js for the TypeScript side (services/cluster/src/experiment/report.ts).
export interface Limits {
  readonly readFailureRate: number;
  readonly writeFailuresPerVu: number;
  readonly killWindowS: number;
  readonly killSlackS: number;
  readonly returnWithinS: number;
  readonly hostRetryS: number;
  readonly writesBackWithinS: number;
}
export const LIMITS: Limits;

export type FailureClass = 'network' | '5xx' | '4xx';
export function failureClass(status: number | string): FailureClass;

export type Mode = 'shared' | 'sticky' | 'database' | 'cookie' | 'jwt';
export type { Fault } from './faults.js';
export { isStoreFault, STORE_FAULTS } from './faults.js';
import type { Fault } from './faults.js';

export interface RunSettings {
  mode: Mode;
  kill: boolean;
  restart: boolean;
}
export function lossesPerVu(s: Pick<RunSettings, 'mode' | 'kill'>): number;
export function k6Thresholds(s: RunSettings & { vus: number; fault?: Fault }): Record<string, string[]>;

/** One failed request (failed_requests), seconds since k6's first sample. */
export interface FailureEvent {
  /** When it failed (s from the run's start). */
  t: number;
  /** When it was sent (s from the run's start); absent: recorded without it, take `t`. */
  sent?: number;
  kind: string;
  /** HTTP status as k6 tagged it; "0" = network error. */
  status: string;
  vu: string;
}

/** One lost session (sessions_lost). */
export interface LossEvent {
  t: number;
  /** The node that last served the session. */
  node: string;
  /** The node that answered 401. */
  answeredBy: string;
  /** home: the same node; other: another one. */
  answer: string;
  vu: string;
}

/** What judge() reads: a subset of the experiment's RunSummary. */
export interface JudgeInput {
  mode: Mode;
  /** What was done at killAtS (default node-kill). */
  fault?: Fault;
  /** Seconds from the first to the last failed session write around the fault (store faults). */
  writeOutageS?: number;
  /** Session writes answered 2xx that a later read did not show (a counter or the cart went below what a write's answer showed). */
  acknowledgedWritesLost?: number;
  /** Reads that showed less than an earlier read but not less than any write's answer: stale reads, or dirty ones rolled back. */
  readsWentBack?: number;
  vus: number;
  /** Requests by kind (login, read = GET /api/me or /api/cart, write = POST /api/cart/items, noSession = GET /api/ping). */
  requestsByKind: { read: number; write: number; login: number; noSession?: number };
  sessionsTotal: number;
  sessionsLost: number;
  /** Checks on identity/counters that failed: a session that continued, but wrongly. */
  checkFailures: number;
  /** Every failed request and every lost session, in time order (seconds since k6's first sample). */
  failures: FailureEvent[];
  losses: LossEvent[];
  killedNode: string | null;
  /** Sessions the killed node said it held just before the kill (sticky; null in shared mode or when it could not be read). */
  killedNodeSessions: number | null;
  /** Requests the killed node answered before the kill, from k6's samples (null: no kill). */
  killedNodeServedBeforeKill: number | null;
  killAtS: number | null;
  restartAtS: number | null;
  readyAtS: number | null;
  /** The run's length in k6's samples, seconds. */
  endS: number;
  /** Requests in all (k6's http_reqs). */
  requests?: number;
  /** Node settings given with --env (REDIS_WAIT_REPLICAS=1 ...). */
  nodeSettings?: Record<string, string>;
  /** Swarm: the extra redis-server arguments (--min-replicas-to-write 1 ...). */
  redisArgs?: string[];
  /** Swarm faults: the hosts lost to the clients, and the app nodes they ran. */
  hostsLost?: string[];
  lostNodes?: string[];
  /** Swarm faults: seconds from the fault until the swarm ran every app replica again without the lost host (an update or a drain: until it converged); null: not within the run. */
  swarmRecoveryS?: number | null;
  /** Seconds from the fault to the last session write or login sent before the lost part came back that failed (0: none failed; null: no fault). */
  writesBackAfterS?: number | null;
  /** Seconds from the lost part's return (a host powered on, healed) to the last session write or login sent after it that failed (null: it did not come back). */
  writesBackAfterRestoreS?: number | null;
  k6: { exitCode: number | null; thresholds: Record<string, Record<string, boolean>> };
}

export interface Claim {
  expected: string;
  held: boolean;
  why: string;
  problems: string[];
}
export function judge(r: JudgeInput): Claim;
