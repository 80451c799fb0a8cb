// The claims a run is held to (a threshold that fails makes k6 exit with code 99). They are
// defined once, in lib/claims.js, which the failover experiment's judge also uses; this module
// only feeds them this run's settings: the mode, whether a node is killed (KILL=1) and started
// again (RESTART), and the profile's peak number of VUs (every one of them must log in).
import { config } from './config.js';
import { k6Thresholds } from './claims.js';
import { peakVus } from './profiles.js';

export function thresholds(c = config) {
  return k6Thresholds({ mode: c.mode, kill: c.kill, restart: c.restart, fault: c.fault, vus: peakVus(c.profile) });
}
