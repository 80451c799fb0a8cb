import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { TierTimes } from './testkit/tier-times.js';
import { TIERS, tierGlobs } from './testkit/tiers.js';

// Prometheus and its exporters at the versions docker-compose.yml pins, built by scripts/setup.sh
// test into .run/bin: first on PATH for every test, however vitest is started (infra/README.md,
// "Versions"); the local runner finds them there before Debian's.
process.env.PATH = `${fileURLToPath(new URL('.run/bin', import.meta.url))}${path.delimiter}${process.env.PATH ?? ''}`;

// One vitest project per tier; the folder decides the tier (testkit/tiers.ts says what each may
// start and why heavy runs alone).
export default defineConfig({
  test: {
    reporters: ['default', new TierTimes()],
    maxWorkers: 2,
    projects: TIERS.map((tier) => ({
      test: {
        name: tier.name,
        include: tierGlobs(tier.name),
        pool: 'forks' as const,
        testTimeout: 30_000,
        hookTimeout: 60_000,
        fileParallelism: tier.parallel,
        sequence: { groupOrder: tier.group },
        setupFiles: tier.name === 'unit' ? ['testkit/no-process.ts'] : [],
      },
    })),
  },
});
