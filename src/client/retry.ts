/** Exponential backoff with full jitter, honouring Retry-After, cancellable by an AbortSignal. */
import { isAbort, isRetryable, MediaryError, UploadAbortedError } from './errors.ts';

export interface RetryOptions {
  /** Retries after the first attempt (default 6). */
  retries?: number;
  /** First backoff ceiling in ms (default 500); doubles each attempt. */
  baseDelayMs?: number;
  /** Largest backoff in ms (default 30 s); also caps a server's Retry-After. */
  maxDelayMs?: number;
  /** Called before each retry (logging, tests). */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown; what: string }) => void;
}

/** Resolves after `ms`, or rejects with UploadAbortedError when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new UploadAbortedError(undefined, { cause: signal.reason }));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new UploadAbortedError(undefined, { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function backoffDelay(attempt: number, opts: RetryOptions, random = Math.random): number {
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 30_000;
  return Math.round(random() * Math.min(max, base * 2 ** (attempt - 1)));
}

/**
 * Runs `fn` until it succeeds, fails with a final error, or runs out of retries. `fn` gets the
 * attempt number (1-based) so it can refresh what expired (a signed URL) before trying again.
 */
export async function withRetry<T>(
  what: string,
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions & { signal?: AbortSignal; retryIf?: (err: unknown) => boolean } = {},
): Promise<T> {
  const retries = opts.retries ?? 6;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new UploadAbortedError(undefined, { cause: opts.signal.reason });
    try {
      return await fn(attempt);
    } catch (err) {
      if (isAbort(err, opts.signal)) {
        throw err instanceof UploadAbortedError ? err : new UploadAbortedError(undefined, { cause: err });
      }
      const retryable = opts.retryIf ? opts.retryIf(err) : isRetryable(err);
      if (!retryable || attempt > retries) throw err;
      let delayMs = backoffDelay(attempt, opts);
      if (err instanceof MediaryError && err.retryAfterMs !== undefined) {
        delayMs = Math.min(Math.max(delayMs, err.retryAfterMs), opts.maxDelayMs ?? 30_000);
      }
      opts.onRetry?.({ attempt, delayMs, error: err, what });
      await sleep(delayMs, opts.signal);
    }
  }
}
