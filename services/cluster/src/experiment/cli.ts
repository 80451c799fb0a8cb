import fs from 'node:fs';
import path from 'node:path';
import { formatDuration } from '@session-cluster/app/duration';
import { type Mode, MODES, REPO_ROOT, type Store, STORES } from '../cluster.js';
import { REDIS_PERSISTENCE, type RedisPersistence } from '../parts.js';
import { DEFAULT_FAULT, FAULT_NAMES, FAULTS, faultRefusal, isStoreFault, SWARM_FAULTS, targetRefusal, type Fault } from '@session-cluster/loadtest/faults';
import { swarmRefuses } from '../swarm/target.js';
import { DEFAULT_MIN_REPLICAS_TO_WRITE, minReplicasArgs } from '../swarm/stack.js';
import { choiceOption, durationOption, EXIT, intOption, parseOptions, runCli, UsageError } from '../lib/cli.js';
import { settingsFromFlags } from '../lib/node-settings.js';
import { k6Version, resolveK6 } from './k6.js';
import { machine, type Summary, spreadOf, summarizeRun, textTable, writeReport } from './report.js';
import { Aborted, type RunOutcome, runFailover } from './run.js';
import { composeRefuses, TARGETS, type TargetKind } from './targets.js';

/**
 * npm run experiment -- failover [--target local|compose] [--mode shared|sticky|database|cookie|jwt|both|all] [--nodes 3] [--duration 60s]
 *   [--kill-at 20s] [--restart-after 10s] [--vus 20] [--out DIR] [--kill-node busiest|app-N] [--env KEY=VALUE]… [--monitoring] [--repeat N]
 *
 * Exit codes (lib/cli.ts, the same for every tool): 0 every claim held; 1 a claim did not hold or
 * the experiment could not run; 2 a usage error; 130 interrupted.
 */
const USAGE = `usage: npm run experiment -- failover [options]
  --target local|compose|swarm   where: the local cluster (processes, the default), the compose stack
                              (docker compose up, killed with docker kill; needs Docker and Compose
                              v2; its own project, session-cluster-experiment, removed afterwards;
                              the files: COMPOSE_FILE as docker compose reads it, else
                              docker-compose.yml), or a three-host swarm (npm run swarm; root; the
                              swarm's faults only, shared and sticky modes, the Sentinel store;
                              --restart-after is when a lost host comes back): the one that is up,
                              settled first and left up, or else one of its own, removed afterwards
  --host hN|primary           swarm: the host a host fault takes (default: the one running app-1;
                              the Redis primary's for a fault of the primary's host; for a drain,
                              not the primary's: draining it stops the primary, pinned there);
                              primary: the Redis primary's host, wherever it runs now
  --min-replicas-to-write N   swarm: Redis refuses writes with fewer than N replicas in sync
                              (default 1; 0 turns it off)
  --mode MODE[,MODE…]         shared, sticky, database, cookie or jwt; both (shared and sticky;
                              the default) or all (the five): run one after the other
  --fault ${DEFAULT_FAULT.padEnd(19)} what happens at --kill-at (store faults run in shared mode):
${faultHelp()}
  --store single|sentinel|redis-cluster   shared mode's store topology (default single)
  --redis-persistence aof|aof-always|off   Redis persistence (default aof)
  --nodes N                   session nodes behind nginx (default 3)
  --duration 60s              load length (90, 90s, 1m30s, 30m, 8h, 1d: the format of every duration)
  --kill-at 20s               SIGKILL one node this long into the load (>= duration: no kill)
  --restart-after 10s         start it again this long after the kill ("never" or 0: stays down)
  --vus 20                    k6 virtual users: one user and one session each
  --kill-node busiest         which node: busiest (sticky: most sessions; shared: most requests) or app-N
  --env KEY=VALUE             a node setting for every node (repeatable; as \`cluster up --env\`),
                              e.g. --env REDIS_WAIT_REPLICAS=1; recorded in summary.json
  --monitoring                also start Prometheus and push k6's metrics to it (remote write)
  --repeat N                  run each mode N times, interleaved (shared, sticky, shared, ...), and
                              report each figure's spread (lowest-highest) per mode (default 1)
  --out DIR                   where the report goes (default reports/latest)`;

/** The --fault choices of the usage text, from the fault table (lib/faults.js). */
function faultHelp(): string {
  return FAULT_NAMES.map((name) => `${' '.repeat(30)}${name.padEnd(19)} ${FAULTS[name].summary}`).join('\n');
}

const say = (line: string): void => void process.stdout.write(`[experiment] ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, {
    mode: { type: 'string' },
    target: { type: 'string' },
    fault: { type: 'string' },
    store: { type: 'string' },
    'redis-persistence': { type: 'string' },
    nodes: { type: 'string' },
    duration: { type: 'string', default: '60s' },
    'kill-at': { type: 'string', default: '20s' },
    'restart-after': { type: 'string', default: '10s' },
    vus: { type: 'string' },
    'kill-node': { type: 'string', default: 'busiest' },
    monitoring: { type: 'boolean', default: false },
    env: { type: 'string', multiple: true },
    out: { type: 'string' },
    repeat: { type: 'string' },
    host: { type: 'string' },
    'min-replicas-to-write': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  const [verb] = positionals;
  if (values.help || !verb) return (void process.stdout.write(`${USAGE}\n`), 0);
  if (verb !== 'failover') throw new UsageError(`unknown experiment "${verb}" (there is one: failover)`);
  const target = choiceOption<TargetKind>('target', values.target, TARGETS, 'local');
  const fault = choiceOption<Fault>('fault', values.fault, FAULT_NAMES, target === 'swarm' ? SWARM_FAULTS[0]! : DEFAULT_FAULT);
  const wrongTarget = targetRefusal(fault, target);
  if (wrongTarget) throw new UsageError(wrongTarget);
  const store = choiceOption<Store>('store', values.store, STORES, target === 'swarm' ? 'sentinel' : 'single');
  const redisPersistence = choiceOption<RedisPersistence>('redis-persistence', values['redis-persistence'], REDIS_PERSISTENCE, 'aof');
  const wrongStore = faultRefusal(fault, store);
  if (wrongStore) throw new UsageError(wrongStore);
  // A store fault is a fault of shared mode's Redis: that is the mode it runs in unless told otherwise.
  const modeOption = values.mode ?? (isStoreFault(fault) || (store !== 'single' && target !== 'swarm') ? 'shared' : 'both');
  const modes: Mode[] = [];
  for (const m of modeOption.split(',').map((x) => x.trim())) {
    const chosen = m === 'all' ? [...MODES] : m === 'both' ? (['shared', 'sticky'] as Mode[]) : MODES.filter((x) => x === m);
    if (!chosen.length) throw new UsageError(`--mode must be one of ${MODES.join(', ')}, both or all (or a comma-separated list), got "${modeOption}"`);
    modes.push(...chosen.filter((x) => !modes.includes(x)));
  }
  if ((isStoreFault(fault) || (store !== 'single' && target !== 'swarm')) && modes.some((m) => m !== 'shared'))
    throw new UsageError(`--fault ${fault} and --store ${store} apply to shared mode (its Redis); got --mode ${modeOption}`);
  const nodes = intOption('nodes', values.nodes, 3, 2, 32);
  const vus = intOption('vus', values.vus, 20, 1, 10_000);
  const repeat = intOption('repeat', values.repeat, 1, 1, 50);
  const durationS = durationOption('duration', values.duration, '60s');
  const killAtS = durationOption('kill-at', values['kill-at'], '20s');
  const restartRaw = values['restart-after']!;
  const restartAfterS = restartRaw === 'never' ? null : durationOption('restart-after', restartRaw, '10s') || null;
  if (durationS < 5) throw new UsageError('--duration must be at least 5s');
  const killNode = values['kill-node']!;
  if (killNode !== 'busiest' && !/^app-\d+$/.test(killNode)) throw new UsageError(`--kill-node must be busiest or app-N, got "${killNode}"`);
  const nodeSettings = settingsFromFlags((values.env as string[] | undefined) ?? []);
  if (target === 'swarm')
    for (const mode of modes) {
      const refused = swarmRefuses({ mode, store, redisPersistence });
      if (refused) throw new UsageError(refused);
    }
  if (target !== 'swarm' && (values.host || values['min-replicas-to-write'])) throw new UsageError('--host and --min-replicas-to-write apply to --target swarm');
  const redisArgs = target === 'swarm' ? minReplicasArgs(intOption('min-replicas-to-write', values['min-replicas-to-write'], DEFAULT_MIN_REPLICAS_TO_WRITE, 0, 2)) : [];
  if (target === 'compose') {
    const refused = composeRefuses({ store, redisPersistence, nodeSettings });
    if (refused) throw new UsageError(refused);
  }
  const outDir = values.out ? path.resolve(values.out) : path.join(REPO_ROOT, 'reports', 'latest');
  // Say what the run will and will not do before spending minutes on it.
  if (killAtS >= durationS)
    say(`note: --kill-at ${formatDuration(killAtS)} is at or after the end of the load (--duration ${formatDuration(durationS)}): no node is killed (a baseline run)`);
  else if (restartAfterS !== null && killAtS + restartAfterS >= durationS) {
    say(
      `note: the restart would come at ${formatDuration(killAtS + restartAfterS)}, at or after the end of the load (--duration ${formatDuration(durationS)}): the killed node stays down for the rest of the run`,
    );
  }
  fs.mkdirSync(outDir, { recursive: true });

  const k6 = resolveK6();
  const version = k6Version(k6);
  say(`k6 ${version} (${k6}); report in ${outDir}`);

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    say('interrupted: stopping k6 and tearing the cluster down (again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const outcomes: RunOutcome[] = [];
  for (let i = 1; i <= repeat; i++) {
    for (const mode of modes) {
      const label = repeat > 1 ? `${mode}-${i}` : mode;
      say(`${label}: starting ${nodes} nodes`);
      outcomes.push(
        await runFailover({
          mode,
          target,
          fault,
          store,
          redisPersistence,
          label,
          nodes,
          durationS,
          killAtS,
          restartAfterS,
          vus,
          killNode,
          outDir,
          k6,
          monitoring: values.monitoring!,
          nodeSettings,
          ...(values.host && { host: values.host }),
          ...(redisArgs.length && { redisArgs }),
          say,
          signal: controller.signal,
        }),
      );
    }
  }

  const summary: Summary = {
    generatedAt: new Date().toISOString(),
    command: `npm run experiment -- ${argv.join(' ')}`,
    machine: machine(version),
    runs: outcomes.map(summarizeRun),
    spread: {},
  };
  summary.spread = spreadOf(summary.runs);
  writeReport(outDir, summary, outcomes);
  process.stdout.write(`\n${textTable(summary)}\n\n`);
  say(`report: ${path.join(outDir, 'summary.md')} (plots ${summary.runs.map((r) => r.files.plot).join(', ')}; k6 HTML ${summary.runs.map((r) => r.files.html).join(', ')})`);
  return summary.runs.every((r) => r.claim.held) ? 0 : 1;
}

runCli('experiment', USAGE, () =>
  main(process.argv.slice(2)).catch((err: Error) => {
    if (!(err instanceof Aborted)) throw err;
    say('interrupted; the cluster is down');
    return EXIT.interrupted;
  }),
);
