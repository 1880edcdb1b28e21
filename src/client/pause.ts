/** Pausing an upload: sending stops (in-flight requests are dropped), the session stays open. */
import { UploadAbortedError } from './errors.ts';

export class PauseGate {
  private isPaused = false;
  private waiters: (() => void)[] = [];
  private readonly pauseListeners = new Set<() => void>();

  get paused(): boolean {
    return this.isPaused;
  }

  pause(): void {
    if (this.isPaused) return;
    this.isPaused = true;
    for (const fn of [...this.pauseListeners]) fn();
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves at once when running, else on resume; rejects when `signal` fires first. */
  wait(signal?: AbortSignal): Promise<void> {
    if (!this.isPaused) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new UploadAbortedError(undefined, { cause: signal.reason }));
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new UploadAbortedError(undefined, { cause: signal?.reason }));
      };
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Calls `fn` when paused; returns the unsubscribe function. */
  onPause(fn: () => void): () => void {
    this.pauseListeners.add(fn);
    return () => this.pauseListeners.delete(fn);
  }
}
