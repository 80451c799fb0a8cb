import { describe, expect, it } from 'vitest';
import { minReplicasArgs } from '../../src/swarm/stack.js';
import { attachRefuses } from '../../src/swarm/target.js';

// An experiment on a swarm that is already up (npm run swarm -- up) runs on it only if the swarm
// runs what the experiment asks for: otherwise its report would name settings the swarm never had.
const swarm = { mode: 'shared' as const, replicas: 3, appEnv: {}, redisArgs: minReplicasArgs(1) };
const asked = { mode: 'shared' as const, nodes: 3, demoUsers: 13, nodeSettings: {}, redisArgs: minReplicasArgs(1) };

describe('an experiment on the swarm that is up', () => {
  it('runs when the swarm runs what it asks for (the swarm default settings and demo users aside)', () => {
    expect(attachRefuses(swarm, asked)).toBeNull();
    expect(attachRefuses({ ...swarm, appEnv: { LOG_LEVEL: 'debug', DEMO_USERS: '50' } }, asked)).toBeNull();
    expect(attachRefuses({ ...swarm, appEnv: { REDIS_WAIT_REPLICAS: '1' } }, { ...asked, nodeSettings: { REDIS_WAIT_REPLICAS: '1' } })).toBeNull();
  });

  it('is refused, naming the option, when the swarm runs something else', () => {
    expect(attachRefuses(swarm, { ...asked, mode: 'sticky' })).toMatch(/^--mode sticky: the swarm that is up .* runs shared mode/);
    expect(attachRefuses(swarm, { ...asked, nodes: 5 })).toMatch(/^--nodes 5: .* runs 3 app replicas/);
    expect(attachRefuses(swarm, { ...asked, redisArgs: minReplicasArgs(0) })).toMatch(
      /^--min-replicas-to-write: .* runs Redis with \[--min-replicas-to-write 1 --min-replicas-max-lag 4\], the experiment asks for \[\]/,
    );
    expect(attachRefuses(swarm, { ...asked, nodeSettings: { REDIS_WAIT_REPLICAS: '1' } })).toMatch(
      /^--env: .* runs the app with none, the experiment asks for REDIS_WAIT_REPLICAS=1/,
    );
    expect(attachRefuses({ ...swarm, appEnv: { REDIS_WAIT_REPLICAS: '1' } }, asked)).toMatch(/^--env: .* runs the app with REDIS_WAIT_REPLICAS=1, the experiment asks for none/);
    expect(attachRefuses({ ...swarm, appEnv: { DEMO_USERS: '5' } }, asked)).toMatch(/^--vus: .* has 5 demo users, the experiment needs 13/);
  });
});
