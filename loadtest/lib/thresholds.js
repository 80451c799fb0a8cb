// The claims a run is held to, per mode. A threshold that fails makes k6 exit with code 99.
//
// shared (sessions in Redis): killing a node loses nothing. Every session survives
//   (sessions_lost == 0), and every response that came from a node continued its session
//   (session_continuity, checks > 99.9 %). Failed requests (5xx, resets) are counted, not held
//   to zero here: a POST in flight on the node that is SIGKILLed cannot be replayed by nginx.
// sticky (sessions in each node's memory): with a node killed (EXPECT_LOSS=1) the claim is
//   that sessions ARE lost (sessions_lost > 0); without a kill, sticky must lose none either.
//   Continuity is not held in sticky mode with a kill: a lost session is a broken continuation.
import { config } from './config.js';

export function thresholds(mode = config.mode, expectLoss = config.expectLoss) {
  if (mode === 'shared' || !expectLoss) {
    return {
      sessions_lost: ['count==0'],
      checks: ['rate>0.999'],
      session_continuity: ['rate>0.999'],
    };
  }
  return {
    sessions_lost: ['count>0'],
    // Identity and counters still never go wrong: a session either continues or is gone (401).
    'checks{check:identity}': ['rate==1'],
    'checks{check:counters}': ['rate==1'],
  };
}
