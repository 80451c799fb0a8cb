import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../cluster.js';
import { cmdline, isAlive, terminate } from '../lib/pids.js';
import { freePort, waitFor } from '../lib/ports.js';
import { addressOf, docker, hostNames, hostsSh, sh, SWARM_RUN_DIR } from './hosts.js';
import { SECRET_NAME, stackDocument, type SwarmMode } from './stack.js';

/**
 * A three-host Docker Swarm on this machine, and the session cluster deployed on it as a stack:
 *
 *   up    hosts (infra/swarm/hosts.sh), a swarm of three managers (any one host may die and the
 *         other two keep quorum), the images on every host (built on the private engine,
 *         `docker save` | `docker load`: no registry), the session secret as a swarm secret, the
 *         stack (stack.ts), and the front: the clients' one address, outside the hosts (front.ts)
 *   down  the stack, the swarm, the hosts and the front: nothing is left (hosts.sh down)
 *
 * State in .run/swarm/state.json, so that `ps`, `fault` and `down` find what `up` made.
 */
export const STACK = 'sc';
export const STATE_FILE = path.join(SWARM_RUN_DIR, 'state.json');
export const APP_IMAGE = 'session-cluster-app:local';
const ENGINE_SH = path.join(REPO_ROOT, 'infra/docker/engine.sh');
const STANDINS_SH = path.join(REPO_ROOT, 'infra/docker/standins.sh');
const FRONT_JS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'front.js');

export interface SwarmOptions {
  mode: SwarmMode;
  replicas: number;
  /** Extra app environment (REDIS_WAIT_REPLICAS=1 ...). */
  appEnv?: Record<string, string>;
  /** Extra redis-server arguments (--min-replicas-to-write 1 ...). */
  redisArgs?: string[];
  /** The front's port on 127.0.0.1 (default: a free one). */
  port?: number;
  onProgress?: (line: string) => void;
}

export interface SwarmState {
  mode: SwarmMode;
  replicas: number;
  hosts: string[];
  appEnv: Record<string, string>;
  redisArgs: string[];
  url: string;
  frontPid: number;
  prometheus: string;
}

export function readState(): SwarmState | null {
  try {
    return JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) as SwarmState;
  } catch {
    return null;
  }
}

export function requireState(): SwarmState {
  const s = readState();
  if (!s) throw new Error('no swarm is up (npm run swarm -- up)');
  return s;
}

/** A host that answers, for swarm-wide commands (any manager will do). */
export async function anyManager(state: Pick<SwarmState, 'hosts'>, except: string[] = []): Promise<string> {
  for (const h of state.hosts) {
    if (except.includes(h)) continue;
    const ok = await docker(h, ['node', 'ls', '--format', '{{.Hostname}}'], { timeoutMs: 10_000 }).then(
      () => true,
      () => false,
    );
    if (ok) return h;
  }
  throw new Error(`no manager answers among ${state.hosts.join(', ')}`);
}

export async function up(o: SwarmOptions): Promise<SwarmState> {
  const say = o.onProgress ?? (() => {});
  if (readState()) throw new Error('a swarm is already up (npm run swarm -- down first)');
  const hosts = hostNames(3);
  fs.mkdirSync(SWARM_RUN_DIR, { recursive: true });
  try {
    say('hosts: 3 network namespaces, a dockerd each');
    await hostsSh(['up', String(hosts.length)]);
    await formSwarm(hosts, say);
    await loadImages(hosts, say);
    const manager = hosts[0]!;
    const secret = randomBytes(32).toString('hex'); // as the compose path's secrets service makes one
    await docker(manager, ['secret', 'create', SECRET_NAME, '-'], { input: `${secret}\n` });
    const state: SwarmState = {
      mode: o.mode,
      replicas: o.replicas,
      hosts,
      appEnv: o.appEnv ?? {},
      redisArgs: o.redisArgs ?? [],
      url: '',
      frontPid: 0,
      prometheus: '',
    };
    await deploy(state, say);
    const port = o.port ?? (await freePort());
    state.frontPid = startFrontProcess(port, hosts);
    state.url = `http://127.0.0.1:${port}`;
    fs.writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
    await waitFor(
      'the front to answer',
      () =>
        fetch(`${state.url}/lb/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      30_000,
      200,
    );
    state.prometheus = await findPrometheus(state);
    fs.writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
    return state;
  } catch (err) {
    say(`up failed; taking everything down: ${(err as Error).message.split('\n')[0]}`);
    await down(say).catch(() => {});
    throw err;
  }
}

async function formSwarm(hosts: string[], say: (l: string) => void): Promise<void> {
  const [first, ...others] = hosts;
  await docker(first!, ['swarm', 'init', '--advertise-addr', addressOf(first!)]);
  const token = (await docker(first!, ['swarm', 'join-token', '-q', 'manager'])).trim();
  for (const h of others) await docker(h, ['swarm', 'join', '--token', token, '--advertise-addr', addressOf(h), `${addressOf(first!)}:2377`]);
  say(`swarm: ${hosts.length} managers (${hosts.join(', ')})`);
}

/** Every image the stack names, in the engine DOCKER_HOST (or the private one) first, then on every host. */
export function stackImages(doc: Record<string, unknown>): string[] {
  const services = doc.services as Record<string, { image?: string }>;
  return [...new Set(Object.values(services).map((s) => s.image!))].sort();
}

async function loadImages(hosts: string[], say: (l: string) => void): Promise<void> {
  const images = stackImages(stackDocument({ repoRoot: REPO_ROOT, mode: 'shared', replicas: 1, hosts, without: ['grafana'] }));
  const own = !(await sh('bash', [ENGINE_SH, 'status']).then(
    () => true,
    () => false,
  ));
  const engine = /DOCKER_HOST=(\S+)/.exec(await sh('bash', [ENGINE_SH, 'start'], { timeoutMs: 120_000 }))![1]!;
  // The stand-ins copy in the binaries built at the pinned releases (scripts/setup.sh test: .run/bin).
  const env: NodeJS.ProcessEnv = { DOCKER_HOST: engine, PATH: `${path.join(REPO_ROOT, '.run/bin')}${path.delimiter}${process.env.PATH}` };
  // The compose plugin scripts/setup.sh built, when it had to (scripts/test.sh does the same).
  if (fs.existsSync(path.join(REPO_ROOT, '.run/docker-config/use'))) env.DOCKER_CONFIG = path.join(REPO_ROOT, '.run/docker-config');
  try {
    const others = images.filter((i) => i !== APP_IMAGE);
    const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'services/app/Dockerfile'), 'utf8');
    const nodeImage = /^ARG NODE_IMAGE=(\S+)/m.exec(dockerfile)?.[1];
    say(`images: stand-ins for ${others.join(', ')}`);
    await sh('bash', [STANDINS_SH, ...others, ...(nodeImage ? [nodeImage] : [])], { env, timeoutMs: 20 * 60_000 });
    say(`images: building ${APP_IMAGE}`);
    // Compose builds it (BuildKit is built into compose; the plain CLI here has no buildx), as `up --build` does.
    await sh('docker', ['compose', '-f', 'docker-compose.yml', 'build', 'app'], { env, timeoutMs: 15 * 60_000 });
    const tar = path.join(SWARM_RUN_DIR, 'images.tar');
    await sh('docker', ['save', '-o', tar, ...images], { env, timeoutMs: 10 * 60_000 });
    say(`images: loading ${images.length} into ${hosts.join(', ')}`);
    await Promise.all(hosts.map((h) => docker(h, ['load', '-q', '-i', tar], { timeoutMs: 10 * 60_000 })));
    fs.rmSync(tar, { force: true });
  } finally {
    if (own) await sh('bash', [ENGINE_SH, 'stop']).catch(() => {});
  }
}

/** (Re)deploys the stack with the state's settings and waits until every service has its tasks. */
export async function deploy(state: SwarmState, say: (l: string) => void = () => {}): Promise<void> {
  const doc = stackDocument({
    repoRoot: REPO_ROOT,
    mode: state.mode,
    replicas: state.replicas,
    hosts: state.hosts,
    appEnv: state.appEnv,
    redisArgs: state.redisArgs,
    without: ['grafana'],
  });
  const file = path.join(SWARM_RUN_DIR, 'stack.json');
  fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  const manager = await anyManager(state);
  // --resolve-image never: there is no registry to ask for digests (each would time out).
  await docker(manager, ['stack', 'deploy', '--resolve-image', 'never', '-c', file, STACK], { timeoutMs: 5 * 60_000 });
  say(`stack ${STACK} deployed (${state.mode}, ${state.replicas} app replicas); waiting for every task`);
  await waitForServices(state, 5 * 60_000);
  await waitForSentinels(state, 2 * 60_000);
  say('every service has its tasks running; the Sentinels see the primary and both replicas');
}

/**
 * The store is settled when every Sentinel sees the primary with both replicas and the other two
 * Sentinels, and none is in TILT mode (in which it fails nothing over): before that, a fault would
 * test the start-up, not the failover.
 *
 * A Sentinel never forgets a Sentinel or a replica it has seen. When a host's tasks come back as
 * new containers (after a partition the swarm saw as a lost host), the others keep the old ones
 * too: 4 Sentinels known, so a failover needs 3 votes, and one more lost host leaves 2, no
 * failover. Such a Sentinel is reset (SENTINEL RESET), one at a time, as Redis's documentation
 * prescribes after removing one; it learns the live ones again within seconds.
 */
const UNKNOWN = { tilt: true, master: '', replicas: -1, sentinels: -1 };

export async function waitForSentinels(state: Pick<SwarmState, 'hosts'>, timeoutMs: number): Promise<void> {
  let last = '';
  let resetting: { h: string; at: number } | null = null;
  const replicas = state.hosts.length - 1;
  await waitFor(
    `the Sentinels to settle (a primary with ${replicas} replicas, ${state.hosts.length} Sentinels, no TILT)`,
    async () => {
      const views = await Promise.all(
        state.hosts.map(async (h) => {
          const ids = (await docker(h, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${STACK}_sentinel`], { timeoutMs: 10_000 }).catch(() => ''))
            .trim()
            .split('\n')
            .filter(Boolean);
          if (!ids.length) return { h, id: '', info: `${h}: no Sentinel`, ...UNKNOWN };
          const info = (
            await docker(h, ['exec', ids[0]!, 'redis-cli', '-p', '26379', 'info', 'sentinel'], { timeoutMs: 10_000 }).catch((err: Error) => `${h}: ${err.message}`)
          ).replace(/\r/g, '');
          const m = /master0:name=(\w+),status=ok,address=[\d.]+:6379,slaves=(\d+),sentinels=(\d+)/.exec(info);
          return { h, id: ids[0]!, info, tilt: !/sentinel_tilt:0/.test(info), master: m?.[1] ?? '', replicas: Number(m?.[2] ?? -1), sentinels: Number(m?.[3] ?? -1) };
        }),
      );
      last = views
        .map(
          (v) =>
            v.info
              .split('\n')
              .filter((l) => /tilt:|master0/.test(l))
              .join(' ') || v.info,
        )
        .join(' | ');
      const full = (v: (typeof views)[number]) => v.replicas === replicas && v.sentinels === state.hosts.length;
      if (views.every((v) => !v.tilt && full(v))) return true;
      // One reset at a time: the next once the last one reset knows every live server again (or after 20 s).
      const previous = resetting;
      if (previous && (full(views.find((v) => v.h === previous.h)!) || Date.now() - previous.at > 20_000)) resetting = null;
      const stale = views.find((v) => v.id && (v.replicas > replicas || v.sentinels > state.hosts.length));
      if (stale && !resetting) {
        resetting = { h: stale.h, at: Date.now() };
        await docker(stale.h, ['exec', stale.id, 'redis-cli', '-p', '26379', 'sentinel', 'reset', stale.master], { timeoutMs: 10_000 }).catch(() => '');
      }
      return false;
    },
    timeoutMs,
    1000,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; last seen: ${last}; the Redis servers: ${await redisRoles(state)}`);
  });
}

/** Each Redis server's address and replication role, as it sees itself (what a settle timeout shows). */
async function redisRoles(state: Pick<SwarmState, 'hosts'>): Promise<string> {
  const seen = await Promise.all(
    state.hosts.map(async (h) => {
      const ids = (await docker(h, ['ps', '-q', '--filter', `label=com.docker.stack.namespace=${STACK}`], { timeoutMs: 10_000 }).catch(() => '')).split('\n').filter(Boolean);
      const lines: string[] = [];
      for (const id of ids) {
        const name = (await docker(h, ['inspect', '-f', '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id], { timeoutMs: 10_000 }).catch(() => '')).trim();
        if (!/_redis(-replica-\d+)?\./.test(name)) continue;
        const info = await docker(h, ['exec', id, 'redis-cli', 'info', 'replication'], { timeoutMs: 10_000 }).catch((e: Error) => e.message);
        const fields = info
          .replace(/\r/g, '')
          .split('\n')
          .filter((l) => /^(role|master_host|master_link_status|connected_slaves|slave\d+):/.test(l));
        lines.push(`${h} ${name.replace(/^\//, '')}: ${fields.join(' ')}`);
      }
      return lines;
    }),
  );
  return seen.flat().join(' | ') || 'none found';
}

/** Each service's running / wanted tasks (global services: one per host that is up). */
export async function serviceReplicas(state: Pick<SwarmState, 'hosts'>, except: string[] = []): Promise<Record<string, { running: number; wanted: number }>> {
  const manager = await anyManager(state, except);
  const out = await docker(manager, ['service', 'ls', '--filter', `label=com.docker.stack.namespace=${STACK}`, '--format', '{{.Name}} {{.Replicas}}'], { timeoutMs: 20_000 });
  const result: Record<string, { running: number; wanted: number }> = {};
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [name, replicas] = line.split(' ');
    const m = /^(\d+)\/(\d+)/.exec(replicas ?? '');
    if (m) result[name!.slice(STACK.length + 1)] = { running: Number(m[1]), wanted: Number(m[2]) };
  }
  return result;
}

export async function waitForServices(state: Pick<SwarmState, 'hosts'>, timeoutMs: number, except: string[] = []): Promise<void> {
  let last = '';
  await waitFor(
    'every service of the stack to have its tasks running',
    async () => {
      const r = await serviceReplicas(state, except).catch(() => ({}) as Record<string, { running: number; wanted: number }>);
      last = JSON.stringify(r);
      return Object.keys(r).length > 0 && Object.values(r).every((s) => s.running === s.wanted && s.wanted > 0);
    },
    timeoutMs,
    1000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${last}`);
  });
}

function startFrontProcess(port: number, hosts: string[]): number {
  const log = fs.openSync(path.join(SWARM_RUN_DIR, 'front.log'), 'a');
  const child = spawn(process.execPath, [FRONT_JS, `127.0.0.1:${port}`, ...hosts.map((h) => `${addressOf(h)}:8080`)], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  fs.closeSync(log);
  return child.pid!;
}

/** Prometheus runs on one host; its published port is on that host's address. */
async function findPrometheus(state: SwarmState): Promise<string> {
  for (const h of state.hosts) {
    const url = `http://${addressOf(h)}:9090`;
    if (
      await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      )
    )
      return url;
  }
  return '';
}

/** Where each task of the stack runs, and its state. */
export async function ps(state: Pick<SwarmState, 'hosts'>): Promise<string> {
  const manager = await anyManager(state);
  const nodes = await docker(manager, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}']);
  const tasks = await docker(manager, ['stack', 'ps', STACK, '--filter', 'desired-state=running', '--format', '{{.Name}} {{.Node}} {{.CurrentState}}']);
  return `hosts:\n${nodes}\ntasks:\n${tasks}`;
}

export async function down(say: (l: string) => void = () => {}): Promise<void> {
  const state = readState();
  if (state?.frontPid && isAlive(state.frontPid) && cmdline(state.frontPid).includes('front.js')) await terminate(state.frontPid, 5000);
  say('removing the hosts (engines, namespaces, bridge, mounts, cgroups)');
  await hostsSh(['down']);
  fs.rmSync(STATE_FILE, { force: true });
}
