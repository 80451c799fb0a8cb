import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The test tiers: a test's folder decides its tier (`<package>/test/<tier>/`), and its tier decides
 * what it may start and what runs beside it. vitest.config.ts makes one vitest project per tier
 * from this list; testkit/test/unit/tiers.test.ts checks that every test file is in a tier folder
 * and does nothing its tier forbids.
 *
 * Groups run one after the other (vitest `sequence.groupOrder`): unit and process together, then
 * cluster, then heavy, one file at a time. Whatever bounds a duration belongs in heavy, which
 * shares the machine with nothing.
 */
export interface Tier {
  name: 'unit' | 'process' | 'cluster' | 'heavy';
  /** What a test of this tier may start. */
  starts: string;
  group: number;
  /** Files of the tier run side by side (2 at a time), or one at a time. */
  parallel: boolean;
}

export const TIERS: readonly Tier[] = [
  { name: 'unit', starts: 'no process: code in this process (a node without a store included)', group: 0, parallel: true },
  { name: 'process', starts: 'processes of its own, no nginx: redis-server, PostgreSQL, a CLI, k6 on a fixture, promtool', group: 0, parallel: true },
  { name: 'cluster', starts: 'nginx in front of nodes: the local cluster, npm start, the browser', group: 1, parallel: true },
  { name: 'heavy', starts: 'load, faults and Docker, and anything that bounds a duration: alone, one file at a time', group: 2, parallel: false },
];

/** The folders that hold tests (each with test/<tier>/ inside). */
export const TEST_ROOTS = ['services/app', 'services/cluster', 'infra', 'loadtest', 'testkit'] as const;

export const tierGlobs = (tier: Tier['name']): string[] => TEST_ROOTS.map((root) => `${root}/test/${tier}/**/*.test.ts`);

/** The repository's root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every *.test.ts outside node_modules, dist and run state, tracked or not. */
export function testFiles(dir = REPO): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (['node_modules', 'dist', '.run', '.git', 'reports', 'test-artifacts'].includes(e.name)) return [];
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.ts') ? [path.relative(REPO, p)] : [];
  });
}

export const tierOf = (file: string): Tier['name'] | undefined => {
  for (const root of TEST_ROOTS) {
    const m = new RegExp(`^${root}/test/(${TIERS.map((t) => t.name).join('|')})/`).exec(file);
    if (m) return m[1] as Tier['name'];
  }
  return undefined;
};

/**
 * What a file does that needs at least a given tier, read from its text. A file that matches a
 * pattern without doing the thing (a CLI run with bad arguments only) says so on a line of its
 * own: `// tiers: not <what>, because <why>`.
 */
export const NEEDS: Array<{ tier: Tier['name']; what: string; pattern: RegExp }> = [
  { tier: 'process', what: 'a child process', pattern: /node:child_process|runNodeProcess\(/ },
  { tier: 'process', what: 'a Redis or PostgreSQL of its own', pattern: /startTestRedis\(|startTestPostgres\(|startRedisCluster\(/ },
  { tier: 'cluster', what: 'nginx in front of nodes', pattern: /startCluster\(|\bup\(\{|'cluster', 'up'|chromium\.launch\(/ },
  { tier: 'heavy', what: 'load, faults or Docker', pattern: /runFailover\(|runBench\(|runSoak\(|'failover'|'--seconds'|engine\.sh|store: 'sentinel'|store: 'redis-cluster'/ },
];

export const RANK = Object.fromEntries(TIERS.map((t, i) => [t.name, i])) as Record<Tier['name'], number>;

/** The lightest tier a text may live in, and why. */
export function lightestTier(text: string): { tier: Tier['name']; because: string[] } {
  const waived = [...text.matchAll(/^\s*\/\/ tiers: not (.+?), because \S/gm)].map((m) => m[1]);
  const found = NEEDS.filter((n) => n.pattern.test(text) && !waived.includes(n.what));
  const tier = found.reduce<Tier['name']>((t, n) => (RANK[n.tier] > RANK[t] ? n.tier : t), 'unit');
  return { tier, because: found.filter((n) => n.tier === tier).map((n) => n.what) };
}
