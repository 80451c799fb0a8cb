import { ConfigError, parseConfig } from '@session-cluster/app/config';
import { UsageError } from './cli.js';

/**
 * The node settings `cluster up` passes on: the variables of the app's configuration
 * (services/app/src/config.ts) that a person may choose for a cluster. The rest are the runner's:
 * NODE_ID, PORT, METRICS_PORT and HOST per node, SESSION_MODE (--mode), REDIS_URL (its own Redis),
 * SESSION_SECRETS (from the environment or the run folder).
 */
export const NODE_SETTING_KEYS = [
  'SESSION_IDLE_TIMEOUT',
  'SESSION_ABSOLUTE_TIMEOUT',
  'SESSIONS_PER_USER_MAX',
  'SESSION_PROFILE',
  'COOKIE_SECURE',
  'COOKIE_MAX_BYTES',
  'TRUST_PROXY',
  'DEMO_USERS',
  'LOGIN_MAX_FAILURES',
  'LOGIN_FAILURE_WINDOW',
  'LOGIN_MAX_FAILURES_PER_CLIENT',
  'LOGIN_MAX_FAILURES_PER_ACCOUNT',
  'LOGIN_HASH_CONCURRENCY',
  'LOGIN_HASH_QUEUE',
  'LOG_LEVEL',
  'SHUTDOWN_TIMEOUT',
  'SHUTDOWN_DELAY',
  'REDIS_COMMAND_TIMEOUT_MS',
  'REDIS_AUTO_PIPELINING',
  'DATABASE_TIMEOUT_MS',
  'JWT_ACCESS_TTL',
  'REDIS_WAIT_REPLICAS',
  'REDIS_WAIT_TIMEOUT_MS',
  'NODE_ENV',
  'APP_VERSION',
] as const;

/** Set by the runner itself; naming one in --env is a usage error that says which option to use. */
const RUNNER_KEYS: Record<string, string> = {
  NODE_ID: 'the runner names nodes app-1, app-2, …',
  PORT: 'the runner picks free ports (--port is nginx’s public port)',
  METRICS_PORT: 'the runner picks free ports',
  HOST: 'nodes listen on 127.0.0.1',
  SESSION_MODE: 'use --mode shared|sticky|database|cookie|jwt',
  DATABASE_URL: 'the runner starts its own PostgreSQL (--mode database)',
  REDIS_URL: 'the runner starts its own Redis',
  REDIS_SENTINELS: 'use --store sentinel',
  REDIS_SENTINEL_NAME: 'use --store sentinel',
  REDIS_CLUSTER_NODES: 'use --store redis-cluster',
  SESSION_SECRETS: 'set SESSION_SECRETS in the environment of `cluster up`, or let the runner keep one in its folder',
  SESSION_SECRETS_FILE: 'set SESSION_SECRETS in the environment of `cluster up`',
};

/**
 * Not taken from the environment, only from --env: NODE_ENV is set by test runners and shells
 * for their own purposes (vitest sets `test`), and the nodes run as `production` unless asked.
 */
const FLAG_ONLY = new Set<string>(['NODE_ENV']);

/** The node settings present in an environment (the one `cluster up` runs in). */
export function settingsFromEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of NODE_SETTING_KEYS) {
    const v = env[key];
    if (v !== undefined && v !== '' && !FLAG_ONLY.has(key)) out[key] = v;
  }
  return out;
}

/** `--env KEY=VALUE` (repeatable) into settings; an unknown or runner-owned key is a usage error. */
export function settingsFromFlags(flags: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes KEY=VALUE, got "${flag}"`);
    const key = flag.slice(0, eq).trim();
    const value = flag.slice(eq + 1);
    if (RUNNER_KEYS[key]) throw new UsageError(`--env ${key}: set by the cluster runner (${RUNNER_KEYS[key]})`);
    if (!(NODE_SETTING_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`--env ${key}: not a node setting; the settings are ${NODE_SETTING_KEYS.join(', ')}`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * Checks a node environment the way a node will (the app's own parseConfig), before anything is
 * started: a bad value fails at once with the node's message naming the variable and the value.
 */
export function validateNodeEnvironment(env: Record<string, string>): void {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`node setting ${err.message.replace(/^invalid configuration: /, '')}`);
    throw err;
  }
}
