/**
 * The local cluster runner, by concern (cluster/):
 *   state.ts        paths, the state file, which parts are still ours
 *   up.ts           start-up, phase by phase; returns a handle
 *   stores.ts       each store's start-up (Redis, Sentinel, Redis Cluster, PostgreSQL)
 *   handle.ts       the verbs (kill, start, ps, down) on a handle, or by run folder for the CLI
 *   redis-admin.ts  the runner's own questions to Redis (ROLE, replication)
 *   nginx.ts, prometheus.ts, secrets.ts   their configuration files
 */
export { APP_ENTRY, DEFAULT_DIR, keepLogsBounded, MODES, readState, removeRun, REPO_ROOT, STORES, type ClusterState, type Mode, type Store } from './cluster/state.js';
export { attach, clusterHandle, down, kill, ps, start, type ClusterHandle, type ClusterStatus, type PartStatus, type StartOptions } from './cluster/handle.js';
export { up, type UpOptions } from './cluster/up.js';
export { primaryPart, redisRole } from './cluster/redis-admin.js';
export { renderNginx } from './cluster/nginx.js';
