import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../cluster.js';
import { markdown, table } from './report.js';
import { runBench } from './run.js';

/**
 * npm run bench [-- --json] [--rounds 3] [--seconds 5] [--connections 32] [--stored 1000,100000,1000000]
 *   [--memory-sessions 100000] [--no-doc]
 * Prints the table (or, with --json, one JSON object) and rewrites docs/benchmarks.md.
 */
const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    stored: { type: 'string', default: '1000,100000,1000000' },
    'memory-sessions': { type: 'string', default: '100000' },
    'no-doc': { type: 'boolean', default: false },
  },
});

function int(name: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    process.stderr.write(`[bench] --${name} must be a whole number >= 1, got "${v}"\n`);
    process.exit(1);
  }
  return Number(v);
}

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
runBench({
  rounds: int('rounds', values.rounds!),
  seconds: int('seconds', values.seconds!),
  connections: int('connections', values.connections!),
  threads: int('threads', values.threads!),
  memorySessions: int('memory-sessions', values['memory-sessions']!),
  storedLevels: values.stored === '' ? [] : values.stored!.split(',').map((s) => int('stored', s.trim())),
  onProgress: log,
})
  .then((report) => {
    if (!values['no-doc']) {
      const doc = path.join(REPO_ROOT, 'docs', 'benchmarks.md');
      fs.mkdirSync(path.dirname(doc), { recursive: true });
      fs.writeFileSync(doc, markdown(report));
      log(`wrote ${path.relative(REPO_ROOT, doc)}`);
    }
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${table(report)}\n`);
  })
  .catch((err: Error) => {
    log(`error: ${err.message}`);
    process.exit(1);
  });
