import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { requestContext } from './http/context.js';
import { createGate } from './http/gate.js';
import { errorHandler, notFound } from './http/errors.js';
import { jsonBody } from './http/json.js';
import type { Metrics } from './metrics.js';
import { authRoutes } from './routes/auth.js';
import { cartRoutes } from './routes/cart.js';
import { internalHandler } from './routes/health.js';
import { meRoutes } from './routes/me.js';
import { sessionsRoutes } from './routes/sessions.js';
import { deviceCookies } from './session/login/device.js';
import { requireCsrf, requireUser } from './session/guard.js';
import type { RedisClients } from './redis.js';
import type { SessionLayer } from './session/layer.js';
import { createSessionLayer } from './session/modes/index.js';
import type { UserDirectory } from './users.js';

export interface AppDeps {
  /** Required in the modes that use Redis (modes.ts, needsRedis); null otherwise. */
  redis: RedisClients | null;
  /** database mode's PostgreSQL pool; null or absent otherwise. */
  pg?: Pool | null;
  users: UserDirectory;
  logger: Logger;
  metrics: Metrics;
  /** Directory of the demo page's static files, if any. */
  publicDir?: string;
}

export interface AppHandle {
  app: Express;
  /** The internal port's handler: /metrics, /healthz, /readyz (never behind nginx). */
  internal: (req: IncomingMessage, res: ServerResponse) => void;
  /** Readiness goes 503 and responses ask clients to close their connections. */
  startDraining(): void;
  /** The session layer (store, index, limiter): for tests and introspection, never for routes of other nodes. */
  sessions: SessionLayer;
  /** Stops timers the app owns (not the Redis clients: the caller owns those). */
  close(): void;
}

/**
 * Builds one session node. No side effects: nothing listens, nothing connects.
 * The body reads top to bottom as the order a request goes through.
 */
export function createApp(config: Config, deps: AppDeps): AppHandle {
  const app = express();
  let draining = false;
  const sessions = createSessionLayer(config, { redis: deps.redis, pg: deps.pg ?? null, metrics: deps.metrics, logger: deps.logger });

  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);

  // 1. Context, security headers, and the drain signal.
  app.use(requestContext({ nodeId: config.nodeId, logger: deps.logger, metrics: deps.metrics }));
  app.use(helmet({ contentSecurityPolicy: { directives: { 'script-src': ["'self'"], 'connect-src': ["'self'"] } } }));
  // While draining, every response says `Connection: close`. Decided when the headers go out, not
  // when the request came in (a request in flight when draining starts must not leave its
  // connection open either), on this app's response prototype: nothing is added per request.
  const writeHead = app.response.writeHead;
  app.response.writeHead = function (this: express.Response, ...args: Parameters<typeof writeHead>) {
    if (draining) this.setHeader('Connection', 'close');
    return writeHead.apply(this, args);
  } as typeof writeHead;

  // 2. The API: JSON bodies (small), then the session, then the routes.
  const api = express.Router();
  api.use((_req, res, next) => {
    res.locals.routeBase = '/api'; // for metrics labels: req.baseUrl is gone by the time the response ends
    next();
  });
  // No session: the baseline `npm run bench` compares every session configuration against.
  api.get('/ping', (_req, res) => {
    res.json({ node: config.nodeId });
  });
  api.use(jsonBody({ limit: '8kb' }));
  api.use(sessions.middleware);
  const can = sessions.capabilities;
  // CSRF protects ambient credentials (cookies); a bearer token is never sent by a browser on its own.
  const guard = {
    requireUser: requireUser({ absoluteTimeoutS: config.session.absoluteTimeoutS, metrics: deps.metrics }),
    requireCsrf: can.csrf ? requireCsrf(config.secrets) : skip,
  };
  const common = { nodeId: config.nodeId, mode: config.mode, can, cookieName: config.cookie.name, secrets: config.secrets, metrics: deps.metrics, ...guard };
  // Each concern registers its routes on this one router (no nested routers), hottest first.
  meRoutes(api, common);
  cartRoutes(api, common);
  authRoutes(api, {
    ...common,
    absoluteTimeoutS: config.session.absoluteTimeoutS,
    users: deps.users,
    sessions,
    hashing: createGate(config.hashing),
    devices: deviceCookies({ secrets: config.secrets, secure: config.cookie.secure }),
  });
  sessionsRoutes(api, { ...common, index: sessions.index, limiter: sessions.limiter });
  app.use('/api', api);

  // 3. The demo page (static, no session). After the API, so an API request never costs a
  //    filesystem lookup (profiled: before the API, its stat() was the largest single cost of a read).
  //    No redirect for a directory without its slash: serve-static's answers with a Location that
  //    echoes the request's path and query, and a 16 KiB query made a header too large for nginx's
  //    buffer, which nginx counts as a failure of the node (nginx.conf, proxy_buffer_size).
  if (deps.publicDir) app.use(express.static(deps.publicDir, { maxAge: '1h', index: 'index.html', redirect: false, setHeaders: revalidateHtml }));

  // 4. Everything else is a JSON 404; every error goes through the catalogue.
  app.use(notFound);
  app.use(errorHandler(deps.logger));

  return {
    app,
    internal: internalHandler({ nodeId: config.nodeId, mode: config.mode, registry: deps.metrics.registry, draining: () => draining, storeReady: sessions.ready }),
    sessions,
    startDraining: () => {
      draining = true;
    },
    close: sessions.close,
  };
}

const skip: express.RequestHandler = (_req, _res, next) => next();

/** Pages revalidate on every load (so a deploy shows at once); scripts and styles are cached for an hour. */
function revalidateHtml(res: express.Response, file: string): void {
  if (file.endsWith('.html')) res.setHeader('Cache-Control', 'no-cache');
}
