/**
 * Bytes of image-decode memory one worker process may hold at once (WORKER_MEMORY_BUDGET_BYTES).
 * A job reserves its decode estimate before decoding and releases it when its render has settled;
 * a job that does not fit waits (first come, first served, so a large image is not starved by
 * small ones). Jobs still run up to PROCESSING_CONCURRENCY at once; the budget narrows that when
 * the images are large.
 */
export class MemoryBudget {
  private used = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly totalBytes: number) {}

  get reservedBytes(): number {
    return this.used;
  }

  /**
   * Waits until `bytes` fit (a request larger than the whole budget waits for an empty budget)
   * and returns the release function (idempotent). Rejects with the signal's reason if aborted.
   */
  async reserve(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const want = Math.min(Math.max(0, bytes), this.totalBytes);
    signal?.throwIfAborted();
    if (this.waiting.length === 0 && this.used + want <= this.totalBytes) {
      this.used += want;
    } else {
      await new Promise<void>((resolve, reject) => {
        const entry = {
          bytes: want,
          grant: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          this.drain();
          reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
        };
        this.waiting.push(entry);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= want;
      this.drain();
    };
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.bytes <= this.totalBytes) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }
}
