import type { Config } from '../../config.js';
import { clientSession } from '../credentials/client-session.js';
import { jwtCredential } from '../credentials/jwt.js';
import type { LayerDeps, ModeLayer } from '../layer.js';
import { limiterFor } from '../login/login-limiter.js';
import { noIndex } from './client-index.js';

/**
 * jwt: a signed bearer token (jwt.ts) carries the identity; any node verifies it with the shared
 * secrets, so a node failure loses nothing. Redis holds only what revocation needs (a denylist
 * entry per logout, a cut-off per "log out everywhere") and the login limiter. No cookie is
 * involved, so CSRF does not apply: a browser never attaches an Authorization header by itself.
 * The request counter and the cart are server state this mode does not keep: 501 NOT_IN_MODE.
 */
export function jwtLayer(config: Config, { redis, metrics, logger }: LayerDeps): ModeLayer {
  if (!redis) throw new Error('jwt mode needs Redis clients (revocation and the login limiter)');
  const credential = jwtCredential({
    secrets: config.secrets,
    ttlS: config.jwt.accessTtlS,
    redis: redis.aux,
    onUnprovable: () => metrics.revocationUnprovable.inc(),
    onEpoch: (epoch) =>
      logger?.warn(
        { server: epoch.server, since: new Date(epoch.since).toISOString() },
        'jwt: the revocation data begins now on this Redis server; tokens issued before are refused',
      ),
  });
  metrics.setActiveSessionsSource(() => 0);
  return {
    middleware: clientSession(credential),
    loginAnswer: async (req) => {
      const s = req.session;
      return credential.issue(req.sessionID, s.user!, s.loginAt!, s.node!);
    },
    store: null,
    index: noIndex('jwt', (user) => credential.voidAll(user)),
    anonymousSessionsStored: false,
    commitLogin: async (_user, _sid, _at, attempt) => {
      await attempt.succeeded();
      return [];
    },
    limiter: limiterFor(config, { redis: redis.aux }),
    ready: async () => {
      const pings = await Promise.allSettled([redis.aux.ping()]);
      return pings.every((p) => p.status === 'fulfilled');
    },
    close: () => {},
  };
}
