import type { Config } from '../../config.js';
import { clientSession } from '../client-session.js';
import type { LayerDeps, SessionLayer } from '../layer.js';
import { createLoginLimiter } from '../login-limiter.js';
import { sealedCookie } from '../sealed-cookie.js';
import { noIndex } from './client-index.js';

/**
 * cookie: the whole session sealed in the cookie (sealed-cookie.ts); nothing on the server, so any
 * node serves any client and a node failure loses nothing. The price: logout cannot revoke a copy
 * of the cookie, sessions cannot be listed or ended together, the session must fit in 4 KB, and
 * concurrent changes race in the browser. With no shared store, the login limiter counts per node
 * (as in sticky mode: an attacker spread over N nodes gets N times the budget).
 */
export function cookieLayer(config: Config, { metrics }: LayerDeps): SessionLayer {
  const credential = sealedCookie({ name: config.cookie.name, secrets: config.secrets, secure: config.cookie.secure, idleTimeoutS: config.session.idleTimeoutS });
  metrics.setActiveSessionsSource(() => 0);
  return {
    middleware: clientSession(credential),
    capabilities: { state: true, csrf: true, revokesStolenCredential: false },
    store: null,
    index: noIndex('cookie'),
    anonymousSessionsStored: false,
    commitLogin: async (_user, _sid, _at, attempt) => {
      await attempt.succeeded();
      return [];
    },
    limiter: createLoginLimiter(config.loginLimits, null),
    ready: async () => true,
    close: () => {},
  };
}
