/**
 * The error catalogue: every error a client can see, with its code and HTTP status.
 * Handlers throw AppError(code); the error handler (http/errors.ts) renders it as
 * `{ error: { code, message } }`. Nothing else reaches a client: unknown errors
 * become INTERNAL without a stack trace.
 */
export const catalogue = {
  BAD_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  BAD_BODY: { status: 400, message: 'The request body could not be decoded (check Content-Encoding).' },
  BODY_TOO_LARGE: { status: 400, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send the request body as application/json.' },
  VALIDATION: { status: 400, message: 'The request is invalid.' },
  BAD_CREDENTIALS: { status: 401, message: 'Invalid username or password.' },
  UNAUTHENTICATED: { status: 401, message: 'Not logged in, or the session has ended.' },
  CSRF: { status: 403, message: 'Missing or invalid X-CSRF-Token header.' },
  CROSS_SITE: { status: 403, message: 'Cross-site request refused.' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  RATE_LIMITED: { status: 429, message: 'Too many failed logins; try again later.' },
  STORE_UNAVAILABLE: { status: 503, message: 'The session store is unavailable; try again shortly.' },
  DRAINING: { status: 503, message: 'This node is shutting down.' },
  BUSY: { status: 503, message: 'Too many logins in progress on this node; try again shortly.' },
  SESSION_TOO_LARGE: { status: 413, message: 'The session would no longer fit in its cookie; the change was not made.' },
  NOT_IN_MODE: { status: 501, message: 'This session mode cannot do that.' },
  INTERNAL: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof catalogue;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly extra: { retryAfterS?: number; cause?: unknown } = {},
  ) {
    super(message ?? catalogue[code].message, { cause: extra.cause });
    this.name = 'AppError';
    this.status = catalogue[code].status;
  }
}

/** The store could not be reached: 503 with Retry-After, never a hang or an anonymous fallback. */
export const storeUnavailable = (cause: unknown) => new AppError('STORE_UNAVAILABLE', undefined, { retryAfterS: 1, cause });

/** A failure on the way to a store: one already in the catalogue as it is (a session destroyed meanwhile, an unconfirmed WAIT), anything else STORE_UNAVAILABLE. */
export const asStoreError = (err: unknown): AppError => (err instanceof AppError ? err : storeUnavailable(err));
