import express, { type Request, type RequestHandler } from 'express';
import { AppError } from '../errors.js';

/**
 * The API's bodies: JSON only, parsed by express.json. A request that has a body must declare it
 * as JSON: without this, a body sent as text/plain (which a cross-site form can do without a CORS
 * preflight) would simply be ignored. A request without one (every GET) goes straight on: the
 * parser would only find that out itself (profiled: about 10 µs of a read, `npm run bench -- --profile`).
 */
export function jsonBody(opts: { limit: string }): RequestHandler {
  const parse = express.json({ limit: opts.limit, strict: true });
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    if (!req.is('application/json')) return next(new AppError('UNSUPPORTED_MEDIA_TYPE'));
    parse(req, res, next);
  };
}

/**
 * A Transfer-Encoding, or a Content-Length other than 0. (A bodiless POST from fetch() says
 * `Content-Length: 0` and often no Content-Type: it has nothing to refuse, and its body is
 * undefined, as for a GET.)
 */
const hasBody = (req: Request): boolean => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
