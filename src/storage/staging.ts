import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Sha256State, type Sha256Batches } from './sha256-offload.ts';

/** Bytes gathered before one write(2): fewer, larger writes for the 64 KiB chunks of a body. */
const WRITE_BATCH = 1024 * 1024;

/**
 * The staging files of one upload that arrives in pieces (a tus upload): byte `pos` of the upload
 * lives in part file `partOf(pos)` at `pos - partStart(n)`. `partSize` 0 means one file for the
 * whole upload (the local store publishes it by a hard link); otherwise one file per store part,
 * removed once the part is stored. Writes are positional, so repeating a range rewrites it.
 */
export class StagingFiles {
  private readonly open = new Map<number, FileHandle>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingPos = 0;
  /** The batch being written (then the ones chained behind it); settled when none is. */
  private tail: Promise<void> = Promise.resolve();
  /**
   * Called with each batch once it is written, in order, and the upload position after it (the
   * caller hashes written bytes off the event loop; the buffers are not used here afterwards).
   */
  onWritten: ((bufs: Buffer[], end: number) => void) | undefined;

  constructor(
    private readonly dir: string,
    private readonly id: string,
    private readonly partSize: number,
  ) {}

  partOf(pos: number): number {
    return this.partSize === 0 ? 1 : Math.floor(pos / this.partSize) + 1;
  }

  partStart(n: number): number {
    return this.partSize === 0 ? 0 : (n - 1) * this.partSize;
  }

  file(n: number): string {
    return path.join(this.dir, this.partSize === 0 ? this.id : `${this.id}.${n}`);
  }

  /**
   * Queues `chunk` as the bytes at `pos` (contiguous with the previous call), writing in batches:
   * one batch is written (in libuv's pool) while the next gathers, so the caller hashes and
   * receives the next bytes meanwhile. Resolves once at most one batch is in flight; a write error
   * surfaces from a later call (write, sync).
   */
  async write(pos: number, chunk: Buffer): Promise<void> {
    if (this.pendingBytes === 0) this.pendingPos = pos;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= WRITE_BATCH) {
      const previous = this.tail;
      this.enqueue();
      await previous;
    }
  }

  /**
   * Writes what is queued and fsyncs every file written since the last sync: everything passed
   * to `write` before this call is durable when it resolves (later writes may be too).
   */
  async sync(): Promise<void> {
    this.enqueue();
    await this.tail;
    for (const fh of this.open.values()) await fh.datasync();
  }

  async close(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    // A batch still being written (the caller failed meanwhile) must end before its handle closes.
    await this.tail.catch(() => undefined);
    const handles = [...this.open.values()];
    this.open.clear();
    await Promise.all(handles.map((fh) => fh.close().catch(() => undefined)));
  }

  /** Chains the pending bytes behind the batch being written (batches are written in order). */
  private enqueue(): void {
    if (this.pendingBytes === 0) return;
    const bufs = this.pending;
    const pos = this.pendingPos;
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = this.tail.then(() => this.writeBatch(pos, bufs));
    // Awaited by the next write/sync/close; not an unhandled rejection meanwhile.
    this.tail.catch(() => undefined);
  }

  private async writeBatch(start: number, bufs: Buffer[]): Promise<void> {
    let pos = start;
    let rest = bufs;
    while (rest.length > 0) {
      const n = this.partOf(pos);
      const fh = await this.handle(n);
      // The buffers that fit in part n (a buffer crossing its end is split).
      const room = this.partSize === 0 ? Infinity : this.partStart(n + 1) - pos;
      const piece: Buffer[] = [];
      let bytes = 0;
      while (rest.length > 0 && bytes < room) {
        const b = rest[0]!;
        if (bytes + b.length <= room) {
          piece.push(b);
          bytes += b.length;
          rest = rest.slice(1);
        } else {
          const cut = room - bytes;
          piece.push(b.subarray(0, cut));
          bytes += cut;
          rest = [b.subarray(cut), ...rest.slice(1)];
        }
      }
      await writeAllAt(fh, piece, bytes, pos - this.partStart(n));
      pos += bytes;
    }
    this.onWritten?.(bufs, pos);
  }

  private async handle(n: number): Promise<FileHandle> {
    let fh = this.open.get(n);
    if (!fh) {
      await mkdir(this.dir, { recursive: true });
      // Read-write, created when missing, never truncated, not O_APPEND (writes are positional).
      fh = await open(this.file(n), constants.O_RDWR | constants.O_CREAT, 0o640);
      this.open.set(n, fh);
    }
    return fh;
  }

  /** Size of part file `n`; undefined when it does not exist. */
  async size(n: number): Promise<number | undefined> {
    const s = await stat(this.file(n)).catch(() => undefined);
    return s?.size;
  }

  async truncate(n: number, length: number): Promise<void> {
    await truncate(this.file(n), length);
  }

  read(n: number): Readable {
    return createReadStream(this.file(n));
  }

  /** SHA-256 state over the first `bytes` of part file `n` (rebuilding a hash lost in a restart). */
  hashPrefix(n: number, bytes: number): Promise<Sha256Batches> {
    return Sha256State.ofFile(this.file(n), bytes);
  }

  async remove(n: number): Promise<void> {
    await rm(this.file(n), { force: true });
  }

  /** Removes every staging file of this upload. */
  async removeAll(): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((name) => name === this.id || name.startsWith(`${this.id}.`))
        .map((name) => rm(path.join(this.dir, name), { force: true })),
    );
  }

  /** Part numbers above `n` that have a file (leftovers of a PATCH that was not committed). */
  async partsAbove(n: number): Promise<number[]> {
    if (this.partSize === 0) return [];
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names
      .filter((name) => name.startsWith(`${this.id}.`))
      .map((name) => Number(name.slice(this.id.length + 1)))
      .filter((k) => Number.isInteger(k) && k > n);
  }
}

/** writev(2) of `bufs` (`bytes` in all) at `pos`, repeated for what a short write left. */
async function writeAllAt(fh: FileHandle, bufs: Buffer[], bytes: number, pos: number): Promise<void> {
  let { bytesWritten } = await fh.writev(bufs, pos);
  if (bytesWritten === bytes) return;
  const rest = Buffer.concat(bufs, bytes);
  while (bytesWritten < bytes) {
    const r = await fh.write(rest, bytesWritten, bytes - bytesWritten, pos + bytesWritten);
    bytesWritten += r.bytesWritten;
  }
}
