import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodeStore } from '@session-cluster/app/modes';
import { REPO_ROOT, type Mode, type Store } from '../cluster.js';
import type { RedisPersistence } from '../parts.js';
import { isStoreFault, type Fault } from '../../../../loadtest/lib/claims.js';
import { tail } from '../lib/process.js';
import { readSeries, type Series } from './analyze.js';
import { startK6 } from './k6.js';
import { probeCredential, serverBytesOf } from './probe.js';
import { openTarget, type Target, type TargetKind } from './targets.js';

export const SURVIVAL_SCRIPT = path.join(REPO_ROOT, 'loadtest', 'survival.js');

export interface FailoverOptions {
  mode: Mode;
  /** Where it runs: the local cluster (default) or the compose stack (targets.ts). */
  target?: TargetKind;
  /** What happens at killAtS (default node-kill: SIGKILL of a node). */
  fault?: Fault;
  /** Shared mode's store topology and persistence (cluster up --store, --redis-persistence). */
  store?: Store;
  redisPersistence?: RedisPersistence;
  nodes: number;
  durationS: number;
  /** Seconds into the load; a kill at or after the end means no kill (a baseline run). */
  killAtS: number;
  /** Seconds after the kill; null = the node stays down. */
  restartAfterS: number | null;
  vus: number;
  /** `busiest` (most sessions held in sticky mode, most requests served in shared mode) or a node name. */
  killNode: string;
  outDir: string;
  /** The run's name in file names and progress lines: the mode, or mode-N when runs repeat. */
  label?: string;
  k6: string;
  /** Also start Prometheus and push k6's metrics to it (experimental-prometheus-rw). */
  monitoring: boolean;
  /** Node settings from --env (e.g. REDIS_WAIT_REPLICAS=1), on every node. */
  nodeSettings?: Record<string, string>;
  say: (line: string) => void;
  signal: AbortSignal;
}

/** k6's handleSummary data (lib/summary.js writes it unchanged). */
export interface K6Summary {
  metrics: Record<string, { type: string; contains: string; values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }>;
  state?: { testRunDurationMs: number };
}

export interface RunOutcome {
  mode: Mode;
  target: TargetKind;
  fault: Fault;
  store: Store;
  redisPersistence: RedisPersistence | null;
  /** The node settings given with --env ({} if none). */
  nodeSettings: Record<string, string>;
  /** mode, or mode-N when runs repeat (file names). */
  label: string;
  nodes: number;
  /** The nodes by the name X-Served-By gives (app-2; compose: the container's). */
  nodeNames: string[];
  vus: number;
  durationS: number;
  killedNode: string | null;
  /** Epoch ms. */
  killWall: number | null;
  restartWall: number | null;
  readyWall: number | null;
  /** What each node said it held just before the kill (session_cluster_sessions_active; sticky: its own sessions); null: its metrics could not be read. */
  sessionsHeld: Record<string, number | null>;
  k6Exit: { code: number | null; signal: string | null };
  summary: K6Summary;
  series: Series;
  /** The credential, measured after the load by one more user (probe.ts); null if the probe could not run. */
  probe: { revokesStolenCredential: boolean; stateBytesPerRequest: number; serverBytesPerSession: number | null } | null;
  files: { html: string; json: string; summary: string; log: string; logs: string };
}

class Aborted extends Error {
  constructor() {
    super('interrupted');
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new Aborted());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), Math.max(0, ms));
    const onAbort = () => (clearTimeout(timer), reject(new Aborted()));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function pickVictim(mode: Mode, choice: string, load: Record<string, { sessions: number; requests: number } | null>, names: string[]): string {
  if (choice !== 'busiest') {
    // app-N, or the container of that replica on compose (<project>-app-N).
    const named = names.find((n) => n === choice || n.endsWith(`-${choice}`));
    if (!named) throw new Error(`--kill-node: no node named ${choice} (nodes: ${names.join(', ')})`);
    return named;
  }
  // Sticky: the node holding the most sessions (the most to lose). Shared: the one that served most.
  const key = mode === 'sticky' ? 'sessions' : 'requests';
  const ranked = names.map((n) => ({ n, v: load[n]?.[key] ?? 0 })).sort((a, b) => b.v - a.v || a.n.localeCompare(b.n));
  return ranked[0]!.v > 0 ? ranked[0]!.n : (names[1] ?? names[0]!);
}

/**
 * One failover run: a fresh cluster (local, or the compose stack), k6 survival.js against it,
 * SIGKILL of one node at killAt, `start` of it restartAfter later, the cluster torn down whatever
 * happens.
 */
export async function runFailover(o: FailoverOptions): Promise<RunOutcome> {
  const label = o.label ?? o.mode;
  const fault: Fault = o.fault ?? 'node-kill';
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), `sc-experiment-${o.mode}-`));
  const files = {
    html: path.join(o.outDir, `k6-${label}.html`),
    json: path.join(o.outDir, `k6-${label}.json.gz`),
    summary: path.join(o.outDir, `k6-${label}-summary.json`),
    log: path.join(o.outDir, `k6-${label}.log`),
    logs: path.join(o.outDir, `logs-${label}`),
  };
  for (const f of [files.html, files.json, files.summary, files.log]) fs.rmSync(f, { force: true });
  const willKill = o.killAtS < o.durationS;
  const willRestart = willKill && o.restartAfterS !== null && o.killAtS + o.restartAfterS < o.durationS;
  let k6: ReturnType<typeof startK6> | null = null;
  let killedNode: string | null = null;
  let killWall: number | null = null;
  let restartWall: number | null = null;
  let readyWall: number | null = null;
  let sessionsHeld: Record<string, number | null> = {};
  let k6Exit: { code: number | null; signal: string | null } = { code: null, signal: null };
  let probe: RunOutcome['probe'] = null;
  const stopK6 = () => void k6?.stop('SIGTERM', 10_000);
  o.signal.addEventListener('abort', stopK6, { once: true });
  const targetKind = o.target ?? 'local';
  let target: Target | null = null;
  let nodeNames: string[] | undefined;
  try {
    const t0 = Date.now();
    target = await openTarget(targetKind, {
      mode: o.mode,
      nodes: o.nodes,
      demoUsers: o.vus + 1, // user1..userVUS for k6, one more for the credential probe
      monitoring: o.monitoring,
      nodeSettings: o.nodeSettings ?? {},
      runDir,
      ...(o.store && { store: o.store }),
      ...(o.redisPersistence && { redisPersistence: o.redisPersistence }),
    });
    const t = target;
    nodeNames = t.nodes;
    o.say(`${label}: cluster up at ${t.url} (${o.nodes} nodes, ${targetKind}, ${Date.now() - t0} ms); run folder ${runDir}`);
    if (o.signal.aborted) throw new Aborted();

    k6 = startK6({
      bin: o.k6,
      script: SURVIVAL_SCRIPT,
      vars: {
        BASE_URL: t.url,
        MODE: o.mode,
        PROFILE: 'experiment',
        DURATION: `${o.durationS}s`,
        VUS: String(o.vus),
        // The claims k6 holds the run to (loadtest/lib/claims.js): a kill, and a restart after it.
        KILL: willKill ? '1' : '0',
        FAULT: fault,
        RESTART: willRestart ? '1' : '0',
        SUMMARY_PATH: files.summary,
      },
      jsonOut: files.json,
      htmlReport: files.html,
      logFile: files.log,
      ...(t.prometheusWrite && { prometheusWrite: t.prometheusWrite }),
    });
    const proc = k6;
    let exited = false;
    void proc.exited.then((e) => {
      exited = true;
      k6Exit = { code: e.code, signal: e.signal };
    });
    o.say(`${label}: k6 started (pid ${proc.pid}): ${o.vus} VUs for ${o.durationS}s${willKill ? `, kill at ${o.killAtS}s` : ', no kill'}`);

    // The load has started when nginx has passed on its first request.
    const deadline = Date.now() + 30_000;
    while (!(await t.loadStarted())) {
      if (exited) throw new Error(`k6 exited before sending a request (code ${k6Exit.code}):\n${tail(files.log)}`);
      if (Date.now() > deadline) throw new Error(`k6 sent no request within 30 s:\n${tail(files.log)}`);
      await abortableSleep(50, o.signal);
    }
    const loadStart = Date.now();
    const at = () => `t=${((Date.now() - loadStart) / 1000).toFixed(1)}s`;

    if (willKill) {
      await abortableSleep(loadStart + o.killAtS * 1000 - Date.now(), o.signal);
      if (exited) throw new Error(`k6 exited early (code ${k6Exit.code}):\n${tail(files.log)}`);
      const load = await t.loads();
      sessionsHeld = Object.fromEntries(Object.entries(load).map(([n, l]) => [n, l?.sessions ?? null]));
      if (isStoreFault(fault)) {
        // The store, not a node: Redis (single), or whichever Redis is primary right now (Sentinel).
        killedNode = await t.storeVictim(fault === 'redis-primary-kill');
        killWall = Date.now();
        await t.kill(killedNode, 'KILL');
        o.say(`${label}: ${at()}  SIGKILL ${killedNode} (${fault})`);
      } else {
        killedNode = pickVictim(o.mode, o.killNode, load, t.nodes);
        killWall = Date.now();
        await t.kill(killedNode, fault === 'node-term' ? 'TERM' : 'KILL');
        const held = o.mode === 'sticky' ? `held ${sessionsHeld[killedNode] ?? '? (metrics unreadable)'} session(s)` : `served ${load[killedNode]?.requests ?? '?'} requests`;
        o.say(`${label}: ${at()}  ${fault === 'node-term' ? 'SIGTERM' : 'SIGKILL'} ${killedNode} (${held})`);
      }

      if (willRestart) {
        await abortableSleep(killWall + o.restartAfterS! * 1000 - Date.now(), o.signal);
        restartWall = Date.now();
        o.say(`${label}: ${at()}  starting ${killedNode} again`);
        try {
          await t.start(killedNode);
          readyWall = Date.now();
          o.say(`${label}: ${at()}  ${killedNode} ready (${readyWall - restartWall} ms; nginx sends it traffic again once its fail_timeout has passed)`);
        } catch (err) {
          // The run goes on with the node down; the report shows no readiness time.
          o.say(`${label}: ${at()}  ${killedNode} did not come back: ${(err as Error).message.split('\n')[0]}`);
        }
      }
    }

    // k6 stops by itself at --duration (plus its 3 s graceful stop and the report); this is the backstop.
    const hardStop = loadStart + (o.durationS + 40) * 1000;
    while (!exited) {
      if (Date.now() > hardStop) {
        o.say(`${label}: k6 still running ${o.durationS + 40}s after the start; stopping it`);
        await proc.stop('SIGTERM', 10_000);
        break;
      }
      await abortableSleep(100, o.signal);
    }
    await proc.exited;
    o.say(`${label}: ${at()}  k6 done (exit ${k6Exit.code ?? k6Exit.signal}${k6Exit.code === 99 ? ': a threshold failed' : ''})`);
    // One more user, after the load: the credential's size, what it occupies on the server, and
    // whether a copy taken before logout still works after it.
    const extra = o.vus + 1;
    try {
      const mode = o.mode;
      const p = await probeCredential(t.url, { username: `user${extra}`, password: `pass${extra}` }, (c) => serverBytesOf(mode, t.store, c));
      probe = { revokesStolenCredential: p.revokesStolenCredential, stateBytesPerRequest: p.stateBytesPerRequest, serverBytesPerSession: p.serverBytesPerSession };
      o.say(
        `${label}: probe: ${p.stateBytesPerRequest} bytes of state per request, ${p.serverBytesPerSession ?? '?'} bytes per session on the server, a stolen copy ${p.revokesStolenCredential ? 'is refused' : 'still works'} after logout`,
      );
    } catch (err) {
      o.say(`${label}: probe failed: ${(err as Error).message}`);
    }
  } catch (err) {
    if (k6) await k6.stop('SIGTERM', 10_000);
    throw err;
  } finally {
    o.signal.removeEventListener('abort', stopK6);
    fs.rmSync(files.logs, { recursive: true, force: true });
    await target?.down(files.logs).catch((err: Error) => o.say(`${label}: teardown: ${err.message}`));
    fs.rmSync(runDir, { recursive: true, force: true });
    o.say(`${label}: cluster down`);
  }

  if (!fs.existsSync(files.summary)) throw new Error(`k6 wrote no summary (exit ${k6Exit.code ?? k6Exit.signal}):\n${tail(files.log)}`);
  const summary = JSON.parse(fs.readFileSync(files.summary, 'utf8')) as K6Summary;
  const series = await readSeries(files.json);
  return {
    mode: o.mode,
    target: targetKind,
    fault,
    store: o.store ?? 'single',
    redisPersistence: nodeStore(o.mode) === 'redis' ? (o.redisPersistence ?? 'aof') : null,
    nodeSettings: o.nodeSettings ?? {},
    label,
    nodes: o.nodes,
    nodeNames: nodeNames ?? [],
    vus: o.vus,
    durationS: o.durationS,
    killedNode,
    killWall,
    restartWall,
    readyWall,
    sessionsHeld,
    k6Exit,
    summary,
    series,
    probe,
    files,
  };
}

export { Aborted };
