import fs from 'node:fs';
import path from 'node:path';
import type { Fault } from '@session-cluster/loadtest/faults';
import type { Target, TargetOptions } from '../experiment/targets.js';
import { METRICS_IN_CONTAINER, parseMetrics } from '../lib/node-metrics.js';
import { docker, dockerStreams } from './hosts.js';
import { appSlotsOn, containersOn, defaultVictim, inject, primaryHost, primaryRedis, replicasBack, restore, slotOf, waitSettled } from './faults.js';
import { down, readState, up, type SwarmState } from './swarm.js';

/**
 * The experiment's swarm target (--target swarm): `npm run swarm -- up` in the mode asked, the load
 * through the front, and the swarm's faults (lib/faults.js `swarm`) instead of a kill by name. The
 * app nodes are the slots (app-1...), which the route cookie and X-Served-By name wherever the
 * swarm runs them. A swarm already up (npm run swarm -- up) is used as it is, once it has settled,
 * and left up: several faults in a row on one swarm, without a minute of `up` before each. Its
 * settings must be the ones the experiment asks for (attachRefuses).
 */
export function swarmRefuses(o: Pick<TargetOptions, 'mode' | 'store' | 'redisPersistence'>): string | null {
  if (o.mode !== 'shared' && o.mode !== 'sticky') return `--target swarm runs shared and sticky modes, not ${o.mode}`;
  if (o.store && o.store !== 'sentinel') return '--target swarm runs the Sentinel store (a primary and two replicas, each on its own host): leave --store out, or say sentinel';
  if (o.redisPersistence && o.redisPersistence !== 'aof') return '--target swarm runs Redis with AOF (everysec) only';
  return null;
}

/** Settings the swarm sets itself, or the experiment's defaults: not compared with the experiment's --env. */
const OWN_SETTINGS = ['LOG_LEVEL', 'DEMO_USERS'];

/** Why a swarm that is already up cannot run the experiment asked for (null: it can). */
export function attachRefuses(
  s: Pick<SwarmState, 'mode' | 'replicas' | 'appEnv' | 'redisArgs'>,
  o: Pick<TargetOptions, 'mode' | 'nodes' | 'demoUsers' | 'nodeSettings' | 'redisArgs'>,
): string | null {
  const up = 'the swarm that is up (npm run swarm -- up)';
  if (s.mode !== o.mode) return `--mode ${o.mode}: ${up} runs ${s.mode} mode`;
  if (s.replicas !== o.nodes) return `--nodes ${o.nodes}: ${up} runs ${s.replicas} app replicas`;
  if (JSON.stringify(s.redisArgs) !== JSON.stringify(o.redisArgs ?? []))
    return `--min-replicas-to-write: ${up} runs Redis with [${s.redisArgs.join(' ')}], the experiment asks for [${(o.redisArgs ?? []).join(' ')}]`;
  const theirs = Object.entries(s.appEnv).filter(([k]) => !OWN_SETTINGS.includes(k));
  const ours = Object.entries(o.nodeSettings ?? {});
  const show = (e: [string, string][]) =>
    e
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(' ') || 'none';
  if (show(theirs) !== show(ours)) return `--env: ${up} runs the app with ${show(theirs)}, the experiment asks for ${show(ours)}`;
  const users = Number(s.appEnv.DEMO_USERS ?? 1000);
  if (users < o.demoUsers) return `--vus: ${up} has ${users} demo users, the experiment needs ${o.demoUsers}`;
  return null;
}

/**
 * One service's log as `docker service logs --timestamps` prints it (time, task@host | line), in
 * time order, read from every host's engine: each task container's, stopped ones too (a replaced
 * or killed task's), stdout and stderr. `docker service logs` through a manager took 3 minutes for
 * one run's logs. `since`: this run's lines only (on a swarm that was up before).
 */
async function serviceLogs(state: SwarmState, service: string, since: string | null): Promise<string> {
  const lines: Array<{ at: number; text: string }> = [];
  await Promise.all(
    state.hosts.map(async (h) => {
      for (const { container, task } of await containersOn(h, service, { all: true })) {
        const { stdout, stderr } = await dockerStreams(h, ['logs', '--timestamps', ...(since ? ['--since', since] : []), container]);
        for (const line of `${stdout}\n${stderr}`.split('\n').filter(Boolean)) {
          const space = line.indexOf(' ');
          lines.push({ at: Date.parse(line.slice(0, space)), text: `${line.slice(0, space)} ${task}@${h}    | ${line.slice(space + 1)}` });
        }
      }
    }),
  );
  return lines
    .sort((a, b) => a.at - b.at)
    .map((l) => `${l.text}\n`)
    .join('');
}

export async function swarmTarget(o: TargetOptions): Promise<Target> {
  const refused = swarmRefuses(o);
  if (refused) throw new Error(refused);
  const running = readState();
  if (running) {
    const mismatch = attachRefuses(running, o);
    if (mismatch) throw new Error(`${mismatch} (npm run swarm -- down, and the experiment starts its own)`);
    await waitSettled(running, undefined, (line) => process.stderr.write(`[swarm] ${line}\n`));
  }
  const since = new Date().toISOString();
  const state: SwarmState =
    running ??
    (await up({
      mode: o.mode as 'shared' | 'sticky',
      replicas: o.nodes,
      appEnv: { LOG_LEVEL: 'info', DEMO_USERS: String(o.demoUsers), ...o.nodeSettings },
      redisArgs: o.redisArgs ?? [],
    }));
  const nodes = Array.from({ length: o.nodes }, (_, i) => `app-${i + 1}`);
  // Where each slot runs now: host and container.
  const where = async () => {
    const out: Record<string, { host: string; container: string }> = {};
    for (const h of state.hosts) for (const c of await containersOn(h, 'app').catch(() => [])) out[slotOf(c.task)] = { host: h, container: c.container };
    return out;
  };
  const loads = async () => {
    const at = await where();
    const out: Record<string, { sessions: number; requests: number } | null> = {};
    for (const n of nodes) {
      const w = at[n];
      const m = w ? await docker(w.host, ['exec', w.container, ...METRICS_IN_CONTAINER], { timeoutMs: 10_000 }).then(parseMetrics, () => null) : null;
      out[n] = m && { sessions: m.get('session_cluster_sessions_active') ?? 0, requests: m.get('session_cluster_http_requests_total') ?? 0 };
    }
    return out;
  };
  const requests = async () => Object.values(await loads()).reduce((sum, l) => sum + (l?.requests ?? 0), 0);
  const before = await requests();
  let faulted: { fault: Fault; host: string } | null = null;
  return {
    url: state.url,
    nodes,
    ...(state.prometheus && { prometheusWrite: `${state.prometheus}/api/v1/write` }),
    loads,
    loadStarted: async () => (await requests()) > before,
    storeVictim: () => Promise.reject(new Error('the swarm target has no store fault of its own: its faults are the hosts')),
    kill: () => Promise.reject(new Error('the swarm target kills hosts, not nodes (a swarm fault)')),
    start: () => Promise.reject(new Error('the swarm target restores hosts, not nodes (a swarm fault)')),
    swarm: {
      hosts: state.hosts,
      async victim(fault, choice) {
        if (choice === 'primary') return primaryHost(state);
        if (choice && choice !== 'busiest') {
          if (!state.hosts.includes(choice)) throw new Error(`--host: no host named ${choice} (hosts: ${state.hosts.join(', ')})`);
          return choice;
        }
        return defaultVictim(state, fault);
      },
      appSlotsOn,
      async inject(fault, host) {
        faulted = { fault, host };
        await inject(state, fault, host);
      },
      replicasBack: (lost) => replicasBack(state, lost),
      async restore() {
        if (faulted) await restore(state, faulted.fault, faulted.host);
      },
    },
    store: {
      url: state.url,
      async redisMemoryUsage(key) {
        if (o.mode !== 'shared') return null;
        const { host, container } = await primaryRedis(state);
        return Number(await docker(host, ['exec', container, 'redis-cli', '--raw', 'MEMORY', 'USAGE', key, 'SAMPLES', '0'])) || null;
      },
      sessionRowBytes: async () => null,
    },
    async down(logsDir) {
      fs.mkdirSync(logsDir, { recursive: true });
      try {
        for (const service of ['app', 'nginx', 'redis', 'redis-replica-1', 'redis-replica-2', 'sentinel'])
          fs.writeFileSync(path.join(logsDir, `${service}.log`), await serviceLogs(state, service, running ? since : null).catch((err: Error) => `${err.message}\n`));
      } finally {
        if (!running) await down();
      }
    },
  };
}
