// The experiment's faults: the one definition of each, read by the experiment CLI (its --fault
// choices and usage errors), the experiment itself (what it does to the cluster:
// services/cluster/src/experiment/run.ts), k6 (lib/config.js: FAULT) and the claims judge
// (lib/claims.js). Plain JS, so that k6 can import it too; faults.d.ts types it for TypeScript.
//
// Each fault:
//   summary       what it is, for the usage text
//   store         a fault of the shared store rather than of a node: every node stays alive, so
//                 every failure must be a node's own JSON 503 (lib/claims.js), and it runs in
//                 shared mode (its Redis)
//   victim        what is signalled at --kill-at: a node (`busiest` or the one named), the single
//                 Redis, or whichever Redis is primary at that moment
//   signal        KILL (a crash) or TERM (the node drains)
//   stores        the store topologies (cluster up --store) it applies to; anything else is a
//                 usage error, with `wrongStore`'s text
//   keepsSessions a store fault after which no session may be missing (AOF replays the writes)
//   failsNone     no request may fail: the victim drains (stops taking connections, finishes what
//                 it has, then exits), so none is in flight on it when it goes
//   swarm         a fault of the three-host swarm (npm run swarm, --target swarm), and what is done
//                 (services/cluster/src/swarm/faults.ts): power-off (every process of the host
//                 killed at once), cut (the host loses every link), cut-from-hosts (it loses the
//                 other hosts only), update (the app service updated, one task at a time), drain-host
//                 (the host's availability set to drain). Its victim is a host (`host`), the Redis
//                 primary's host (`primary-host`) or the app service (`service`); it runs on that
//                 target only. `losesHost`: every app replica on the host is lost to the clients
//                 until the swarm replaces it

export const FAULTS = Object.freeze({
  'node-kill': Object.freeze({
    summary: 'SIGKILL a node (the default)',
    store: false,
    victim: 'node',
    signal: 'KILL',
    stores: null,
    keepsSessions: false,
    failsNone: false,
  }),
  'node-term': Object.freeze({
    summary: 'SIGTERM a node: it drains',
    store: false,
    victim: 'node',
    signal: 'TERM',
    stores: null,
    keepsSessions: false,
    failsNone: true,
  }),
  'redis-restart': Object.freeze({
    summary: 'SIGKILL Redis, start it again after --restart-after (--store single)',
    store: true,
    victim: 'redis',
    signal: 'KILL',
    stores: Object.freeze(['single']),
    wrongStore: (store) => `--fault redis-restart is the single Redis's fault; with --store ${store} use --fault redis-primary-kill`,
    keepsSessions: true,
    failsNone: false,
  }),
  'redis-primary-kill': Object.freeze({
    summary: "SIGKILL a primary: Sentinel's, or one of a Redis Cluster's three (--store sentinel or redis-cluster)",
    store: true,
    victim: 'redis-primary',
    signal: 'KILL',
    stores: Object.freeze(['sentinel', 'redis-cluster']),
    wrongStore: () => '--fault redis-primary-kill needs --store sentinel or redis-cluster (a single Redis has no replica to fail over to; its fault is redis-restart)',
    keepsSessions: false,
    failsNone: false,
  }),
  'host-kill': Object.freeze({
    summary: 'every process of one host killed at once (power loss), powered on after --restart-after (--target swarm)',
    store: false,
    victim: 'host',
    signal: 'KILL',
    stores: null,
    keepsSessions: false,
    failsNone: false,
    swarm: 'power-off',
    losesHost: true,
  }),
  'host-partition': Object.freeze({
    summary: 'one host cut off from the others and from clients, healed after --restart-after (--target swarm)',
    store: false,
    victim: 'host',
    signal: 'KILL',
    stores: null,
    keepsSessions: false,
    failsNone: false,
    swarm: 'cut',
    losesHost: true,
  }),
  'partial-partition': Object.freeze({
    summary: "the Redis primary's host cut off from the other hosts, not from its own app replicas (--target swarm)",
    store: false,
    victim: 'primary-host',
    signal: 'KILL',
    stores: null,
    keepsSessions: false,
    failsNone: false,
    swarm: 'cut-from-hosts',
    losesHost: false,
  }),
  'rolling-update': Object.freeze({
    summary: 'docker service update --force of the app: one task at a time, start-first (--target swarm)',
    store: false,
    victim: 'service',
    signal: 'TERM',
    stores: null,
    keepsSessions: false,
    failsNone: true,
    swarm: 'update',
    losesHost: false,
  }),
  drain: Object.freeze({
    summary: 'one host drained (docker node update --availability drain): its app tasks move (--target swarm)',
    store: false,
    victim: 'host',
    signal: 'TERM',
    stores: null,
    keepsSessions: false,
    failsNone: true,
    swarm: 'drain-host',
    losesHost: false,
  }),
});

export const FAULT_NAMES = Object.freeze(Object.keys(FAULTS));
export const DEFAULT_FAULT = 'node-kill';

/** Faults of the shared store rather than of a node (see `store` above). */
export const STORE_FAULTS = Object.freeze(FAULT_NAMES.filter((name) => FAULTS[name].store));
export const isStoreFault = (fault) => STORE_FAULTS.includes(fault);

/** Faults of the swarm (see `swarm` above); every other fault runs on the local and compose targets. */
export const SWARM_FAULTS = Object.freeze(FAULT_NAMES.filter((name) => FAULTS[name].swarm));
export const isSwarmFault = (fault) => SWARM_FAULTS.includes(fault);

/** Why `fault` cannot run on `target` (local, compose, swarm), a usage error's text, or null when it can. */
export function targetRefusal(fault, target) {
  if (isSwarmFault(fault) && target !== 'swarm') return `--fault ${fault} is a fault of the swarm's hosts or services: use --target swarm`;
  if (!isSwarmFault(fault) && target === 'swarm') return `--target swarm runs the swarm's faults (${SWARM_FAULTS.join(', ')}), not --fault ${fault}`;
  return null;
}

/** Why `fault` cannot run on the store topology `store` (a usage error's text), or null when it can. */
export function faultRefusal(fault, store) {
  const f = FAULTS[fault];
  if (!f) return `--fault must be one of ${FAULT_NAMES.join(', ')}, got "${fault}"`;
  return f.stores && !f.stores.includes(store) ? f.wrongStore(store) : null;
}
