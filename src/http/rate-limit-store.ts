/**
 * A counter store for @fastify/rate-limit that can give a request back.
 *
 * The plugin counts a request when it starts; whether the request then fails is not its concern.
 * Ours is: a request that ends in a 5xx (the database or the object store is down) failed through
 * no fault of the client, and must not spend the client's budget — otherwise a camera retrying
 * through a database restart comes back to 429s for up to a minute. The route's rate-limit key is
 * remembered on the request; `onResponse` refunds it when the status is 5xx.
 *
 * Fixed windows per key, as the plugin's own in-memory store; one map shared by every route (keys
 * carry the bucket, so each limited kind of request still has its own budget).
 */
declare module 'fastify' {
  interface FastifyRequest {
    /** The rate-limit key this request was counted under, if a limit applied. */
    rateLimitKey?: string;
  }
}

interface Window {
  count: number;
  start: number;
  length: number;
}

/** Bound on remembered keys; past it, the oldest window is dropped. */
const MAX_KEYS = 100_000;

export interface RefundableRateLimit {
  /** The `store` option for @fastify/rate-limit. */
  Store: new (options: unknown) => RateLimitStore;
  /** Gives back one request counted under `key` in its current window. */
  refund(key: string): void;
  /** The count under `key` in its current window (tests). */
  count(key: string): number;
  /** Counts one more under `key` (a window of `windowMs` starts if none is open). */
  hit(key: string, windowMs: number): { count: number; ttl: number };
  /** The count under `key` and the milliseconds left in its window, without counting. */
  peek(key: string): { count: number; ttl: number };
}

interface RateLimitStore {
  incr(
    key: string,
    callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
    timeWindow: number,
  ): void;
  child(routeOptions: unknown): RateLimitStore;
}

export function refundableRateLimit(now: () => number = Date.now): RefundableRateLimit {
  const windows = new Map<string, Window>();

  /** Makes room: insertion order is window-start order (a new window re-inserts its key). */
  function evictOldest(): void {
    const oldest = windows.keys().next();
    if (!oldest.done) windows.delete(oldest.value);
  }

  function hit(key: string, timeWindow: number): { count: number; ttl: number } {
    const at = now();
    let w = windows.get(key);
    if (!w || w.start + w.length <= at) {
      if (w) windows.delete(key);
      else if (windows.size >= MAX_KEYS) evictOldest();
      w = { count: 0, start: at, length: timeWindow };
      windows.set(key, w);
    }
    w.count++;
    return { count: w.count, ttl: w.start + w.length - at };
  }

  class Store implements RateLimitStore {
    incr(
      key: string,
      callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
      timeWindow: number,
    ): void {
      const { count, ttl } = hit(key, timeWindow);
      callback(null, { current: count, ttl });
    }

    child(): RateLimitStore {
      return this;
    }
  }

  return {
    Store,
    refund(key) {
      const w = windows.get(key);
      if (w && w.count > 0 && w.start + w.length > now()) w.count--;
    },
    count(key) {
      const w = windows.get(key);
      return w && w.start + w.length > now() ? w.count : 0;
    },
    hit,
    peek(key) {
      const at = now();
      const w = windows.get(key);
      return w && w.start + w.length > at
        ? { count: w.count, ttl: w.start + w.length - at }
        : { count: 0, ttl: 0 };
    },
  };
}
