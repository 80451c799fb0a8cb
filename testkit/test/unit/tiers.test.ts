import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lightestTier, RANK, REPO, testFiles, tierOf } from '../../tiers.js';

// The folder decides a test's tier (testkit/tiers.ts). This checks that every test file is in a
// tier folder, and reads each for what its tier forbids, so a new file that starts a cluster or
// drives load from a lighter tier is named here instead of starving a timing-bounded test beside it.
// (The unit tier also refuses child processes at run time: testkit/no-process.ts.)

describe('test tiers', () => {
  const files = testFiles();

  it('every test file is in a tier folder, <package>/test/<tier>/', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => !tierOf(f))).toEqual([]);
  });

  it('no file is in a lighter tier than what it starts', () => {
    // This file's own examples above match the patterns.
    const misplaced = files
      .filter((f) => f !== 'testkit/test/unit/tiers.test.ts')
      .flatMap((f) => {
        const { tier, because } = lightestTier(fs.readFileSync(path.join(REPO, f), 'utf8'));
        const actual = tierOf(f);
        return actual && RANK[actual] < RANK[tier] ? [`${f}: in ${actual}, starts ${because.join(', ')} (${tier})`] : [];
      });
    expect(misplaced).toEqual([]);
  });

  it('reads what a file starts', () => {
    expect(lightestTier("import { describe } from 'vitest';").tier).toBe('unit');
    expect(lightestTier('const redis = await startTestRedis();').tier).toBe('process');
    expect(lightestTier("cluster = await startCluster({ mode: 'shared' });").tier).toBe('cluster');
    expect(lightestTier("await startCluster({ store: 'sentinel' });")).toEqual({ tier: 'heavy', because: ['load, faults or Docker'] });
    expect(lightestTier("run(['failover', '--bad']);\n// tiers: not load, faults or Docker, because usage errors only").tier).toBe('unit');
  });
});
