/**
 * Finds the end of one PNG in a byte stream (ffmpeg's `image2pipe` output of the poster frame), so
 * the frame can be used the moment its last byte arrives instead of when ffmpeg exits: the PNG is
 * complete at the end of its IEND chunk. Bytes are kept in one buffer that doubles as it fills
 * (a 4K frame arrives in hundreds of pipe reads), and the frame is a view of it, not a copy.
 */
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export class PngFrameReader {
  private buf = Buffer.alloc(64 * 1024);
  private length = 0;
  /** Offset of the next chunk header not yet walked past. */
  private next = SIGNATURE.length;
  private state: 'reading' | 'done' | 'invalid' = 'reading';

  /** Adds bytes; returns the whole PNG the first time it is complete, otherwise undefined. */
  push(chunk: Buffer): Buffer | undefined {
    if (this.state !== 'reading') return undefined;
    if (this.length + chunk.length > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + chunk.length));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    chunk.copy(this.buf, this.length);
    this.length += chunk.length;
    if (this.length < SIGNATURE.length) return undefined;
    if (!this.buf.subarray(0, SIGNATURE.length).equals(SIGNATURE)) {
      this.state = 'invalid';
      return undefined;
    }
    // Each chunk: length (4 bytes, big-endian), type (4), data (length), CRC (4).
    while (this.next + 8 <= this.length) {
      const end = this.next + 12 + this.buf.readUInt32BE(this.next);
      if (end > this.length) return undefined;
      const type = this.buf.toString('latin1', this.next + 4, this.next + 8);
      this.next = end;
      if (type === 'IEND') {
        // Handed back without a copy (an uncompressed 1080p frame is 6 MB): nothing writes to
        // this buffer any more.
        this.state = 'done';
        const png = this.buf.subarray(0, end);
        this.buf = Buffer.alloc(0);
        return png;
      }
    }
    return undefined;
  }
}
