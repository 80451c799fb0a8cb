import fs from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { parseDurationS } from './duration.js';
import { MODE_DESCRIPTORS, SESSION_MODES, type SessionMode } from './modes.js';

/** The mode names, for the packages that read them from the configuration (modes.ts describes each). */
export { SESSION_MODES, type SessionMode };

/**
 * The node's configuration, parsed once from the environment.
 * Every variable is validated up front; a bad value stops the process with
 * a one-line message that names the variable (see ConfigError).
 */

const bool = () =>
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(v), {
      message: 'must be one of true/false/1/0/yes/no/on/off',
    })
    .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Whole seconds, at least `min`, in the project's one duration format (duration.ts): 90, 90s, 1m30s, 30m, 8h, 1d. */
const seconds = (min: number) =>
  z
    .string()
    .transform((v, ctx) => {
      try {
        return parseDurationS(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/; got .*$/, '') });
        return z.NEVER;
      }
    })
    .refine((v) => Number.isInteger(v), 'must be a whole number of seconds')
    .refine((v) => v >= min, `must be at least ${min} second${min === 1 ? '' : 's'}`);
const duration = seconds(1);

/** TRUST_PROXY as Express understands it: false, a hop count, or a list of addresses/subnets/names. */
const trustProxy = z
  .string()
  .trim()
  .transform((v, ctx): boolean | number | string[] => {
    const lower = v.toLowerCase();
    if (lower === 'false' || lower === '0' || lower === '') return false;
    if (lower === 'true') {
      ctx.addIssue({
        code: 'custom',
        message: 'true trusts every hop, so any client could forge X-Forwarded-For; name the proxy (loopback, an address or subnet) or a hop count',
      });
      return z.NEVER;
    }
    if (/^\d+$/.test(v)) return Number(v);
    const parts = v
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const ok = /^(loopback|linklocal|uniquelocal|[0-9a-fA-F:.]+(\/\d{1,3})?)$/;
    const bad = parts.find((p) => !ok.test(p));
    if (bad) {
      ctx.addIssue({ code: 'custom', message: `"${bad}" is not loopback/linklocal/uniquelocal, an IP address or a subnet` });
      return z.NEVER;
    }
    return parts;
  });

/**
 * A cheap lower bound on a secret's entropy, to refuse the obviously weak (`aaaa…`, `abcabc…`,
 * `password…`): Shannon entropy per character of its characters, times its length, counted
 * again after folding a repeated pattern. `openssl rand -hex 32` gives ~250 bits; 32 random
 * base64 characters ~190; 32 of one character 0.
 */
function estimatedBits(secret: string): number {
  const counts = new Map<string, number>();
  for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / secret.length) * Math.log2(n / secret.length);
  // A secret made of one short unit repeated is worth that unit only.
  for (let unit = 1; unit <= secret.length / 2; unit++) {
    if (secret.length % unit === 0 && secret.slice(0, unit).repeat(secret.length / unit) === secret) return perChar * unit;
  }
  return perChar * secret.length;
}

/**
 * Where the login budgets are counted (LOGIN_LIMITER, session/login/login-limiter.ts): a store every node
 * shares, so that they hold across the cluster. By default database mode's PostgreSQL and every
 * other mode's Redis (sticky and cookie modes use it for this alone); `memory` is for one node only.
 */
/** How many live sessions one user may hold (SESSIONS_PER_USER_MAX) unless set: the oldest is ended at the next login beyond it. */
export const SESSIONS_PER_USER_MAX_DEFAULT = 20;

export const LOGIN_LIMITERS = ['redis', 'postgres', 'memory'] as const;
export type LoginLimiterKind = (typeof LOGIN_LIMITERS)[number];

const schema = z
  .object({
    NODE_ENV: z.enum(['production', 'development', 'test']).default('production'),
    NODE_ID: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -')
      .default(os.hostname()),
    PORT: int(0, 65535).default(3000),
    METRICS_PORT: int(0, 65535).default(9100),
    HOST: z.string().trim().min(1).default('0.0.0.0'),
    SESSION_MODE: z.enum(SESSION_MODES).default('shared'),
    SESSION_SECRETS: z.string().min(1, 'is required (comma-separated; the first signs, all verify)'),
    REDIS_URL: z
      .string()
      .trim()
      .regex(/^rediss?:\/\/[^\s]+$/, 'must look like redis://host:port[/db]')
      .default('redis://127.0.0.1:6379/0'),
    REDIS_COMMAND_TIMEOUT_MS: int(50, 60000).default(500),
    REDIS_SENTINELS: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'must be a comma-separated list of host:port (the Sentinels)')
      .optional(),
    REDIS_AUTO_PIPELINING: bool().default(true),
    REDIS_CLUSTER_NODES: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'must be a comma-separated list of host:port (Redis Cluster nodes to discover the cluster from)')
      .optional(),
    REDIS_WAIT_REPLICAS: int(0, 10).default(0),
    REDIS_WAIT_TIMEOUT_MS: int(1, 10000).default(100),
    REDIS_SENTINEL_NAME: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -')
      .default('sessions'),
    DATABASE_URL: z
      .string()
      .trim()
      .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must look like postgres://user@host:port/database')
      .default('postgres://postgres@127.0.0.1:5432/postgres'),
    DATABASE_TIMEOUT_MS: int(50, 60000).default(1000),
    SESSION_IDLE_TIMEOUT: duration.default(1800),
    JWT_ACCESS_TTL: duration.default(900),
    SESSION_ABSOLUTE_TIMEOUT: duration.default(8 * 3600),
    SESSIONS_PER_USER_MAX: int(1, 1000).default(SESSIONS_PER_USER_MAX_DEFAULT),
    SESSION_PROFILE: z.enum(['tuned', 'textbook']).default('tuned'),
    COOKIE_SECURE: bool().default(false),
    COOKIE_MAX_BYTES: int(1024, 4096).default(4096),
    TRUST_PROXY: trustProxy.default(['loopback']),
    DEMO_USERS: int(0, 100000).default(1000),
    LOGIN_MAX_FAILURES: int(1, 1000).default(5),
    LOGIN_FAILURE_WINDOW: duration.default(900),
    LOGIN_MAX_FAILURES_PER_CLIENT: int(1, 100000).default(100),
    LOGIN_MAX_FAILURES_PER_ACCOUNT: int(1, 100000).default(50),
    LOGIN_LIMITER: z.enum(LOGIN_LIMITERS).optional(),
    LOGIN_HASH_CONCURRENCY: int(1, 64).default(1),
    LOGIN_HASH_QUEUE: int(0, 10000).default(16),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    SHUTDOWN_TIMEOUT: duration.default(10),
    SHUTDOWN_DELAY: seconds(0).default(0),
    APP_VERSION: z.string().trim().default('0.1.0'),
  })
  .superRefine((env, ctx) => {
    if (env.SESSION_PROFILE === 'textbook' && env.SESSION_MODE !== 'shared') {
      ctx.addIssue({ code: 'custom', path: ['SESSION_PROFILE'], message: 'textbook applies to shared mode only' });
    }
    if (env.REDIS_WAIT_REPLICAS > 0 && env.REDIS_WAIT_TIMEOUT_MS >= env.REDIS_COMMAND_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_WAIT_TIMEOUT_MS'], message: 'must be shorter than REDIS_COMMAND_TIMEOUT_MS (WAIT blocks the connection that long)' });
    }
    if (env.REDIS_CLUSTER_NODES && env.REDIS_SENTINELS) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'cannot be combined with REDIS_SENTINELS (one store topology at a time)' });
    }
    if (env.REDIS_CLUSTER_NODES && env.SESSION_MODE !== 'shared') {
      ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: `applies to shared mode only (${env.SESSION_MODE} mode's scripts span hash slots)` });
    }
    if (env.REDIS_CLUSTER_NODES && env.REDIS_WAIT_REPLICAS > 0) {
      // WAIT counts the replicas of the connection that wrote; the Cluster client would send it to some other node.
      ctx.addIssue({ code: 'custom', path: ['REDIS_WAIT_REPLICAS'], message: 'is not supported with REDIS_CLUSTER_NODES yet' });
    }
    const mode = MODE_DESCRIPTORS[env.SESSION_MODE];
    if (env.LOGIN_LIMITER === 'postgres' && mode.store !== 'postgres') {
      ctx.addIssue({ code: 'custom', path: ['LOGIN_LIMITER'], message: 'postgres applies to database mode only (its PostgreSQL)' });
    }
    if (env.LOGIN_LIMITER === 'memory' && mode.store === 'redis') {
      ctx.addIssue({ code: 'custom', path: ['LOGIN_LIMITER'], message: `memory cannot be used in ${env.SESSION_MODE} mode, which counts its budgets in its own Redis` });
    }
    if (env.SHUTDOWN_DELAY >= env.SHUTDOWN_TIMEOUT) {
      // Named on the delay: it is set whenever this fails (SHUTDOWN_TIMEOUT is at least 1 s), the deadline perhaps not.
      ctx.addIssue({
        code: 'custom',
        path: ['SHUTDOWN_DELAY'],
        message: `must be shorter than SHUTDOWN_TIMEOUT (${env.SHUTDOWN_TIMEOUT} s): the deadline counts from SIGTERM and covers the delay and the drain after it`,
      });
    }
    if (env.SESSION_ABSOLUTE_TIMEOUT < env.SESSION_IDLE_TIMEOUT) {
      ctx.addIssue({ code: 'custom', path: ['SESSION_ABSOLUTE_TIMEOUT'], message: 'must not be shorter than SESSION_IDLE_TIMEOUT' });
    }
    for (const message of secretProblems(
      env.SESSION_SECRETS.split(',').map((s) => s.trim()),
      env.NODE_ENV,
    )) {
      ctx.addIssue({ code: 'custom', path: ['SESSION_SECRETS'], message });
    }
  });

/**
 * What is wrong with a list of signing secrets (the first signs, every one verifies), as messages
 * that follow the variable's name; none when it is fine. Outside development every secret must be
 * at least 32 characters and not guessable.
 */
export function secretProblems(secrets: string[], env: 'production' | 'development' | 'test' = 'production'): string[] {
  const problems: string[] = [];
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) problems.push('has an empty entry');
  if (env !== 'development' && secrets.some((s) => s.length < 32)) {
    problems.push('every secret must be at least 32 characters (shorter ones are allowed only with NODE_ENV=development)');
  }
  if (env !== 'development' && secrets.some((s) => s.length > 0 && estimatedBits(s) < 128)) {
    problems.push('has a secret that looks guessable (too few distinct characters, or a repeated pattern); generate one with `openssl rand -hex 32`');
  }
  return problems;
}

/** A secrets file's secrets: one per line (commas separate too), blank lines ignored. */
export const secretsOfFile = (text: string): string[] =>
  text
    .trim()
    .split(/[\n,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

export interface Config {
  env: 'production' | 'development' | 'test';
  nodeId: string;
  host: string;
  port: number;
  metricsPort: number;
  mode: SessionMode;
  /** First signs, all verify. */
  secrets: string[];
  /**
   * Where Redis is: `url` (its host and port are used unless Sentinels are named; its path is the
   * sessions' database either way), or the primary that the Sentinels of `sentinel` report.
   */
  redis: {
    url: string;
    commandTimeoutMs: number;
    /**
     * ioredis auto-pipelining: commands issued in the same event-loop tick go out in one write.
     * Measured (docs/benchmarks.md, A/B row): node CPU per authenticated read down ~15 %.
     */
    autoPipelining: boolean;
    /** After a session write, wait until this many replicas have it (WAIT), up to waitTimeoutMs; 0: do not wait. */
    waitReplicas: number;
    waitTimeoutMs: number;
    sentinel?: { name: string; sentinels: Array<{ host: string; port: number }> };
    /** Redis Cluster: the nodes to discover it from (db 0, keys laid out by hash slot: session/keys.ts). */
    cluster?: { nodes: Array<{ host: string; port: number }> };
  };
  session: {
    idleTimeoutS: number;
    absoluteTimeoutS: number;
    maxPerUser: number;
    /**
     * `tuned` (default) is this project's store. `textbook` is the configuration tutorials teach
     * (resave and saveUninitialized on, connect-redis defaults), kept only so that `npm run bench`
     * can measure both side by side. Shared mode only.
     */
    profile: 'tuned' | 'textbook';
  };
  /**
   * The session cookie. `maxBytes` bounds the sealed cookie (cookie mode): browsers drop a cookie
   * over 4096 bytes; lower it when something between the browser and nginx holds smaller headers.
   */
  cookie: { secure: boolean; name: string; maxBytes: number };
  /** database mode: PostgreSQL, and how long a statement (or getting a connection) may take before it fails (503). */
  database: { url: string; timeoutMs: number };
  /** jwt mode: how long an access token is valid (there is no refresh token: log in again). */
  jwt: { accessTtlS: number };
  trustProxy: boolean | number | string[];
  demoUsers: number;
  loginLimits: { maxFailures: number; windowS: number; maxFailuresPerClient: number; maxFailuresPerAccount: number };
  /** Where the login budgets are counted (LOGIN_LIMITERS). */
  loginLimiter: LoginLimiterKind;
  /** Password hashes at once on this node, and how many may wait (beyond: 503 BUSY). */
  hashing: { concurrency: number; queue: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** The drain deadline, counted from SIGTERM. */
  shutdownTimeoutS: number;
  /** How long a draining node keeps accepting (every answer `Connection: close`) before it closes its listener. */
  shutdownDelayS: number;
  version: string;
}

/** A configuration error names the variable at fault. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly detail: string,
  ) {
    super(`invalid configuration: ${variable} ${detail}`);
    this.name = 'ConfigError';
  }
}

/**
 * SESSION_SECRETS_FILE (e.g. a compose secret at /run/secrets/...) supplies SESSION_SECRETS from a
 * file, so secrets need not sit in the environment or an image.
 */
function withSecretsFile(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const file = env.SESSION_SECRETS_FILE;
  if (!file) return env;
  if (env.SESSION_SECRETS) throw new ConfigError('SESSION_SECRETS_FILE', 'cannot be combined with SESSION_SECRETS; set one of them');
  try {
    return {
      ...env,
      SESSION_SECRETS: secretsOfFile(fs.readFileSync(file, 'utf8')).join(','),
    };
  } catch (err) {
    throw new ConfigError('SESSION_SECRETS_FILE', `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}; got ${JSON.stringify(file)}`);
  }
}

/** Every variable the node reads (the cluster runner passes these through to its nodes). */
export const CONFIG_VARIABLES: readonly string[] = [...Object.keys(schema.shape), 'SESSION_SECRETS_FILE'];

export function parseConfig(rawEnv: Record<string, string | undefined> = process.env): Config {
  const env = withSecretsFile(rawEnv);
  const known = Object.keys(schema.shape);
  const input = Object.fromEntries(known.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const shown = input[variable] === undefined ? 'missing' : variable === 'SESSION_SECRETS' ? '(value hidden)' : JSON.stringify(input[variable]);
    const message = issue.code === 'invalid_value' && 'values' in issue ? `must be one of ${issue.values.join(', ')}` : issue.message;
    throw new ConfigError(variable, `${message}; got ${shown}`);
  }
  const e = result.data;
  return {
    env: e.NODE_ENV,
    nodeId: e.NODE_ID,
    host: e.HOST,
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    mode: e.SESSION_MODE,
    secrets: e.SESSION_SECRETS.split(',').map((s) => s.trim()),
    redis: {
      url: e.REDIS_URL,
      commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
      autoPipelining: e.REDIS_AUTO_PIPELINING,
      waitReplicas: e.REDIS_WAIT_REPLICAS,
      waitTimeoutMs: e.REDIS_WAIT_TIMEOUT_MS,
      ...(e.REDIS_SENTINELS && { sentinel: { name: e.REDIS_SENTINEL_NAME, sentinels: hostPorts(e.REDIS_SENTINELS) } }),
      ...(e.REDIS_CLUSTER_NODES && { cluster: { nodes: hostPorts(e.REDIS_CLUSTER_NODES) } }),
    },
    session: {
      idleTimeoutS: e.SESSION_IDLE_TIMEOUT,
      absoluteTimeoutS: e.SESSION_ABSOLUTE_TIMEOUT,
      maxPerUser: e.SESSIONS_PER_USER_MAX,
      profile: e.SESSION_PROFILE,
    },
    cookie: { secure: e.COOKIE_SECURE, name: e.COOKIE_SECURE ? '__Host-sid' : 'sid', maxBytes: e.COOKIE_MAX_BYTES },
    jwt: { accessTtlS: e.JWT_ACCESS_TTL },
    database: { url: e.DATABASE_URL, timeoutMs: e.DATABASE_TIMEOUT_MS },
    trustProxy: e.TRUST_PROXY,
    demoUsers: e.DEMO_USERS,
    loginLimits: {
      maxFailures: e.LOGIN_MAX_FAILURES,
      windowS: e.LOGIN_FAILURE_WINDOW,
      maxFailuresPerClient: e.LOGIN_MAX_FAILURES_PER_CLIENT,
      maxFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
    },
    // By default the budgets are counted in the mode's own store (modes.ts).
    loginLimiter: e.LOGIN_LIMITER ?? MODE_DESCRIPTORS[e.SESSION_MODE].loginLimiter,
    hashing: { concurrency: e.LOGIN_HASH_CONCURRENCY, queue: e.LOGIN_HASH_QUEUE },
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutS: e.SHUTDOWN_TIMEOUT,
    shutdownDelayS: e.SHUTDOWN_DELAY,
    version: e.APP_VERSION,
  };
}

/** `host:port,host:port` (validated above) as a list. */
function hostPorts(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
  });
}
