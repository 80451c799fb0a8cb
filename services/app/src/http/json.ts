import type { RequestHandler } from 'express';
import { AppError } from '../errors.js';

/**
 * A request that has a body must declare it as JSON. Without this, a body sent as text/plain
 * (which a cross-site form can do without a CORS preflight) would simply be ignored.
 */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (hasBody && !req.is('application/json')) return next(new AppError('UNSUPPORTED_MEDIA_TYPE'));
  next();
};
