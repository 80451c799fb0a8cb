import { type Fault, FAULTS } from '@session-cluster/loadtest/faults';
import { READY_IN_CONTAINER } from '../lib/node-metrics.js';
import { waitFor } from '../lib/ports.js';
import { docker, hostsSh } from './hosts.js';
import { anyManager, STACK, waitForSentinels, waitForServices, type SwarmState } from './swarm.js';

/**
 * What each swarm fault (lib/faults.js, `swarm`: its action) does, as steps the CLI and the
 * experiment share:
 *   power-off       every process of one host killed at once; `restore` powers it on
 *   cut             one host cut off from everything (other hosts and clients); `restore` heals
 *   cut-from-hosts  the host cut off from the other hosts only: its own app replicas, and clients
 *                   through its nginx, still reach it (the Redis primary's host: a split brain)
 *   update          `docker service update --force` of the app, one task at a time, start-first
 *   drain-host      one host's availability set to drain (its app tasks move), then active again
 */
export type SwarmAction = NonNullable<(typeof FAULTS)[Fault]['swarm']>;

export function actionOf(fault: Fault): SwarmAction {
  const action = FAULTS[fault].swarm;
  if (!action) throw new Error(`${fault} is not a fault of the swarm`);
  return action;
}

/** An update or a drain: it ends by itself once the swarm has converged (the others are undone by `restore`). */
export const convergesByItself = (fault: Fault): boolean => ['update', 'drain-host'].includes(actionOf(fault));

/**
 * The host a fault takes when none is named: the Redis primary's when that is its victim; else the
 * one running app-1 (losing it tests something). A drain moves app replicas, so it takes a host
 * that runs one and not the Redis primary: a drain stops every task of its host, and the primary,
 * pinned to its host with its data, would stop too (a store failover: measured, 429 requests failed
 * in one run, not a drain's 0).
 */
export async function defaultVictim(state: SwarmState, fault: Fault): Promise<string> {
  if (FAULTS[fault].victim === 'primary-host') return primaryHost(state);
  const avoid = actionOf(fault) === 'drain-host' ? await primaryHost(state) : null;
  const withApp: string[] = [];
  for (const h of state.hosts) {
    const slots = await appSlotsOn(h);
    if (h === avoid || !slots.length) continue;
    if (slots.includes('app-1')) return h;
    withApp.push(h);
  }
  return withApp[0] ?? state.hosts.find((h) => h !== avoid) ?? state.hosts[0]!;
}

/** The tasks of one service on one host: container name → task name (sc_app.2.xyz); `all`: stopped ones too. */
export async function containersOn(host: string, service: string, o: { all?: boolean } = {}): Promise<Array<{ container: string; task: string }>> {
  const out = await docker(
    host,
    ['ps', ...(o.all ? ['-a'] : []), '--filter', `label=com.docker.swarm.service.name=${STACK}_${service}`, '--format', '{{.Names}} {{.Label "com.docker.swarm.task.name"}}'],
    {
      timeoutMs: 15_000,
    },
  );
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [container, task] = l.split(' ');
      return { container: container!, task: task! };
    });
}

/** The Redis primary now: its host and container (each Redis is pinned to a host of its own). */
export async function primaryRedis(state: SwarmState): Promise<{ host: string; container: string }> {
  for (const h of state.hosts) {
    for (const service of ['redis', 'redis-replica-1', 'redis-replica-2']) {
      for (const c of await containersOn(h, service).catch(() => [])) {
        const role = await docker(h, ['exec', c.container, 'redis-cli', 'role'], { timeoutMs: 10_000 }).catch(() => '');
        if (role.split('\n')[0]!.trim() === 'master') return { host: h, container: c.container };
      }
    }
  }
  throw new Error('no Redis primary found on any host');
}

export const primaryHost = async (state: SwarmState): Promise<string> => (await primaryRedis(state)).host;

/** The Redis primary's INFO replication. */
async function primaryReplication(state: SwarmState): Promise<string> {
  const { host, container } = await primaryRedis(state);
  return docker(host, ['exec', container, 'redis-cli', 'info', 'replication'], { timeoutMs: 10_000 });
}

/** The app slot (app-2) a task (sc_app.2.xyz) fills. */
export const slotOf = (task: string): string => `app-${task.split('.')[1]}`;

/** Whether every app replica answers /readyz (its store answers), and every host's nginx reaches every replica. */
async function appsReachable(state: SwarmState): Promise<boolean> {
  const exec = (h: string, container: string, cmd: string[]) =>
    docker(h, ['exec', container, ...cmd], { timeoutMs: 10_000 }).then(
      () => true,
      () => false,
    );
  const apps = (await Promise.all(state.hosts.map(async (h) => (await containersOn(h, 'app')).map((c) => ({ h, ...c }))))).flat();
  const slots = apps.map((a) => slotOf(a.task));
  const ready = apps.map((a) => exec(a.h, a.container, READY_IN_CONTAINER));
  const reached = state.hosts.map(async (h) => {
    const nginx = (await containersOn(h, 'nginx'))[0];
    if (!nginx) return false;
    return (await Promise.all(slots.map((slot) => exec(h, nginx.container, ['wget', '-q', '-O', '/dev/null', '-T', '2', `http://${slot}:3000/api/ping`])))).every(Boolean);
  });
  return apps.length === state.replicas && (await Promise.all([...ready, ...reached])).every(Boolean);
}

/**
 * Waits until the swarm is whole again, as `up` leaves it: every host Ready and active, every
 * service with its tasks, an app replica on every host (spreadApps), the Sentinels agreed on one
 * primary, that primary streaming to both replicas (a demoted primary resyncs after a partition
 * heals), every app replica ready and reached
 * by every host's nginx (after a heal, the overlay took 10-25 s and more to carry traffic between
 * some containers again). An experiment on a swarm that is already up starts from there: a fault
 * injected before would also measure the end of the last.
 */
export async function waitSettled(state: SwarmState, timeoutMs = 3 * 60_000, say: (line: string) => void = () => {}): Promise<void> {
  await waitFor(
    'every host Ready and active in the swarm',
    async () => {
      const manager = await anyManager(state).catch(() => null);
      const out = manager ? await docker(manager, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}}'], { timeoutMs: 10_000 }).catch(() => '') : '';
      const lines = out.split('\n').map((l) => l.trim());
      return state.hosts.every((h) => lines.includes(`${h} Ready Active`));
    },
    timeoutMs,
    500,
  );
  await waitForServices(state, timeoutMs);
  await spreadApps(state, timeoutMs, say);
  await waitForSentinels(state, timeoutMs);
  await waitFor(
    'the Redis primary streaming to both replicas',
    async () => [...(await primaryReplication(state).catch(() => '')).matchAll(/^slave\d+:.*state=online/gm)].length === 2,
    timeoutMs,
    500,
  );
  await waitFor("every app replica ready and reached by every host's nginx", () => appsReachable(state).catch(() => false), timeoutMs, 1000);
}

/**
 * An app replica on every host, as `up` leaves them (when there are as many replicas as hosts).
 * The swarm never moves a running task back to a host that returns, and a start-first update can
 * end uneven too: seen after the rolling update, h2 ran app-1 and app-3 and h3, the Redis primary's
 * host by then, none, so the next host-partition of the primary's host lost no app replica and
 * tested nothing. One replica of the most crowded host is stopped; the swarm starts its slot again
 * on the host that runs the fewest (its spread strategy), which is an empty one. Run with no load.
 */
export async function spreadApps(state: SwarmState, timeoutMs: number, say: (line: string) => void = () => {}): Promise<void> {
  if (state.replicas < state.hosts.length) return;
  const layout = (on: Map<string, Array<{ task: string }>>) => [...on].map(([h, cs]) => `${h}: ${cs.map((c) => slotOf(c.task)).join(', ') || 'none'}`).join('; ');
  let moving = '';
  for (let moved = 0; ; moved++) {
    const on = new Map(await Promise.all(state.hosts.map(async (h) => [h, await containersOn(h, 'app')] as const)));
    if (moving) say(`${moving} (${layout(on)})`);
    const empty = state.hosts.filter((h) => on.get(h)!.length === 0);
    if (!empty.length) return;
    if (moved === state.hosts.length) throw new Error(`the app replicas did not spread over the hosts: ${layout(on)}`);
    const crowded = state.hosts.reduce((a, h) => (on.get(h)!.length > on.get(a)!.length ? h : a));
    const stopped = on.get(crowded)![0]!;
    // Stopped, the container leaves `docker ps` at once; its slot counts again once a new task runs.
    await docker(crowded, ['stop', '--time', '10', stopped.container], { timeoutMs: 30_000 });
    await waitFor(
      `${slotOf(stopped.task)} (stopped on ${crowded}) running again`,
      async () => (await Promise.all(state.hosts.map((h) => containersOn(h, 'app').catch(() => [])))).flat().length === state.replicas,
      timeoutMs,
      500,
    );
    await waitForServices(state, timeoutMs);
    moving = `${empty.join(', ')} ran no app replica: stopped ${slotOf(stopped.task)} on ${crowded}, the swarm started it again`;
  }
}

/** The app slots running on a host (app-2 ...), from their task names. */
export async function appSlotsOn(host: string): Promise<string[]> {
  return (await containersOn(host, 'app').catch(() => [])).map((c) => slotOf(c.task));
}

export async function inject(state: SwarmState, fault: Fault, host: string): Promise<void> {
  switch (actionOf(fault)) {
    case 'power-off':
      return void (await hostsSh(['kill', host]));
    case 'cut':
      return void (await hostsSh(['cut', host, 'all']));
    case 'cut-from-hosts':
      return void (await hostsSh(['cut', host, 'hosts']));
    case 'update': {
      const manager = await anyManager(state);
      // --detach=false: returns when the update has converged (every task replaced and running).
      return void (await docker(
        manager,
        ['service', 'update', '--detach=false', '--quiet', '--force', '--update-parallelism', '1', '--update-order', 'start-first', `${STACK}_app`],
        { timeoutMs: 10 * 60_000 },
      ));
    }
    case 'drain-host': {
      const manager = await anyManager(state, [host]);
      await docker(manager, ['node', 'update', '--availability=drain', host]);
      // Drained once no app task is left on it and the others run the replicas again.
      await waitFor(`${host} drained`, async () => (await appSlotsOn(host)).length === 0 && (await replicasBack(state, [])), 5 * 60_000, 500);
      return;
    }
  }
}

/** Undoes the fault: power on, heal, or make the drained host active again. Resolves when the host is back in the swarm. */
export async function restore(state: SwarmState, fault: Fault, host: string): Promise<void> {
  switch (actionOf(fault)) {
    case 'power-off':
      await hostsSh(['start', host]);
      break;
    case 'cut':
    case 'cut-from-hosts':
      await hostsSh(['heal', host]);
      break;
    case 'drain-host': {
      const manager = await anyManager(state);
      await docker(manager, ['node', 'update', '--availability', 'active', host]);
      break;
    }
    case 'update':
      return;
  }
  await waitFor(`${host} Ready in the swarm again`, async () => (await nodeStatus(state, host)) === 'Ready', 5 * 60_000, 500);
}

export async function nodeStatus(state: SwarmState, host: string, except: string[] = []): Promise<string> {
  const manager = await anyManager(state, except).catch(() => null);
  if (!manager) return 'unknown';
  const out = await docker(manager, ['node', 'ls', '--filter', `name=${host}`, '--format', '{{.Hostname}} {{.Status}}'], { timeoutMs: 10_000 }).catch(() => '');
  return (
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .find(([h]) => h === host)?.[1] ?? 'unknown'
  );
}

/**
 * True when the app has all its replicas running on hosts other than `lost` (asked of a manager
 * other than `lost`): the swarm has noticed the loss and replaced what was there.
 */
export async function replicasBack(state: SwarmState, lost: string[]): Promise<boolean> {
  const manager = await anyManager(state, lost).catch(() => null);
  if (!manager) return false;
  const out = await docker(manager, ['service', 'ps', `${STACK}_app`, '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}'], { timeoutMs: 15_000 }).catch(
    () => '',
  );
  const running = out
    .trim()
    .split('\n')
    .filter((l) => l && !lost.includes(l.split(' ')[0]!) && / Running /.test(`${l} `));
  return running.length >= state.replicas;
}
