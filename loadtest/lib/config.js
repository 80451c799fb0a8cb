// Where and how a script runs, from k6's -e/environment variables. No other module reads __ENV.
//   BASE_URL     the cluster's one way in (nginx); default http://127.0.0.1:8080 (compose: http://nginx:8080)
//   MODE         shared | sticky | database | cookie | jwt: which claims the thresholds hold the run to
//                (lib/thresholds.js; every mode but sticky must lose nothing)
//   USER_OFFSET  VU n logs in as user<n + USER_OFFSET>, so two runs can use disjoint demo users
//   KILL         1 = a node is killed during the run (the experiment sets it; EXPECT_LOSS=1 is the old
//                name): the failures a dying node causes are allowed, and sticky mode must lose sessions
//   RESTART      with KILL=1: 1 (default) = the node is started again, 0 = it stays down (either way a
//                sticky user is lost at most once: the route cookie is re-pinned, lib/claims.js)
//   FAULT        what KILL=1 does (the experiment's --fault): one of lib/faults.js, default node-kill;
//                a store fault is held to its own claims (lib/claims.js)
//   PROFILE      smoke | load | soak | experiment (lib/profiles.js)
//   DURATION, VUS  the experiment profile's length and size
//   SUMMARY_PATH where handleSummary writes its JSON (default summary.json)

import { DEFAULT_FAULT, FAULT_NAMES } from './faults.js';

function intEnv(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return Number(raw);
}

function flag(name, fallback) {
  const raw = String(__ENV[name] ?? '').toLowerCase();
  if (raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be 1 or 0, got "${__ENV[name]}"`);
}

const MODES = ['shared', 'sticky', 'database', 'cookie', 'jwt'];
const fault = (__ENV.FAULT || DEFAULT_FAULT).toLowerCase();
if (!FAULT_NAMES.includes(fault)) throw new Error(`FAULT must be one of ${FAULT_NAMES.join(', ')}, got "${__ENV.FAULT}"`);
const mode = (__ENV.MODE || 'shared').toLowerCase();
if (!MODES.includes(mode)) throw new Error(`MODE must be one of ${MODES.join(', ')}, got "${__ENV.MODE}"`);

export const config = Object.freeze({
  baseUrl: (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
  mode,
  userOffset: intEnv('USER_OFFSET', 0),
  kill: flag('KILL', flag('EXPECT_LOSS', false)),
  restart: flag('RESTART', true),
  fault,
  profile: (__ENV.PROFILE || 'smoke').toLowerCase(),
  duration: __ENV.DURATION || '60s',
  vus: intEnv('VUS', 20),
  summaryPath: __ENV.SUMMARY_PATH || 'summary.json',
});

/** The demo user of a VU (k6 numbers VUs from 1). The node's directory has user1..userDEMO_USERS. */
export function userFor(vu) {
  const n = vu + config.userOffset;
  return { username: `user${n}`, password: `pass${n}` };
}
