import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../errors.js';

/** 404 for anything no route matched. */
export const notFound: RequestHandler = (_req, _res, next) => next(new AppError('NOT_FOUND'));

/**
 * Maps body-parser's errors to catalogue codes: by `type` where it sets one, else by status. An
 * error that reading the body raised without a type (a corrupt gzip/deflate/br stream: zlib's
 * error wrapped as a 400) is still the client's fault, never a 500.
 */
function fromBodyParser(err: { type?: string; status?: number; expose?: boolean }): AppError | null {
  switch (err.type) {
    case 'entity.parse.failed':
      return new AppError('BAD_JSON');
    case 'entity.too.large':
      return new AppError('BODY_TOO_LARGE');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('UNSUPPORTED_MEDIA_TYPE');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new AppError('VALIDATION', 'The request body could not be read.');
    default:
      if (typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
        if (err.status === 413) return new AppError('BODY_TOO_LARGE');
        if (err.status === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE');
        return new AppError('BAD_BODY');
      }
      return null;
  }
}

/**
 * The one place errors become responses: `{ error: { code, message } }` with the catalogue's
 * status. Unknown errors are logged with their stack and answered as INTERNAL, without it.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const known = err instanceof AppError ? err : fromBodyParser(err ?? {});
    const appErr = known ?? new AppError('INTERNAL');
    if (!known) logger.error({ reqId: req.id, err }, 'unhandled error');
    else if (appErr.status >= 500) logger.warn({ reqId: req.id, code: appErr.code, cause: String(appErr.cause ?? '') }, appErr.message);
    if (res.headersSent) return res.end();
    if (appErr.extra.retryAfterS !== undefined) res.setHeader('Retry-After', String(appErr.extra.retryAfterS));
    res.status(appErr.status).json({ error: { code: appErr.code, message: appErr.message } });
  };
}
