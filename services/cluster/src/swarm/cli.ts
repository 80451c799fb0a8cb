import { choiceOption, durationOption, EXIT, intOption, parseOptions, runCli, UsageError } from '../lib/cli.js';
import { sleep, waitFor } from '../lib/ports.js';
import { type Fault, FAULTS, SWARM_FAULTS } from '@session-cluster/loadtest/faults';
import { convergesByItself, defaultVictim, inject, primaryHost, replicasBack, restore } from './faults.js';
import { down, ps, requireState, up } from './swarm.js';
import { DEFAULT_MIN_REPLICAS_TO_WRITE, minReplicasArgs } from './stack.js';

/**
 * npm run swarm -- up [--mode shared|sticky] [--replicas 3] [--env KEY=VALUE]... [--min-replicas-to-write N]
 * npm run swarm -- ps | down
 * npm run swarm -- fault host-kill|host-partition|partial-partition|rolling-update|drain [--host hN|primary] [--for 20s]
 */
const USAGE = `usage: npm run swarm -- COMMAND [options]
  up                          three hosts (network namespaces, a dockerd each, root needed), one swarm
                              of three managers, the images on every host, the stack deployed, and the
                              front (the clients' address, printed) on 127.0.0.1
    --mode shared|sticky      the app's session mode (default shared)
    --replicas 3              app replicas, spread over the hosts
    --env KEY=VALUE           an app setting (repeatable), e.g. --env REDIS_WAIT_REPLICAS=1
    --min-replicas-to-write N Redis refuses writes with fewer than N replicas in sync (default 1; 0: off)
  ps                          the hosts and where each task runs
  fault NAME                  one fault, then back to normal (a killed host powered on, a cut one
                              healed, a drained one active again); prints what happened, with timings
${SWARM_FAULTS.map((f) => `    ${f.padEnd(24)}${FAULTS[f].summary.replace(/ \(--target swarm\)$/, '')}`).join('\n')}
    --host hN|primary         the host (default: the one running app-1; the primary's when the fault's
                              victim is the Redis primary's host; for a drain, not the primary's);
                              primary: the Redis primary's host, wherever it runs now
    --for 20s                 how long a host stays killed or cut off
  down                        remove everything up made: stack, swarm, engines, namespaces, bridge, front`;

const say = (line: string) => process.stdout.write(`[swarm] ${line}\n`);

function envOption(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values ?? []) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(kv);
    if (!m) throw new UsageError(`--env must be KEY=VALUE with an upper-case KEY, got "${kv}"`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, {
    mode: { type: 'string' },
    replicas: { type: 'string' },
    env: { type: 'string', multiple: true },
    'min-replicas-to-write': { type: 'string' },
    host: { type: 'string' },
    for: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  const [command, arg, ...rest] = positionals;
  if (values.help || !command) return (void process.stdout.write(`${USAGE}\n`), EXIT.ok);
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  switch (command) {
    case 'up': {
      if (arg) throw new UsageError(`unexpected argument "${arg}"`);
      const minReplicas = intOption('min-replicas-to-write', values['min-replicas-to-write'], DEFAULT_MIN_REPLICAS_TO_WRITE, 0, 2);
      const state = await up({
        mode: choiceOption('mode', values.mode, ['shared', 'sticky'] as const, 'shared'),
        replicas: intOption('replicas', values.replicas, 3, 1, 12),
        appEnv: envOption(values.env),
        redisArgs: minReplicasArgs(minReplicas),
        onProgress: say,
      });
      say(`up: ${state.url} (${state.mode}, ${state.replicas} app replicas on ${state.hosts.join(', ')}); Prometheus ${state.prometheus || 'not found'}`);
      return EXIT.ok;
    }
    case 'ps':
      process.stdout.write(await ps(requireState()));
      return EXIT.ok;
    case 'down':
      await down(say);
      say('down: nothing left');
      return EXIT.ok;
    case 'fault': {
      if (!arg) throw new UsageError(`fault needs a name: ${SWARM_FAULTS.join(', ')}`);
      if (!(SWARM_FAULTS as readonly string[]).includes(arg)) throw new UsageError(`unknown fault "${arg}" (${SWARM_FAULTS.join(', ')})`);
      const fault = arg as Fault;
      const action = FAULTS[fault];
      const state = requireState();
      const forS = durationOption('for', values.for, '20s');
      let host = values.host;
      if (host && host !== 'primary' && !state.hosts.includes(host)) throw new UsageError(`--host must be one of ${state.hosts.join(', ')} or primary, got "${host}"`);
      host = host === 'primary' ? await primaryHost(state) : (host ?? (await defaultVictim(state, fault)));
      const t0 = Date.now();
      const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
      say(`${fault} on ${host}`);
      await inject(state, fault, host);
      if (convergesByItself(fault)) {
        say(`${fault}: converged after ${at()}`);
        await restore(state, fault, host);
        say(`${host} active again after ${at()}`);
        return EXIT.ok;
      }
      const back = waitFor('the app replicas back', () => replicasBack(state, [host]), forS * 1000, 500).then(
        () => say(`the swarm runs every app replica again, without ${host}, after ${at()}`),
        () => say(`the swarm did not replace ${host}'s app replicas within ${forS} s`),
      );
      await sleep(forS * 1000);
      await back;
      say(`${action.swarm === 'power-off' ? 'powering on' : 'healing'} ${host} after ${at()}`);
      await restore(state, fault, host);
      say(`${host} Ready again after ${at()}`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown command "${command}" (up, ps, fault, down)`);
  }
}

runCli('swarm', USAGE, () => main(process.argv.slice(2)));
