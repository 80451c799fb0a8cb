import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAULT_NAMES, FAULTS, faultRefusal, isStoreFault, STORE_FAULTS, SWARM_FAULTS, targetRefusal } from '@session-cluster/loadtest/faults';
import { k6Thresholds } from '@session-cluster/loadtest/claims';
import { REPO_ROOT, STORES } from '../../src/cluster.js';

// The fault table (loadtest/lib/faults.js) is the only list of the experiment's faults: the CLI,
// the experiment, k6 and the claims judge read it.
describe('the fault table', () => {
  it('is the only place a fault is named in code: no other list of faults in the runner or the k6 scripts', () => {
    const table = path.join(REPO_ROOT, 'loadtest/lib/faults.js');
    const typings = path.join(REPO_ROOT, 'loadtest/lib/faults.d.ts');
    const files = [...sources(path.join(REPO_ROOT, 'services/cluster/src')), ...sources(path.join(REPO_ROOT, 'loadtest'))].filter((f) => f !== table && f !== typings);
    expect(files.length).toBeGreaterThan(20);
    const quoted = new RegExp(`['"\`](${FAULT_NAMES.join('|')})['"\`]`);
    const naming = files.filter((f) => quoted.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(REPO_ROOT, f));
    expect(naming).toEqual([]);
  });

  it('its TypeScript type names the same faults as the table (faults.d.ts mirrors faults.js: k6 imports plain JS)', () => {
    const dts = fs.readFileSync(path.join(REPO_ROOT, 'loadtest/lib/faults.d.ts'), 'utf8');
    const union = /export type Fault = ([^;]+);/.exec(dts)![1]!;
    expect([...union.matchAll(/'([^']+)'/g)].map((m) => m[1])).toEqual([...FAULT_NAMES]);
  });

  it('says which store topologies each fault needs, and refuses the others with a usage error', () => {
    for (const name of FAULT_NAMES) {
      const f = FAULTS[name];
      for (const store of STORES) {
        const refusal = faultRefusal(name, store);
        if (f.stores === null || f.stores.includes(store)) expect(refusal, `${name} on ${store}`).toBeNull();
        else expect(refusal, `${name} on ${store}`).toMatch(new RegExp(`^--fault ${name} `));
      }
      // A store fault kills a Redis, a node fault a node; a swarm fault takes a host or a service.
      if (f.swarm) expect(['host', 'primary-host', 'service'], name).toContain(f.victim);
      else expect(f.victim === 'node', name).toBe(!f.store);
    }
    expect(faultRefusal('node-explode', 'single')).toMatch(/--fault must be one of node-kill, node-term, redis-restart, redis-primary-kill/);
    expect(STORE_FAULTS).toEqual(FAULT_NAMES.filter(isStoreFault));
    expect(STORE_FAULTS.length).toBeGreaterThan(0);
  });

  it("runs the swarm's faults on the swarm only, and only those there", () => {
    expect(SWARM_FAULTS.length).toBeGreaterThan(0);
    for (const name of FAULT_NAMES) {
      for (const target of ['local', 'compose', 'swarm']) {
        const refusal = targetRefusal(name, target);
        if (SWARM_FAULTS.includes(name) === (target === 'swarm')) expect(refusal, `${name} on ${target}`).toBeNull();
        else expect(refusal, `${name} on ${target}`).toMatch(/--target swarm/);
      }
    }
    // A host lost to the clients is only the host a fault takes.
    for (const name of SWARM_FAULTS) if (FAULTS[name].losesHost) expect(FAULTS[name].victim, name).toBe('host');
  });

  it('gives k6 the claims of each fault: a store fault allows no 502, a fault that keeps sessions allows no loss', () => {
    for (const name of FAULT_NAMES) {
      const t = k6Thresholds({ mode: 'shared', kill: true, restart: true, vus: 4, fault: name });
      expect(t['failed_requests{status:502}'], name).toEqual(FAULTS[name].store ? ['count==0'] : undefined);
      if (FAULTS[name].keepsSessions) expect(t.sessions_lost, name).toEqual(['count==0']);
    }
  });
});

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((e) => (e.isFile() && /\.(ts|js|mjs)$/.test(e.name) ? [path.join(e.parentPath, e.name)] : []));
}
