/**
 * Equal-size buffers reused across uploads (./body-writer.ts). A request body arrives as 64 KiB
 * chunks, each a fresh external buffer; when those chunks are kept until their own fs write
 * completes, V8 sees a steady stream of short-lived external memory and per-chunk stream objects
 * (issue 22 §1: a regime of one full Mark-Compact per ≈ 20 MiB received). Copying each chunk into
 * one of these at once lets the chunk die young, and the pool's buffers themselves are allocated
 * once and live for the process: nothing per chunk reaches the old generation.
 *
 * A buffer belongs to exactly one holder between `acquire` and `release` — that is what keeps two
 * concurrent uploads' bytes apart; releasing a buffer twice or one the pool never gave out throws.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly lent = new Set<Buffer>();
  /** Buffers allocated over the pool's life (reuse keeps this near the peak of concurrent use). */
  allocated = 0;

  constructor(
    /** Bytes per buffer. */
    readonly bufferSize: number,
    /** Idle buffers kept for reuse; more are dropped on release (memory after a burst is bounded). */
    readonly maxIdle: number,
  ) {
    if (!Number.isInteger(bufferSize) || bufferSize <= 0) throw new Error(`bad buffer size: ${bufferSize}`);
  }

  /** An idle buffer, or a new one (its own memory: never a slice of Node's shared pool). */
  acquire(): Buffer {
    let buf = this.free.pop();
    if (buf === undefined) {
      buf = Buffer.allocUnsafeSlow(this.bufferSize);
      this.allocated++;
    }
    this.lent.add(buf);
    return buf;
  }

  /** Gives `buf` back; the caller must not touch it afterwards (nor have a write of it pending). */
  release(buf: Buffer): void {
    if (!this.lent.delete(buf)) throw new Error('buffer released twice, or not from this pool');
    if (this.free.length < this.maxIdle) this.free.push(buf);
  }

  /** Buffers lent out now. */
  get inUse(): number {
    return this.lent.size;
  }

  /** Idle buffers held for reuse. */
  get idle(): number {
    return this.free.length;
  }
}
