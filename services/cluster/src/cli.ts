import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DIR, down, kill, ps, readState, start, up, type Mode } from './cluster.js';

/**
 * npm run cluster -- <verb>
 *   up [--nodes 3] [--mode shared|sticky] [--port 8080] [--detach] [--no-monitoring] [--demo-users N]
 *   ps [--json]
 *   kill <name> [--signal KILL|TERM]
 *   start <name>
 *   down
 * Every verb takes --dir (default .run/cluster).
 */
const USAGE = `usage: npm run cluster -- <verb> [options]
  up [--nodes 3] [--mode shared|sticky] [--port 8080] [--detach] [--no-monitoring] [--demo-users 1000]
  ps [--json]
  kill <name> [--signal KILL|TERM]      take one part down (app-1…, redis, nginx, …)
  start <name>                          bring it back with the same port and environment
  down                                  stop everything this cluster started
  (all verbs: --dir DIR, default .run/cluster)`;

const say = (line: string): void => void process.stdout.write(`[cluster] ${line}\n`);

function fail(message: string): never {
  process.stderr.write(`[cluster] error: ${message}\n`);
  process.exit(1);
}

function intOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) fail(`--${name} must be a whole number, got "${value}"`);
  return Number(value);
}

/** Follows every part's log, prefixing each line with the part's name, until stopped. */
function followLogs(dir: string): () => void {
  const offsets = new Map<string, number>();
  const logDir = path.join(dir, 'logs');
  for (const f of fs.readdirSync(logDir)) offsets.set(f, fs.statSync(path.join(logDir, f)).size);
  const timer = setInterval(() => {
    for (const f of fs.readdirSync(logDir)) {
      const file = path.join(logDir, f);
      const size = fs.statSync(file).size;
      const from = offsets.get(f) ?? 0;
      if (size <= from) continue;
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(size - from);
      fs.readSync(fd, buf, 0, buf.length, from);
      fs.closeSync(fd);
      offsets.set(f, size);
      const name = f.replace(/\.log$/, '').padEnd(15);
      for (const line of buf.toString('utf8').split('\n')) if (line) process.stdout.write(`${name}| ${line}\n`);
    }
  }, 250);
  return () => clearInterval(timer);
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: DEFAULT_DIR },
      nodes: { type: 'string' },
      mode: { type: 'string' },
      port: { type: 'string' },
      detach: { type: 'boolean', default: false },
      'no-monitoring': { type: 'boolean', default: false },
      'demo-users': { type: 'string' },
      json: { type: 'boolean', default: false },
      signal: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [verb, name] = positionals;
  const dir = path.resolve(values.dir!);
  if (values.help || !verb) return void process.stdout.write(`${USAGE}\n`);

  switch (verb) {
    case 'up': {
      const mode = (values.mode ?? 'shared') as Mode;
      if (mode !== 'shared' && mode !== 'sticky') fail(`--mode must be shared or sticky, got "${values.mode}"`);
      const state = await up({
        dir,
        mode,
        nodes: intOption('nodes', values.nodes, 3),
        port: intOption('port', values.port, 8080),
        monitoring: !values['no-monitoring'],
        demoUsers: intOption('demo-users', values['demo-users'], 1000),
        onProgress: say,
      });
      const prom = state.parts.find((p) => p.kind === 'prometheus');
      say(`open ${state.url}  ·  metrics ${prom ? prom.url : '(monitoring off)'}  ·  parts: npm run cluster -- ps`);
      say(`kill a node: npm run cluster -- kill app-2   ·   bring it back: npm run cluster -- start app-2`);
      if (values.detach) return say('detached; stop it with: npm run cluster -- down');
      say('following logs; Ctrl-C stops the cluster');
      const stop = followLogs(dir);
      let stopping = false;
      const shutdown = async () => {
        if (stopping) return;
        stopping = true;
        stop();
        say('stopping…');
        await down(dir, say);
        process.exit(0);
      };
      process.on('SIGINT', shutdown);
      process.on('SIGTERM', shutdown);
      return;
    }
    case 'ps': {
      const status = await ps(dir);
      if (values.json) return void process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      process.stdout.write(`load balancer: ${status.url}   mode: ${status.mode}\n`);
      process.stdout.write(`${'NAME'.padEnd(16)}${'PID'.padEnd(9)}${'PORT'.padEnd(7)}${'HEALTH'.padEnd(10)}URL\n`);
      for (const p of status.parts) {
        const health = !p.alive ? 'down' : p.healthy ? 'healthy' : 'unhealthy';
        process.stdout.write(`${p.name.padEnd(16)}${String(p.pid ?? '-').padEnd(9)}${String(p.port).padEnd(7)}${health.padEnd(10)}${p.url}\n`);
      }
      return;
    }
    case 'kill': {
      if (!name) fail('kill needs a part name, e.g. `kill app-2`');
      const sig = (values.signal ?? 'KILL').toUpperCase();
      if (sig !== 'KILL' && sig !== 'TERM') fail(`--signal must be KILL or TERM, got "${values.signal}"`);
      await kill(name, { dir, signal: sig });
      return say(`${name} stopped (SIG${sig})`);
    }
    case 'start': {
      if (!name) fail('start needs a part name, e.g. `start app-2`');
      await start(name, { dir, onProgress: say });
      return;
    }
    case 'down': {
      if (!readState(dir)) return say(`nothing running from ${dir}`);
      await down(dir, say);
      return say('down');
    }
    default:
      fail(`unknown verb "${verb}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => fail(err.message));
