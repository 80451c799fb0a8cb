// The unit tier's setup file (vitest.config.ts): a unit test starts no process. Every way
// node:child_process starts one throws instead, naming the tier to move the file to.
import { createRequire, syncBuiltinESMExports } from 'node:module';

const childProcess = createRequire(import.meta.url)('node:child_process') as Record<string, unknown>;
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  childProcess[name] = () => {
    throw new Error(`a unit test starts no process (child_process.${name}): move the file to test/process/ or a later tier (testkit/tiers.ts)`);
  };
}
syncBuiltinESMExports();
