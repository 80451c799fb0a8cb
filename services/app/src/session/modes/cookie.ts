import type { Config } from '../../config.js';
import { clientSession } from '../credentials/client-session.js';
import type { LayerDeps, ModeLayer } from '../layer.js';
import { limiterFor } from '../login/login-limiter.js';
import { sealedCookie } from '../credentials/sealed-cookie.js';
import { noIndex } from './client-index.js';

/**
 * cookie: the whole session sealed in the cookie (sealed-cookie.ts); nothing on the server, so any
 * node serves any client and a node failure loses nothing. The price: logout cannot revoke a copy
 * of the cookie, sessions cannot be listed or ended together, the session must fit in 4 KB, and
 * concurrent changes race in the browser. The login budgets are the one thing kept on a server:
 * in Redis (LOGIN_LIMITER), used for this alone, so they hold across the nodes.
 */
export function cookieLayer(config: Config, { redis, metrics }: LayerDeps): ModeLayer {
  const credential = sealedCookie({
    name: config.cookie.name,
    secrets: config.secrets,
    secure: config.cookie.secure,
    idleTimeoutS: config.session.idleTimeoutS,
    maxBytes: config.cookie.maxBytes,
  });
  metrics.setActiveSessionsSource(() => 0);
  return {
    middleware: clientSession(credential),
    store: null,
    index: noIndex('cookie'),
    anonymousSessionsStored: false,
    commitLogin: async (_user, _sid, _at, attempt) => {
      await attempt.succeeded();
      return [];
    },
    limiter: limiterFor(config, { redis: redis?.aux }),
    ready: async () => true,
    close: () => {},
  };
}
