import path from 'node:path';
import { type ClusterState, DEFAULT_DIR, down, kill, type Mode, MODES, ps, readState, type Store, STORES, start, up } from './cluster.js';
import { choiceOption, EXIT, intOption, parseOptions, portOption, runCli, UsageError } from './lib/cli.js';
import { DEFAULT_LOG_MAX_BYTES, followLogs, formatSize, parseSize } from './lib/logs.js';
import { NODE_SETTING_KEYS, settingsFromEnvironment, settingsFromFlags } from './lib/node-settings.js';
import { REDIS_PERSISTENCE, type RedisPersistence } from './parts.js';

/**
 * npm run cluster -- <verb>. Exit codes (shared with experiment, bench and soak: lib/cli.ts):
 * 0 done, 1 failed, 2 usage error, 130 interrupted during start-up.
 */
const USAGE = `usage: npm run cluster -- <verb> [options]
  up [--nodes 3] [--mode shared|sticky|database|cookie|jwt] [--store single|sentinel|redis-cluster] [--port 8080] [--redis-persistence aof|aof-always|off] [--detach] [--no-monitoring] [--demo-users 1000]
     [--env KEY=VALUE]…  [--log-max-size 16M]
  ps [--json]
  kill <name> [--signal KILL|TERM]      take one part down (app-1…, redis, redis-primary, sentinel-1…, nginx, …)
  start <name>                          bring it back with the same port and settings
  down                                  stop everything this cluster started
  (all verbs: --dir DIR, default .run/cluster)

Node settings: taken from the environment of \`cluster up\` and from --env KEY=VALUE (which wins),
checked before anything starts, kept for \`start\` and shown by \`ps\`:
  ${NODE_SETTING_KEYS.join(', ')}
  e.g. SESSION_IDLE_TIMEOUT=60s npm start   or   npm run cluster -- up --env LOG_LEVEL=warn
Each part's log (.run/cluster/logs/<name>.log) is kept under --log-max-size (copied to <name>.log.1).`;

const say = (line: string): void => void process.stdout.write(`[cluster] ${line}\n`);

const isAbort = (err: unknown) => (err as Error | undefined)?.name === 'AbortError';

async function upVerb(dir: string, values: Record<string, string | boolean | string[] | undefined>): Promise<number> {
  const mode = choiceOption<Mode>('mode', values.mode as string | undefined, MODES, 'shared');
  const store = choiceOption<Store>('store', values.store as string | undefined, STORES, 'single');
  const redisPersistence = choiceOption<RedisPersistence>('redis-persistence', values['redis-persistence'] as string | undefined, REDIS_PERSISTENCE, 'aof');
  const nodes = intOption('nodes', values.nodes as string | undefined, 3, 1, 32);
  const port = portOption('port', values.port as string | undefined, 8080);
  const demoUsers = intOption('demo-users', values['demo-users'] as string | undefined, 1000, 0, 100_000);
  const rawSize = values['log-max-size'] as string | undefined;
  const logMaxBytes = rawSize === undefined ? DEFAULT_LOG_MAX_BYTES : parseSize(rawSize);
  if (logMaxBytes === null || logMaxBytes < 4096) throw new UsageError(`--log-max-size must be a size of at least 4k, like 64k, 16M or 1G, got "${rawSize}"`);
  // Precedence: the environment of `cluster up`, then --demo-users, then --env.
  const fromEnv = settingsFromEnvironment(process.env);
  const nodeEnv = { ...fromEnv, ...(values['demo-users'] !== undefined && { DEMO_USERS: String(demoUsers) }), ...settingsFromFlags((values.env as string[] | undefined) ?? []) };

  // A signal at any time, start-up included, stops everything this invocation started.
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    say(`${sig}: stopping everything this cluster started…`);
    controller.abort();
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  let state: ClusterState;
  try {
    ({ state } = await up({
      dir,
      mode,
      nodes,
      port,
      monitoring: !values['no-monitoring'],
      redisPersistence,
      store,
      demoUsers: Number(nodeEnv.DEMO_USERS ?? demoUsers),
      nodeEnv,
      logMaxBytes,
      onProgress: say,
      signal: controller.signal,
    }));
  } catch (err) {
    if (isAbort(err)) {
      say('interrupted during start-up; everything started is stopped');
      return EXIT.interrupted;
    }
    throw err;
  }
  const prom = state.parts.find((p) => p.kind === 'prometheus');
  const shown = Object.entries(state.settings ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  say(`node settings: ${shown}`);
  say(`open ${state.url}  ·  metrics ${prom ? prom.url : '(monitoring off)'}  ·  parts: npm run cluster -- ps`);
  say(`kill a node: npm run cluster -- kill app-2   ·   bring it back: npm run cluster -- start app-2`);
  if (values.detach) {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
    say('detached; stop it with: npm run cluster -- down');
    return EXIT.ok;
  }
  say(`following logs (each kept under ${formatSize(logMaxBytes)}); Ctrl-C or SIGTERM stops the cluster`);
  const stopFollowing = followLogs(path.join(dir, 'logs'), { maxBytes: logMaxBytes });
  if (!controller.signal.aborted) await new Promise((resolve) => controller.signal.addEventListener('abort', resolve, { once: true }));
  stopFollowing();
  await down(dir, say);
  say('down');
  return EXIT.ok;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, {
    dir: { type: 'string', default: DEFAULT_DIR },
    nodes: { type: 'string' },
    mode: { type: 'string' },
    'redis-persistence': { type: 'string' },
    store: { type: 'string' },
    port: { type: 'string' },
    detach: { type: 'boolean', default: false },
    'no-monitoring': { type: 'boolean', default: false },
    'demo-users': { type: 'string' },
    env: { type: 'string', multiple: true },
    'log-max-size': { type: 'string' },
    json: { type: 'boolean', default: false },
    signal: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  const [verb, name, ...extra] = positionals;
  const dir = path.resolve(values.dir!);
  if (values.help || !verb) return (void process.stdout.write(`${USAGE}\n`), EXIT.ok);
  const needsName = verb === 'kill' || verb === 'start';
  if (extra.length || (!needsName && name !== undefined)) throw new UsageError(`unexpected argument "${needsName ? extra[0] : name}"`);

  switch (verb) {
    case 'up':
      return upVerb(dir, values);
    case 'ps': {
      const status = await ps(dir);
      if (values.json) return (void process.stdout.write(`${JSON.stringify(status, null, 2)}\n`), EXIT.ok);
      const settings = Object.entries(status.settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      process.stdout.write(
        `load balancer: ${status.url}   mode: ${status.mode}${status.redisPersistence ? `   redis persistence: ${status.redisPersistence}` : ''}\nnode settings: ${settings || '(defaults)'}\n`,
      );
      process.stdout.write(`${'NAME'.padEnd(16)}${'PID'.padEnd(9)}${'PORT'.padEnd(7)}${'HEALTH'.padEnd(10)}${'ROLE'.padEnd(9)}URL\n`);
      for (const p of status.parts) {
        const health = !p.alive ? 'down' : p.healthy ? 'healthy' : 'unhealthy';
        process.stdout.write(`${p.name.padEnd(16)}${String(p.pid ?? '-').padEnd(9)}${String(p.port).padEnd(7)}${health.padEnd(10)}${(p.role ?? '').padEnd(9)}${p.url}\n`);
      }
      return EXIT.ok;
    }
    case 'kill': {
      if (!name) throw new UsageError('kill needs a part name, e.g. `kill app-2`');
      const sig = choiceOption('signal', values.signal?.toUpperCase(), ['KILL', 'TERM'] as const, 'KILL');
      await kill(name, { dir, signal: sig });
      say(`${name} stopped (SIG${sig})`);
      return EXIT.ok;
    }
    case 'start': {
      if (!name) throw new UsageError('start needs a part name, e.g. `start app-2`');
      await start(name, { dir, onProgress: say });
      return EXIT.ok;
    }
    case 'down': {
      if (!readState(dir)) return (say(`nothing running from ${dir}`), EXIT.ok);
      await down(dir, say);
      say('down');
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown verb "${verb}"`);
  }
}

runCli('cluster', USAGE, () => main(process.argv.slice(2)));
