import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Prometheus and its exporters at the versions docker-compose.yml pins, built by scripts/setup.sh
// test into .run/bin: first on PATH for every test, however vitest is started (infra/README.md,
// "Versions"); the local runner finds them there before Debian's.
process.env.PATH = `${fileURLToPath(new URL('.run/bin', import.meta.url))}${path.delimiter}${process.env.PATH ?? ''}`;

// Tests that drive sustained load or a Docker engine run alone, one file at a time, after the
// rest: on 2 cores, two of them side by side starve each other (and Redis) of CPU, and the
// claims they check (no failed request, a failover within seconds) are about the system, not
// about a machine running two load tests at once.
const HEAVY = [
  'services/cluster/test/experiment.test.ts',
  'services/cluster/test/bench.test.ts',
  'services/cluster/test/profile.test.ts',
  'services/cluster/test/monitoring.test.ts',
  'services/cluster/test/soak.test.ts',
  'services/cluster/test/store-sentinel.test.ts',
  'services/cluster/test/store-redis-cluster.test.ts',
  // Attacks and guesses through nginx in every mode, with assertions that nothing fails meanwhile;
  // Redis restarts and a Sentinel failover under jwt mode.
  'services/cluster/test/edge-attacks.test.ts',
  'services/cluster/test/login-budgets.test.ts',
  'services/cluster/test/jwt-revocation.test.ts',
  'infra/compose-live.test.ts',
];

const shared = { pool: 'forks' as const, testTimeout: 30_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    reporters: ['default'],
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: 'main',
          include: ['services/*/test/**/*.test.ts', 'infra/**/*.test.ts', 'loadtest/**/*.test.ts'],
          exclude: HEAVY,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'heavy',
          include: HEAVY,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
