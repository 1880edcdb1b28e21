/**
 * "The object store is unavailable right now" (retry later), told apart from answers about the
 * request itself (404, 403, a rejected part …). The HTTP error handler maps these to
 * `503 service_unavailable` with Retry-After, as it does for an unreachable database.
 */

/** A store call that ran past its deadline (S3_OPERATION_TIMEOUT_MS) across all its attempts. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Socket-level failures: the store is down, restarting, or unreachable. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** S3 error codes that mean "not now" rather than "not this". */
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ServiceUnavailable',
  'SlowDown',
  'InternalError',
]);

export function isStoreUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; $metadata?: { httpStatusCode?: number } };
  if (TRANSIENT_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  // An AWS SDK error (it carries $metadata): a 5xx answer, or no HTTP answer at all.
  if (e.$metadata !== undefined) {
    const status = e.$metadata.httpStatusCode;
    return status === undefined || status >= 500;
  }
  return false;
}

/**
 * The disk (or the user's quota) is full: ENOSPC / EDQUOT from a write, anywhere in the cause
 * chain. The server's problem, not the client's: the HTTP error handler answers
 * `507 insufficient_storage` with Retry-After and logs it as an error.
 */
export function isStorageFull(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}
