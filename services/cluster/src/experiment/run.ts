import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodeStore } from '@session-cluster/app/modes';
import { REPO_ROOT, type Mode, type Store } from '../cluster.js';
import type { RedisPersistence } from '../parts.js';
import { DEFAULT_FAULT, FAULTS, type Fault } from '@session-cluster/loadtest/faults';
import { abortableSleep, Aborted } from '../lib/abort.js';
import { tail, type Proc } from '../lib/process.js';
import { readSeries, type Series } from './analyze.js';
import { startK6 } from './k6.js';
import { probeCredential, serverBytesOf } from './probe.js';
import { convergesByItself } from '../swarm/faults.js';
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
  /** Swarm: the host a host fault takes (default: the Redis primary's, or the one running app-1). */
  host?: string;
  /** Swarm: extra redis-server arguments (--min-replicas-to-write 1 ...). */
  redisArgs?: string[];
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
  /** Swarm: the extra redis-server arguments it ran with ([] if none). */
  redisArgs: string[];
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
  /** Swarm faults: the hosts lost to the clients, and the app nodes they ran. */
  hostsLost: string[];
  lostNodes: string[];
  /** Swarm faults: when the swarm ran every app replica again without the lost host (an update: when it converged). */
  recoveredWall: number | null;
  k6Exit: { code: number | null; signal: string | null };
  summary: K6Summary;
  series: Series;
  /** The credential, measured after the load by one more user (probe.ts); null if the probe could not run. */
  probe: { revokesStolenCredential: boolean; stateBytesPerRequest: number; serverBytesPerSession: number | null } | null;
  files: { html: string; json: string; summary: string; log: string; logs: string };
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

/** One failover run as it goes: its settings, and what has happened so far (the outcome's raw material). */
interface Run {
  o: FailoverOptions;
  label: string;
  fault: Fault;
  targetKind: TargetKind;
  runDir: string;
  files: RunOutcome['files'];
  willKill: boolean;
  willRestart: boolean;
  target: Target | null;
  k6: Proc | null;
  k6Exited: boolean;
  k6Exit: RunOutcome['k6Exit'];
  /** Epoch ms of nginx's first request: the run's t=0. */
  loadStart: number;
  killedNode: string | null;
  killWall: number | null;
  restartWall: number | null;
  readyWall: number | null;
  sessionsHeld: Record<string, number | null>;
  hostsLost: string[];
  lostNodes: string[];
  recoveredWall: number | null;
  /** A swarm fault that runs until it converges (an update, a drain), or the watch for the replicas back. */
  faultRunning: Promise<void> | null;
  probe: RunOutcome['probe'];
}

/**
 * One failover run: a fresh cluster (local, or the compose stack), k6 survival.js against it, the
 * fault (lib/faults.js) at killAt, the victim started again restartAfter later, the cluster torn
 * down whatever happens.
 */
export async function runFailover(o: FailoverOptions): Promise<RunOutcome> {
  const run = newRun(o);
  const stopK6 = () => void run.k6?.stop('SIGTERM', 10_000);
  o.signal.addEventListener('abort', stopK6, { once: true });
  try {
    await openCluster(run);
    startLoad(run);
    await waitForFirstRequest(run);
    if (run.willKill) {
      await injectFault(run);
      if (run.willRestart) await restartVictim(run);
    }
    await waitForK6(run);
    await probeAfterLoad(run);
  } catch (err) {
    if (run.k6) await run.k6.stop('SIGTERM', 10_000);
    throw err;
  } finally {
    o.signal.removeEventListener('abort', stopK6);
    await tearDown(run);
  }
  return outcomeOf(run);
}

function newRun(o: FailoverOptions): Run {
  const label = o.label ?? o.mode;
  const files = {
    html: path.join(o.outDir, `k6-${label}.html`),
    json: path.join(o.outDir, `k6-${label}.json.gz`),
    summary: path.join(o.outDir, `k6-${label}-summary.json`),
    log: path.join(o.outDir, `k6-${label}.log`),
    logs: path.join(o.outDir, `logs-${label}`),
  };
  for (const f of [files.html, files.json, files.summary, files.log]) fs.rmSync(f, { force: true });
  const willKill = o.killAtS < o.durationS;
  return {
    o,
    label,
    fault: o.fault ?? DEFAULT_FAULT,
    targetKind: o.target ?? 'local',
    runDir: fs.mkdtempSync(path.join(os.tmpdir(), `sc-experiment-${o.mode}-`)),
    files,
    willKill,
    willRestart: willKill && o.restartAfterS !== null && o.killAtS + o.restartAfterS < o.durationS,
    target: null,
    k6: null,
    k6Exited: false,
    k6Exit: { code: null, signal: null },
    loadStart: 0,
    killedNode: null,
    killWall: null,
    restartWall: null,
    readyWall: null,
    sessionsHeld: {},
    hostsLost: [],
    lostNodes: [],
    recoveredWall: null,
    faultRunning: null,
    probe: null,
  };
}

const sayAt = (run: Run, line: string) => run.o.say(`${run.label}: t=${((Date.now() - run.loadStart) / 1000).toFixed(1)}s  ${line}`);

function targetOf(run: Run): Target {
  if (!run.target) throw new Error('the cluster is not up');
  return run.target;
}

function k6Of(run: Run): Proc {
  if (!run.k6) throw new Error('k6 is not running');
  return run.k6;
}

async function openCluster(run: Run): Promise<void> {
  const { o } = run;
  const t0 = Date.now();
  run.target = await openTarget(run.targetKind, {
    mode: o.mode,
    nodes: o.nodes,
    demoUsers: o.vus + 1, // user1..userVUS for k6, one more for the credential probe
    monitoring: o.monitoring,
    nodeSettings: o.nodeSettings ?? {},
    runDir: run.runDir,
    ...(o.redisArgs && { redisArgs: o.redisArgs }),
    ...(o.store && { store: o.store }),
    ...(o.redisPersistence && { redisPersistence: o.redisPersistence }),
  });
  o.say(`${run.label}: cluster up at ${run.target.url} (${o.nodes} nodes, ${run.targetKind}, ${Date.now() - t0} ms); run folder ${run.runDir}`);
  if (o.signal.aborted) throw new Aborted();
}

function startLoad(run: Run): void {
  const { o, files } = run;
  const t = targetOf(run);
  const k6 = startK6({
    bin: o.k6,
    script: SURVIVAL_SCRIPT,
    vars: {
      BASE_URL: t.url,
      MODE: o.mode,
      PROFILE: 'experiment',
      DURATION: `${o.durationS}s`,
      VUS: String(o.vus),
      // The claims k6 holds the run to (loadtest/lib/claims.js): a kill, and a restart after it.
      KILL: run.willKill ? '1' : '0',
      FAULT: run.fault,
      RESTART: run.willRestart ? '1' : '0',
      SUMMARY_PATH: files.summary,
    },
    jsonOut: files.json,
    htmlReport: files.html,
    logFile: files.log,
    ...(t.prometheusWrite && { prometheusWrite: t.prometheusWrite }),
  });
  run.k6 = k6;
  void k6.exited.then((e) => {
    run.k6Exited = true;
    run.k6Exit = { code: e.code, signal: e.signal };
  });
  o.say(`${run.label}: k6 started (pid ${k6.pid}): ${o.vus} VUs for ${o.durationS}s${run.willKill ? `, kill at ${o.killAtS}s` : ', no kill'}`);
}

/** The load has started when nginx has passed on its first request: the moment the fault is timed from. */
async function waitForFirstRequest(run: Run): Promise<void> {
  const t = targetOf(run);
  const deadline = Date.now() + 30_000;
  while (!(await t.loadStarted())) {
    if (run.k6Exited) throw new Error(`k6 exited before sending a request (code ${run.k6Exit.code}):\n${tail(run.files.log)}`);
    if (Date.now() > deadline) throw new Error(`k6 sent no request within 30 s:\n${tail(run.files.log)}`);
    await abortableSleep(50, run.o.signal);
  }
  run.loadStart = Date.now();
}

/** At killAt: what each node holds, then the fault's action (lib/faults.js) on its victim. */
async function injectFault(run: Run): Promise<void> {
  const { o } = run;
  const t = targetOf(run);
  const action = FAULTS[run.fault];
  await abortableSleep(run.loadStart + o.killAtS * 1000 - Date.now(), o.signal);
  if (run.k6Exited) throw new Error(`k6 exited early (code ${run.k6Exit.code}):\n${tail(run.files.log)}`);
  const load = await t.loads();
  run.sessionsHeld = Object.fromEntries(Object.entries(load).map(([n, l]) => [n, l?.sessions ?? null]));
  if (action.swarm) return injectSwarmFault(run);
  // A store fault's victim is the store: Redis (single), or whichever Redis is primary right now.
  const victim = action.victim === 'node' ? pickVictim(o.mode, o.killNode, load, t.nodes) : await t.storeVictim(action.victim === 'redis-primary');
  run.killedNode = victim;
  run.killWall = Date.now();
  await t.kill(victim, action.signal);
  const held =
    action.victim !== 'node'
      ? run.fault
      : o.mode === 'sticky'
        ? `held ${run.sessionsHeld[victim] ?? '? (metrics unreadable)'} session(s)`
        : `served ${load[victim]?.requests ?? '?'} requests`;
  sayAt(run, `SIG${action.signal} ${victim} (${held})`);
}

/**
 * A swarm fault (lib/faults.js `swarm`): a host is killed or cut off, or the app service updated,
 * or a host drained. What converges by itself (an update, a drain) runs on in the background; for a
 * lost host, a watch notes when the swarm runs every app replica again without it.
 */
async function injectSwarmFault(run: Run): Promise<void> {
  const { o } = run;
  const t = targetOf(run);
  if (!t.swarm) throw new Error(`--fault ${run.fault} needs --target swarm`);
  const action = FAULTS[run.fault];
  const host = action.victim === 'service' ? null : await t.swarm.victim(run.fault, o.host);
  if (host && action.losesHost) {
    run.hostsLost = [host];
    run.lostNodes = await t.swarm.appSlotsOn(host);
  }
  run.killedNode = host ?? 'app';
  run.killWall = Date.now();
  const started = Date.now();
  const injected = t.swarm.inject(run.fault, host ?? '');
  if (!convergesByItself(run.fault)) {
    await injected;
    const lost = run.hostsLost;
    run.faultRunning = (async () => {
      while (!(await t.swarm!.replicasBack(lost))) {
        if (run.k6Exited) return; // not within the run: reported as null
        await abortableSleep(500, o.signal);
      }
      run.recoveredWall = Date.now();
      sayAt(run, `the swarm runs every app replica again (${((run.recoveredWall - started) / 1000).toFixed(1)} s after the fault)`);
    })();
  } else {
    run.faultRunning = injected.then(() => {
      run.recoveredWall = Date.now();
      sayAt(run, `${run.fault} converged (${((run.recoveredWall - started) / 1000).toFixed(1)} s)`);
    });
  }
  sayAt(run, `${run.fault}${host ? ` of ${host}` : ''}${run.lostNodes.length ? ` (it ran ${run.lostNodes.join(', ')})` : ''}`);
}

async function restartVictim(run: Run): Promise<void> {
  const { o } = run;
  if (FAULTS[run.fault].swarm) return restoreSwarm(run);
  const victim = run.killedNode!;
  await abortableSleep(run.killWall! + o.restartAfterS! * 1000 - Date.now(), o.signal);
  run.restartWall = Date.now();
  sayAt(run, `starting ${victim} again`);
  try {
    await targetOf(run).start(victim);
    run.readyWall = Date.now();
    sayAt(run, `${victim} ready (${run.readyWall - run.restartWall} ms; nginx sends it traffic again once its fail_timeout has passed)`);
  } catch (err) {
    // The run goes on with the victim down; the report shows no readiness time.
    sayAt(run, `${victim} did not come back: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** At restartAfter: the killed host powered on, the cut one healed, the drained one active again. */
async function restoreSwarm(run: Run): Promise<void> {
  const { o } = run;
  const t = targetOf(run);
  await abortableSleep(run.killWall! + o.restartAfterS! * 1000 - Date.now(), o.signal);
  // An update or a drain is restored once it has converged.
  if (convergesByItself(run.fault)) await run.faultRunning;
  run.restartWall = Date.now();
  sayAt(run, `restoring ${run.killedNode}`);
  try {
    await t.swarm!.restore();
    run.readyWall = Date.now();
    sayAt(run, `${run.killedNode} back in the swarm (${run.readyWall - run.restartWall} ms)`);
  } catch (err) {
    sayAt(run, `${run.killedNode} did not come back: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** k6 stops by itself at --duration (plus its 3 s graceful stop and the report); this is the backstop. */
async function waitForK6(run: Run): Promise<void> {
  const { o } = run;
  const k6 = k6Of(run);
  const hardStop = run.loadStart + (o.durationS + 40) * 1000;
  while (!run.k6Exited) {
    if (Date.now() > hardStop) {
      o.say(`${run.label}: k6 still running ${o.durationS + 40}s after the start; stopping it`);
      await k6.stop('SIGTERM', 10_000);
      break;
    }
    await abortableSleep(100, o.signal);
  }
  await k6.exited;
  await run.faultRunning?.catch((err: Error) => sayAt(run, `the fault failed: ${err.message.split('\n')[0]}`));
  sayAt(run, `k6 done (exit ${run.k6Exit.code ?? run.k6Exit.signal}${run.k6Exit.code === 99 ? ': a threshold failed' : ''})`);
}

/**
 * One more user, after the load: the credential's size, what it occupies on the server, and
 * whether a copy taken before logout still works after it.
 */
async function probeAfterLoad(run: Run): Promise<void> {
  const { o, label } = run;
  const t = targetOf(run);
  const extra = o.vus + 1;
  try {
    const p = await probeCredential(t.url, { username: `user${extra}`, password: `pass${extra}` }, (c) => serverBytesOf(o.mode, t.store, c));
    run.probe = { revokesStolenCredential: p.revokesStolenCredential, stateBytesPerRequest: p.stateBytesPerRequest, serverBytesPerSession: p.serverBytesPerSession };
    o.say(
      `${label}: probe: ${p.stateBytesPerRequest} bytes of state per request, ${p.serverBytesPerSession ?? '?'} bytes per session on the server, a stolen copy ${p.revokesStolenCredential ? 'is refused' : 'still works'} after logout`,
    );
  } catch (err) {
    o.say(`${label}: probe failed: ${(err as Error).message}`);
  }
}

/** The cluster down, its logs kept in the report folder, the run folder removed. */
async function tearDown(run: Run): Promise<void> {
  fs.rmSync(run.files.logs, { recursive: true, force: true });
  await run.target?.down(run.files.logs).catch((err: Error) => run.o.say(`${run.label}: teardown: ${err.message}`));
  fs.rmSync(run.runDir, { recursive: true, force: true });
  run.o.say(`${run.label}: cluster down`);
}

async function outcomeOf(run: Run): Promise<RunOutcome> {
  const { o, files, k6Exit } = run;
  if (!fs.existsSync(files.summary)) throw new Error(`k6 wrote no summary (exit ${k6Exit.code ?? k6Exit.signal}):\n${tail(files.log)}`);
  const summary = JSON.parse(fs.readFileSync(files.summary, 'utf8')) as K6Summary;
  const series = await readSeries(files.json);
  return {
    mode: o.mode,
    target: run.targetKind,
    fault: run.fault,
    store: o.store ?? 'single',
    redisPersistence: nodeStore(o.mode) === 'redis' ? (o.redisPersistence ?? 'aof') : null,
    nodeSettings: o.nodeSettings ?? {},
    redisArgs: o.redisArgs ?? [],
    label: run.label,
    nodes: o.nodes,
    nodeNames: run.target?.nodes ?? [],
    vus: o.vus,
    durationS: o.durationS,
    killedNode: run.killedNode,
    killWall: run.killWall,
    restartWall: run.restartWall,
    readyWall: run.readyWall,
    sessionsHeld: run.sessionsHeld,
    hostsLost: run.hostsLost,
    lostNodes: run.lostNodes,
    recoveredWall: run.recoveredWall,
    k6Exit,
    summary,
    series,
    probe: run.probe,
    files,
  };
}

export { Aborted };
