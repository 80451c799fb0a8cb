import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SESSION_MODES, type SessionMode } from '@session-cluster/app/modes';
import { DEFAULT_LOG_MAX_BYTES, rotateLogs } from '../lib/logs.js';
import { cmdline, isAlive } from '../lib/pids.js';
import { removePostgresData, type PartKind, type PartState, type RedisPersistence } from '../parts.js';

/**
 * Where a local cluster lives and what it knows: everything is in `<dir>/state.json`, so `up
 * --detach`, `ps`, `kill`, `start` and `down` can be separate invocations of the CLI.
 */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const DEFAULT_DIR = path.join(REPO_ROOT, '.run', 'cluster');
export const APP_ENTRY = path.join(REPO_ROOT, 'services/app/dist/main.js');

export type Mode = SessionMode;
export const MODES: readonly Mode[] = SESSION_MODES;

export const STORES = ['single', 'sentinel', 'redis-cluster'] as const;
export type Store = (typeof STORES)[number];

export interface ClusterState {
  dir: string;
  mode: Mode;
  nodes: number;
  url: string;
  startedAt: string;
  /** The node settings this cluster was started with (DEMO_USERS and UpOptions.nodeEnv); `start app-N` reuses them. */
  settings?: Record<string, string>;
  /** The cap on each part's log (lib/logs.ts). */
  logMaxBytes?: number;
  /** Shared mode only. */
  redisPersistence?: RedisPersistence;
  store?: Store;
  parts: PartState[];
}

const stateFile = (dir: string) => path.join(dir, 'state.json');

export function readState(dir = DEFAULT_DIR): ClusterState | null {
  try {
    return JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as ClusterState;
  } catch {
    return null;
  }
}

export function writeState(state: ClusterState): void {
  fs.writeFileSync(stateFile(state.dir), JSON.stringify(state, null, 2));
}

export function forgetState(dir: string): void {
  fs.rmSync(stateFile(dir), { force: true });
}

/** The state a verb run from another process acts on; its logs are rotated on the way (keepLogsBounded). */
export function requireState(dir: string): ClusterState {
  const state = readState(dir);
  if (!state) throw new Error(`no cluster state in ${dir}; start one with \`npm run cluster -- up\``);
  keepLogsBounded(state);
  return state;
}

/** A detached cluster has no runner following its logs: every verb rotates them (lib/logs.ts). */
export function keepLogsBounded(state: ClusterState): string[] {
  return rotateLogs(path.join(state.dir, 'logs'), state.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES);
}

export const logDirOf = (state: Pick<ClusterState, 'dir'>) => path.join(state.dir, 'logs');

export function findPart(state: ClusterState, name: string): PartState {
  const part = state.parts.find((p) => p.name === name);
  if (!part) throw new Error(`no part named "${name}"; parts: ${state.parts.map((p) => p.name).join(', ')}`);
  return part;
}

export const partsOfKind = (state: ClusterState, ...kinds: PartKind[]) => state.parts.filter((p) => kinds.includes(p.kind));

/** True if `pid` is still the process we started for `part` (pids get reused). */
export function owns(part: PartState): boolean {
  // A part started through `setpriv` (PostgreSQL as its own user, parts.ts) becomes the program it execs.
  const program = part.command === 'setpriv' ? part.args[part.args.indexOf('--') + 1]! : part.command;
  return isAlive(part.pid) && cmdline(part.pid).includes(path.basename(program));
}

/**
 * Deletes a run folder that is down, and what it links to outside itself (PostgreSQL's data, when
 * it had to live under the system temp directory: parts.ts). For throw-away runs (tests, the
 * experiment, the benchmark); a kept run folder keeps its data for the next `up`.
 */
export function removeRun(dir: string): void {
  removePostgresData(path.join(dir, 'postgres'));
  fs.rmSync(dir, { recursive: true, force: true });
}
