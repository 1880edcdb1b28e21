/**
 * Reusable buffers for the originals image jobs read whole.
 *
 * Why: V8 counts every Buffer's bytes as external memory, and a steady stream of fresh
 * multi-megabyte buffers makes it run a full garbage collection every few images, marking the
 * whole server heap each time. Reading originals into a few reused buffers instead cut full GCs
 * per image by more than half and the job's CPU by ≈ 15 ms per 12 MP JPEG (bench:image, see
 * docs/BENCHMARKS.md).
 *
 * A job leases, the store allocates through the lease once it knows the object's size, and the
 * job releases the lease when nothing reads the bytes any more. A buffer is only ever handed out
 * again after its release, and consumers only see views of the bytes actually read, never the
 * stale tail of a reused buffer.
 */

export interface BufferPoolOptions {
  /** Free buffers kept at most (the worker's concurrency: one per busy slot). */
  maxFree: number;
  /** Larger requests get a buffer of their own, never kept. */
  maxBufferBytes: number;
  /** Free buffers are dropped after this long without a lease (an idle worker holds no memory). */
  idleMs: number;
}

/** Sizes are rounded up to this step, so a slightly larger next original still fits. */
const STEP = 1024 * 1024;

export interface BufferLease {
  /** A buffer of at least `size` bytes (at most once per lease; the store calls it). */
  readonly allocate: (size: number) => Buffer;
  /** Gives the buffer back; nothing may read it afterwards. Idempotent. */
  readonly release: () => void;
}

export class BufferPool {
  private readonly free: Buffer[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  /** Buffers created and buffers handed out again (tests and diagnostics). */
  readonly counts = { created: 0, reused: 0 };

  constructor(private readonly opts: BufferPoolOptions) {}

  lease(): BufferLease {
    let held: Buffer | undefined;
    let released = false;
    return {
      allocate: (size) => {
        if (held || released) throw new Error('a buffer lease allocates once');
        held = this.take(size);
        return held;
      },
      release: () => {
        if (released) return;
        released = true;
        if (held) this.give(held);
        held = undefined;
      },
    };
  }

  /** Free buffers held right now, in bytes. */
  get freeBytes(): number {
    return this.free.reduce((sum, b) => sum + b.length, 0);
  }

  private take(size: number): Buffer {
    if (size > this.opts.maxBufferBytes) {
      this.counts.created++;
      return Buffer.allocUnsafe(size);
    }
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i]!.length;
      if (len >= size && (best < 0 || len < this.free[best]!.length)) best = i;
    }
    if (best >= 0) {
      this.counts.reused++;
      return this.free.splice(best, 1)[0]!;
    }
    this.counts.created++;
    return Buffer.allocUnsafe(Math.min(this.opts.maxBufferBytes, Math.ceil(Math.max(size, 1) / STEP) * STEP));
  }

  private give(buf: Buffer): void {
    if (buf.length > this.opts.maxBufferBytes) return;
    this.free.push(buf);
    if (this.free.length > this.opts.maxFree) {
      // Keep the largest: they fit every request the smaller ones fit.
      this.free.sort((a, b) => b.length - a.length);
      this.free.length = this.opts.maxFree;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => (this.free.length = 0), this.opts.idleMs);
    this.idleTimer.unref();
  }
}
