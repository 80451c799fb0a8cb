import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
    }
  }
}

/**
 * Per-request context: the request id (nginx's X-Request-Id, or a new one), `X-Served-By`,
 * one access-log line and the HTTP metrics. Metrics are labelled by route *template*
 * (`req.route.path`), or `unmatched`, never by raw URL.
 */
export function requestContext(opts: { nodeId: string; logger: Logger; metrics: Metrics }): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    req.id = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Served-By', opts.nodeId);
    res.setHeader('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = req.route ? `${res.locals.routeBase ?? ''}${req.route.path}` : 'unmatched';
      opts.metrics.httpRequests.inc({ route, method: req.method, status: String(res.statusCode) });
      opts.metrics.httpDuration.observe({ route, method: req.method }, seconds);
      opts.logger.info({ reqId: req.id, method: req.method, route, url: req.originalUrl.slice(0, 200), status: res.statusCode, ms: Math.round(seconds * 10000) / 10 }, 'request');
    });
    next();
  };
}
