import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { REPO, testFiles, tierOf } from '../../tiers.js';

// vitest itself (vitest list) puts each file in the project its folder names: the configuration
// and testkit/tiers.ts agree, and no file is left out of every project.
it('vitest runs every tier, the folder choosing the project', () => {
  const out = execFileSync(process.execPath, [path.join(REPO, 'node_modules/vitest/vitest.mjs'), 'list', '--filesOnly', '--json'], {
    cwd: REPO,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const listed = (JSON.parse(out) as Array<{ file: string; projectName: string }>).map((e) => [path.relative(REPO, e.file), e.projectName]);
  expect(Object.fromEntries(listed)).toEqual(Object.fromEntries(testFiles().map((f) => [f, tierOf(f)])));
});
