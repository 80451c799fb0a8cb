/**
 * The versions users pull are the versions tested: Prometheus, promtool, both exporters and k6,
 * as the tests find them (scripts/setup.sh test builds the first four into .run/bin, which
 * vitest.config.ts puts first on PATH, and k6 with go install), report the release
 * docker-compose.yml pins for their image. The live compose test's stand-ins copy these binaries
 * and check the same inside the images (infra/test/heavy/compose-live.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resolveBinary } from '../../../services/cluster/src/parts.js';
import { composeImage, pinnedVersion, reportedVersion } from '../../../testkit/pinned.js';

function versionText(bin: string, args = ['--version']): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new Error(`${bin} could not run (${r.error.message}): npm test's setup (scripts/setup.sh test) provides it`);
  return `${r.stdout}${r.stderr}`;
}

describe('the tests run the releases docker-compose.yml pins', () => {
  const cases: [name: string, service: string, text: () => string][] = [
    ['prometheus', 'prometheus', () => versionText('prometheus')],
    ['promtool', 'prometheus', () => versionText('promtool')],
    ['nginx-exporter', 'nginx-exporter', () => versionText(resolveBinary('nginx-exporter'))],
    ['redis-exporter', 'redis-exporter', () => versionText(resolveBinary('redis-exporter'))],
    ['k6', 'k6', () => versionText('k6', ['version'])],
  ];
  for (const [name, service, text] of cases) {
    it(`${name}: ${composeImage(service)}`, () => {
      const t = text();
      expect(reportedVersion(t), `${name} reports ${t.split('\n')[0]}`).toBe(pinnedVersion(service));
    });
  }
});
