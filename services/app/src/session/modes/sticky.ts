import type { Config } from '../../config.js';
import { codecFor, expressSession } from '../express.js';
import { SERVER_SESSIONS, type LayerDeps, type SessionLayer } from '../layer.js';
import { LocalSessionStore } from '../local-store.js';
import { createLoginLimiter } from '../login-limiter.js';
import { appMergePolicy } from '../merge.js';
import { LocalUserSessionIndex } from '../user-index.js';

/**
 * sticky: this node's memory (LocalSessionStore); the load balancer must route a client back
 * here. The index and the limiter are this node's too: they know only its own sessions and logins.
 */
export function stickyLayer(config: Config, { metrics }: LayerDeps): SessionLayer {
  const store = new LocalSessionStore({ idleTimeoutS: config.session.idleTimeoutS, codec: codecFor(config), observer: metrics.storeObserver, merge: appMergePolicy });
  const index = new LocalUserSessionIndex(store, { maxPerUser: config.session.maxPerUser, nodeId: config.nodeId });
  metrics.setUserIndexSource(() => index.stats);
  metrics.setActiveSessionsSource(() => store.size);
  return {
    capabilities: SERVER_SESSIONS,
    middleware: expressSession(config, store),
    store,
    index,
    anonymousSessionsStored: false,
    commitLogin: async (user, sid, at, attempt) => {
      await attempt.succeeded();
      return index.add(user, sid, at);
    },
    limiter: createLoginLimiter(config.loginLimits, null),
    ready: async () => true,
    close: () => store.close(),
  };
}
