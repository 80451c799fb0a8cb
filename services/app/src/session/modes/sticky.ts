import type { Config } from '../../config.js';
import { codecFor, expressSession } from '../express.js';
import type { LayerDeps, ModeLayer } from '../layer.js';
import { LocalSessionStore } from '../stores/local-store.js';
import { limiterFor } from '../login/login-limiter.js';
import { appMergePolicy } from '../stores/merge.js';
import { LocalUserSessionIndex } from '../user-index/user-index.js';

/**
 * sticky: this node's memory (LocalSessionStore); the load balancer must route a client back
 * here. The index is this node's too: it knows only its own sessions. The login budgets are not:
 * they are counted in Redis (LOGIN_LIMITER), used for this alone, so they hold across the nodes
 * (nginx spreads a newcomer's attempts over all of them).
 */
export function stickyLayer(config: Config, { redis, metrics }: LayerDeps): ModeLayer {
  const store = new LocalSessionStore({ idleTimeoutS: config.session.idleTimeoutS, codec: codecFor(config), observer: metrics.storeObserver, merge: appMergePolicy });
  const index = new LocalUserSessionIndex(store, { maxPerUser: config.session.maxPerUser, nodeId: config.nodeId });
  metrics.setUserIndexSource(() => index.stats);
  metrics.setActiveSessionsSource(() => store.size);
  return {
    middleware: expressSession(config, store),
    store,
    index,
    anonymousSessionsStored: false,
    commitLogin: async (user, sid, at, attempt) => {
      await attempt.succeeded();
      return index.add(user, sid, at);
    },
    limiter: limiterFor(config, { redis: redis?.aux }),
    // Readiness is the sessions' store, this node's memory: a Redis outage costs logins (503), never reads.
    ready: async () => true,
    close: () => store.close(),
  };
}
