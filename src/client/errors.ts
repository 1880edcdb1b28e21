/** Errors the SDK throws, and the rule for which of them a retry can cure. */

/** An HTTP error answer from the API or the store: `{ error: { code, message, details } }` when JSON. */
export class MediaryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    /** From `Retry-After`, in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'MediaryError';
  }
}

/** Thrown when the caller's AbortSignal fires; `name` is `AbortError` like fetch's. */
export class UploadAbortedError extends Error {
  constructor(message = 'The upload was aborted.', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value), { cause: value });
}

export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  return err instanceof Error && err.name === 'AbortError';
}

/**
 * Network failures, 408, 429 and 5xx are worth retrying, and so is `409 upload_in_progress`: the
 * server is still reading an earlier request to the same URL (a connection that dropped mid-body
 * is noticed only when its idle timeout or end arrives). Other HTTP answers are final.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof MediaryError) {
    return err.status === 408 || err.status === 429 || err.status >= 500 || err.code === 'upload_in_progress';
  }
  return !(err instanceof Error && err.name === 'AbortError');
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Builds a MediaryError from a response status, headers and body text. */
export function errorFromResponse(
  status: number,
  bodyText: string,
  retryAfter: string | null | undefined,
  what: string,
): MediaryError {
  let code = `http_${status}`;
  let message = `${what}: HTTP ${status}`;
  let details: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(bodyText) as {
      error?: { code?: unknown; message?: unknown; details?: unknown };
    };
    if (parsed.error && typeof parsed.error.code === 'string') {
      code = parsed.error.code;
      if (typeof parsed.error.message === 'string') message = `${what}: ${parsed.error.message}`;
      if (parsed.error.details && typeof parsed.error.details === 'object') {
        details = parsed.error.details as Record<string, unknown>;
      }
    }
  } catch {
    // Not JSON (a store's XML error, a proxy's HTML page): keep the generic message.
    if (bodyText && bodyText.length < 500) message = `${what}: HTTP ${status} ${bodyText.trim()}`;
  }
  return new MediaryError(status, code, message, details, parseRetryAfter(retryAfter));
}
