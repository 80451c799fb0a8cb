import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../cluster.js';
import { durationOption, EXIT, intOption, parseOptions, runCli, UsageError } from '../lib/cli.js';
import { capacityMarkdown, capacityTable, runCapacity } from './capacity.js';
import { durabilityMarkdown, runDurability } from './durability.js';
import { profileMarkdown, runProfile } from './profile.js';
import { markdown, table } from './report.js';
import { CONFIG_NAMES, runBench } from './run.js';

/**
 * npm run bench [-- --json] [--rounds 3] [--seconds 20] [--saturation-seconds 5] [--rate 400] [--login-rate 40] [--connections 32]
 *   [--stored 1000,100000,1000000] [--memory-sessions 100000] [--no-doc] [--no-target-profiles]
 * Prints the table (or, with --json, one JSON object) and rewrites docs/benchmarks.md.
 * npm run bench -- --capacity: the capacity model (capacity.ts), into docs/capacity.md.
 * npm run bench -- --profile [--rounds 3] [--seconds 10] [--connections 8]: where a read's CPU goes (profile.ts),
 * into docs/profile.md.
 * npm run bench -- --durability [--rounds 3] [--seconds 5]: what a durable session write costs (durability.ts),
 * into docs/durability.md.
 * Exit codes (lib/cli.ts, the same for every tool): 0 done, 1 failed, 2 usage error.
 */
const USAGE = `usage: npm run bench [-- options]
  --json                      print one JSON object instead of the table
  --rounds 3                  rounds per configuration at the fixed rate (the median is kept)
  --seconds 20s               length of each round at the fixed rate (whole seconds: 5, 5s, 1m, 1m30s;
                              5s with --capacity)
  --saturation-seconds 5s     length of each run at saturation (wrk)
  --rate 400                  fixed offered rate of reads, req/s (k6 constant-arrival-rate)
  --login-rate 40             fixed offered rate of logins, req/s
  --only textbook,sticky      only these configurations, and shared (its cluster serves the limit); no
                              scaling, stored sessions, writes kept or memory): re-measure A/B rows
  --connections 32 --threads 2   wrk's, for the saturation runs
  --stored 1000,100000,1000000   stored-session levels for the read-cost table ('' for none)
  --memory-sessions 100000    sessions written for the bytes-per-session measurement
  --no-doc                    do not rewrite docs/benchmarks.md (or docs/profile.md)
  --no-target-profiles        judge the targets without profiling a missed one's pair (the
                              profiles take about as long as the rest of a short run)
  --profile                   instead: one node under node --cpu-prof, a read against the limit,
                              self time by package per request (--rounds 3, --seconds 10s,
                              --connections 8 by default), into docs/profile.md
  --durability                instead: what closing everysec's loss window costs a session write
                              (appendfsync always; WAIT for a replica), each configuration alone,
                              into docs/durability.md
  --capacity                  instead: what it costs at scale: the modes at the fixed rate and at
                              saturation, Redis Cluster with 1, 2 and 3 primaries, 1-3 nodes;
                              the model's table into docs/capacity.md (--json: the table as JSON)`;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function wholeSeconds(name: string, s: number): number {
  if (!Number.isInteger(s) || s < 1) throw new UsageError(`--${name} must be a whole number of seconds, at least 1, got ${s}`);
  return s;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv, {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    'saturation-seconds': { type: 'string' },
    connections: { type: 'string' },
    threads: { type: 'string' },
    stored: { type: 'string', default: '1000,100000,1000000' },
    'memory-sessions': { type: 'string' },
    'no-doc': { type: 'boolean', default: false },
    'no-target-profiles': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    durability: { type: 'boolean', default: false },
    capacity: { type: 'boolean', default: false },
    rate: { type: 'string' },
    only: { type: 'string' },
    'login-rate': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return (void process.stdout.write(`${USAGE}\n`), EXIT.ok);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.profile) return profile(values);
  if (values.durability) return durability(values);
  const rates = {
    rate: intOption('rate', values.rate, 400, 1, 100_000),
    loginRate: intOption('login-rate', values['login-rate'], 40, 1, 100_000),
  };
  if (values.capacity) return capacity(values, rates);
  const report = await runBench({
    ...loadOptions(values, { seconds: '20s', connections: 32 }),
    saturationSeconds: saturationSeconds(values),
    ...rates,
    ...(values.only !== undefined && { only: onlyOption(values.only) }),
    profileMisses: !values['no-target-profiles'],
    memorySessions: intOption('memory-sessions', values['memory-sessions'], 100_000, 1, 10_000_000),
    storedLevels: values.stored === '' ? [] : values.stored!.split(',').map((s) => intOption('stored', s.trim(), 0, 1, 100_000_000)),
  });
  return publish(values, 'benchmarks.md', markdown(report), report, `${table(report)}\n`);
}

/** --saturation-seconds: the length of each wrk run at saturation (5 s unless given). */
const saturationSeconds = (values: LoadValues) => wholeSeconds('saturation-seconds', durationOption('saturation-seconds', values['saturation-seconds'], '5s'));

/** --only: configuration names, each one the benchmark has. */
function onlyOption(value: string): string[] {
  const names = value.split(',').map((s) => s.trim());
  for (const name of names) if (!CONFIG_NAMES.includes(name)) throw new UsageError(`--only: no configuration "${name}" (one of ${CONFIG_NAMES.join(', ')})`);
  return names;
}

async function capacity(values: LoadValues, rates: { rate: number; loginRate: number }): Promise<number> {
  const report = await runCapacity({
    ...loadOptions(values, { seconds: '5s', connections: 32 }),
    saturationSeconds: saturationSeconds(values),
    ...rates,
    memorySessions: 0,
    storedLevels: [],
  });
  return publish(values, 'capacity.md', capacityMarkdown(report), report, `${capacityTable(report)}\n`);
}

async function profile(values: LoadValues): Promise<number> {
  const report = await runProfile(loadOptions(values, { seconds: '10s', connections: 8 }));
  const doc = profileMarkdown(report);
  return publish(values, 'profile.md', doc, report, doc);
}

async function durability(values: LoadValues): Promise<number> {
  const report = await runDurability(loadOptions(values, { seconds: '5s', connections: 32 }));
  const doc = durabilityMarkdown(report);
  return publish(values, 'durability.md', doc, report, doc);
}

type LoadValues = { json?: boolean; rounds?: string; seconds?: string; 'saturation-seconds'?: string; connections?: string; threads?: string; 'no-doc'?: boolean };

/** The options every benchmark takes, with its own defaults for the length of a run and the connections. */
function loadOptions(values: LoadValues, defaults: { seconds: string; connections: number }) {
  return {
    rounds: intOption('rounds', values.rounds, 3, 1, 100),
    seconds: wholeSeconds('seconds', durationOption('seconds', values.seconds, defaults.seconds)),
    connections: intOption('connections', values.connections, defaults.connections, 1, 10_000),
    threads: intOption('threads', values.threads, 2, 1, 256),
    onProgress: log,
  };
}

/** Rewrites docs/<name> (unless --no-doc) and prints the text, or the report as JSON (--json). */
function publish(values: LoadValues, name: string, doc: string, report: unknown, text: string): number {
  if (!values['no-doc']) writeDoc(name, doc);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : text);
  return EXIT.ok;
}

function writeDoc(name: string, text: string): void {
  const doc = path.join(REPO_ROOT, 'docs', name);
  fs.mkdirSync(path.dirname(doc), { recursive: true });
  fs.writeFileSync(doc, text);
  log(`wrote ${path.relative(REPO_ROOT, doc)}`);
}

runCli('bench', USAGE, () => main(process.argv.slice(2)));
