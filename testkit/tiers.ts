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
