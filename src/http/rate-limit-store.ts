/**
 * A counter store for @fastify/rate-limit that can give a request back.
 *
 * The plugin counts a request when it starts; whether the request then fails is not its concern.
 * Ours is: a request that ends in a 5xx (the database or the object store is down) failed through
 * no fault of the client, and must not spend the client's budget — otherwise a camera retrying
 * through a database restart comes back to 429s for up to a minute. The route's rate-limit key is
 * remembered on the request; `onResponse` refunds it when the status is 5xx.
 *
 * Fixed windows per key; one set of windows shared by every route (keys carry the bucket, so each
 * limited kind of request still has its own budget). Where the windows live is the caller's
 * choice (`RateWindows`): in Postgres (`src/db/rate-windows.ts`, the default: every API process
 * sharing the database spends one budget) or in this process' memory (`memoryRateWindows`).
 */
import type { WindowHit } from '../db/rate-windows.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The rate-limit key this request was counted under, if a limit applied. */
    rateLimitKey?: string;
  }
}

export type { WindowHit };

/** Fixed-window counters: `hit` counts one more (a window of `windowMs` starts if none is open). */
export interface RateWindows {
  hit(key: string, windowMs: number): Promise<WindowHit>;
  /** Gives back one request counted under `key` in its current window. */
  refund(key: string): Promise<void>;
}

/** Bound on remembered keys; past it, the oldest window is dropped. */
const MAX_KEYS = 100_000;

export interface RefundableRateLimit {
  /** The `store` option for @fastify/rate-limit. */
  Store: new (options: unknown) => RateLimitStore;
  /** Gives back one request counted under `key` in its current window. */
  refund(key: string): Promise<void>;
  /** Counts one more under `key` (a window of `windowMs` starts if none is open). */
  hit(key: string, windowMs: number): Promise<WindowHit>;
  /**
   * The count under `key` as this process last saw it (its own hits' answers) and the time left
   * in that window, without a round trip. With shared windows it can be behind by what other
   * processes counted since; their next hit brings it up to date.
   */
  peek(key: string): WindowHit;
}

interface RateLimitStore {
  incr(
    key: string,
    callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
    timeWindow: number,
  ): void;
  child(routeOptions: unknown): RateLimitStore;
}

/** Insertion-ordered map bounded to MAX_KEYS: a full map drops its oldest entry. */
function boundedSet<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_KEYS) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}

/** Windows in this process' memory: limits hold per process (RATE_LIMIT_STORE=memory). */
export function memoryRateWindows(
  now: () => number = Date.now,
): RateWindows & { count(key: string): number } {
  const windows = new Map<string, { count: number; end: number }>();
  return {
    hit(key, windowMs) {
      const at = now();
      let w = windows.get(key);
      if (!w || w.end <= at) {
        // A new window re-inserts its key, so insertion order is window-start order.
        w = { count: 0, end: at + windowMs };
        boundedSet(windows, key, w);
      }
      w.count++;
      return Promise.resolve({ count: w.count, ttl: w.end - at });
    },
    refund(key) {
      const w = windows.get(key);
      if (w && w.count > 0 && w.end > now()) w.count--;
      return Promise.resolve();
    },
    count(key) {
      const w = windows.get(key);
      return w && w.end > now() ? w.count : 0;
    },
  };
}

export function refundableRateLimit(windows: RateWindows, now: () => number = Date.now): RefundableRateLimit {
  // What this process last learnt of each key's window (for `peek`).
  const seen = new Map<string, { count: number; end: number }>();

  async function hit(key: string, windowMs: number): Promise<WindowHit> {
    const r = await windows.hit(key, windowMs);
    boundedSet(seen, key, { count: r.count, end: now() + r.ttl });
    return r;
  }

  class Store implements RateLimitStore {
    incr(
      key: string,
      callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
      timeWindow: number,
    ): void {
      hit(key, timeWindow).then(
        ({ count, ttl }) => callback(null, { current: count, ttl }),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    }

    child(): RateLimitStore {
      return this;
    }
  }

  return {
    Store,
    hit,
    async refund(key) {
      const s = seen.get(key);
      if (s && s.count > 0) s.count--;
      await windows.refund(key);
    },
    peek(key) {
      const at = now();
      const s = seen.get(key);
      return s && s.end > at ? { count: s.count, ttl: s.end - at } : { count: 0, ttl: 0 };
    },
  };
}
