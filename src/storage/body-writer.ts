import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { BufferPool } from './buffer-pool.ts';

export interface BodyWriteOptions {
  /** Bytes accepted at most; one more fails the write with `tooLarge()` (before it is copied). */
  limit: number;
  tooLarge: () => Error;
  /** Sees every byte once, in order, in place (a hash): whole buffers, before or while they are written. */
  update: (bytes: Buffer) => void;
}

/**
 * Writes a request body to `fh` from offset 0 through two reused buffers of `pool`, and returns the
 * bytes written. Each incoming chunk is copied into the buffer being filled as soon as it arrives
 * and is not referenced afterwards, so it dies in the young generation (./buffer-pool.ts says why
 * that matters); a full buffer is hashed in place while libuv writes it, and the other one fills
 * meanwhile. Only when both are busy (the disk is slower than the socket) does reading wait, which
 * pauses the body: its backpressure, not a queue of chunks here.
 *
 * A body smaller than one pool buffer gets a buffer of its own size instead (many small uploads at
 * once must not take 1 MiB each). Buffers go back to the pool only once no write of theirs is
 * pending, also when the body fails; the caller closes `fh` and removes the file on failure.
 */
export async function writeBody(
  body: Readable,
  fh: FileHandle,
  pool: BufferPool,
  opts: BodyWriteOptions,
): Promise<number> {
  const pooled = opts.limit >= pool.bufferSize;
  const acquire = () => (pooled ? pool.acquire() : Buffer.allocUnsafe(opts.limit));
  let filling: Buffer | undefined;
  let fill = 0;
  /** The other buffer, idle (its write finished) or being written (`writing`). */
  let other: Buffer | undefined;
  let writing: Promise<void> | undefined;
  let written = 0;
  let received = 0;

  /** Starts writing the filled buffer (after the previous write finished) and swaps the two. */
  const flush = async () => {
    if (writing) await writing;
    const buf = filling!;
    const length = fill;
    writing = writeFully(fh, buf, length, written);
    // Settled later by the next flush or the end; not an unhandled rejection meanwhile.
    writing.catch(() => undefined);
    written += length;
    opts.update(length === buf.length ? buf : buf.subarray(0, length));
    filling = other;
    other = buf;
    fill = 0;
  };

  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > opts.limit) throw opts.tooLarge();
      let from = 0;
      while (from < chunk.length) {
        filling ??= acquire();
        const n = chunk.copy(filling, fill, from);
        fill += n;
        from += n;
        if (fill === filling.length) await flush();
      }
    }
    if (fill > 0) await flush();
    await writing;
    return written;
  } finally {
    await writing?.catch(() => undefined);
    if (pooled) {
      if (filling) pool.release(filling);
      if (other) pool.release(other);
    }
  }
}

/** pwrite until all `length` bytes of `buf` are at `position` (a regular file may take fewer). */
async function writeFully(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    done += bytesWritten;
  }
}
