// Load profiles, chosen with -e PROFILE=<name>. Each is a k6 scenario (constant or ramping VUs).
// Every one has a fixed length, so a run always stops by itself.
import { config } from './config.js';

const PROFILES = {
  // A few users for half a minute: does the script and the cluster work at all?
  smoke: { executor: 'constant-vus', vus: 3, duration: '30s' },
  // The working day: ramp to 50 users, hold, ramp down.
  load: {
    executor: 'ramping-vus',
    startVUs: 0,
    stages: [
      { duration: '30s', target: 50 },
      { duration: '3m', target: 50 },
      { duration: '30s', target: 0 },
    ],
    gracefulRampDown: '5s',
  },
  // Long and steady: leaks, idle timeouts, counters that drift.
  soak: { executor: 'constant-vus', vus: 30, duration: '30m' },
  // The failover experiment (npm run experiment): length and size from DURATION and VUS.
  experiment: { executor: 'constant-vus', vus: config.vus, duration: config.duration },
};

export function profile(name = config.profile) {
  const p = PROFILES[name];
  if (!p) throw new Error(`PROFILE must be one of ${Object.keys(PROFILES).join(', ')}, got "${name}"`);
  // One iteration is one short step, so the end of the run (or a VU stopping) never waits long.
  return { ...p, gracefulStop: '3s' };
}

export const profileNames = Object.keys(PROFILES);

/** The most VUs a profile runs at once: every one of them logs in (lib/claims.js). */
export function peakVus(name = config.profile) {
  const p = profile(name);
  return p.executor === 'ramping-vus' ? Math.max(p.startVUs || 0, ...p.stages.map((s) => s.target)) : p.vus;
}
