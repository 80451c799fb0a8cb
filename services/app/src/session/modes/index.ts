import type { Config } from '../../config.js';
import { MODE_DESCRIPTORS, type SessionMode } from '../../modes.js';
import type { LayerDeps, ModeFactory, SessionLayer } from '../layer.js';
import { loginOf } from '../login/login.js';
import { cookieLayer } from './cookie.js';
import { databaseLayer } from './database.js';
import { jwtLayer } from './jwt.js';
import { sharedLayer } from './shared.js';
import { stickyLayer } from './sticky.js';

/** One factory per mode of modes.ts (the type makes a mode without one a compile error). */
const FACTORIES: Record<SessionMode, ModeFactory> = {
  shared: sharedLayer,
  sticky: stickyLayer,
  database: databaseLayer,
  cookie: cookieLayer,
  jwt: jwtLayer,
};

/** The node's session layer: its mode's factory, with the mode's capabilities and the login every mode shares. */
export function createSessionLayer(config: Config, deps: LayerDeps): SessionLayer {
  const layer = FACTORIES[config.mode](config, deps);
  const { capabilities } = MODE_DESCRIPTORS[config.mode];
  return {
    middleware: layer.middleware,
    capabilities,
    store: layer.store,
    index: layer.index,
    limiter: layer.limiter,
    login: loginOf(layer, capabilities, { nodeId: config.nodeId, csrfSecret: config.secrets[0]! }),
    ready: layer.ready,
    close: layer.close,
  };
}
