/**
 * HEIC/HEIF through Debian's `heif-convert` (libheif-examples): prebuilt sharp cannot decode HEVC.
 * Implements `HeifDecoder` (src/processing/ports.ts); the converter's path is a constructor
 * parameter (config: HEIF_CONVERT).
 * libheif applies the HEIF transforms (irot/imir), so the JPEG it writes is already upright.
 *
 * The caller checks the pixel limit from the header first (`probeHeif`), so heif-convert only
 * runs on images within it. Defence in depth, should the header lie about what the bitstream
 * holds: under util-linux `prlimit`, the converter's address space and the size of each file it
 * writes are capped in proportion to the pixel limit, and the JPEG's size is checked before it
 * is read.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toError } from '../../errors.ts';
import {
  HeifDecodeError,
  HeifUnavailableError,
  type HeifConvertOptions,
  type HeifDecoder,
} from '../../processing/ports.ts';
import { scratchTag } from '../../storage/scratch.ts';

export { HeifDecodeError, HeifUnavailableError };

/** Work directories are `<os tmp>/mediary-heif-<owner tag><random>` (src/storage/scratch.ts). */
export const HEIF_WORK_PREFIX = 'mediary-heif-';

// Measured with Debian's heif-convert 1.15 (8-bit 4:2:0): ~36 MiB of address space to start,
// then 5–7 bytes a pixel; 10-bit or alpha costs more. These caps leave a wide margin: they stop a
// bitstream far larger than its header, not a legitimate image.
const AS_BASE_BYTES = 256 * 1024 * 1024;
const AS_BYTES_PER_PIXEL = 24;
// A JPEG at q92 takes ~1–2 bytes a pixel even for noise.
const OUTPUT_BASE_BYTES = 1024 * 1024;
const OUTPUT_BYTES_PER_PIXEL = 4;

/** The caps for a pixel limit: address space of the converter, and bytes of each file it writes. */
export function heifLimits(maxPixels: number): { addressSpace: number; outputBytes: number } {
  return {
    addressSpace: AS_BASE_BYTES + AS_BYTES_PER_PIXEL * maxPixels,
    outputBytes: OUTPUT_BASE_BYTES + OUTPUT_BYTES_PER_PIXEL * maxPixels,
  };
}

export class HeifConverter implements HeifDecoder {
  /** Set once the converter has been seen to run; an absence is never cached (see isAvailable). */
  private seen = false;
  private limiter: Promise<boolean> | undefined;

  constructor(
    private readonly command: string,
    private readonly timeoutMs = 120_000,
    private readonly prlimit = 'prlimit',
  ) {}

  /** Whether util-linux `prlimit` runs here (checked once); without it the caps are not applied. */
  canLimit(): Promise<boolean> {
    this.limiter ??= new Promise((resolve) => {
      execFile(this.prlimit, ['--version'], { timeout: 10_000 }, (err) => resolve(!err));
    });
    return this.limiter;
  }

  /**
   * Whether the converter runs here. Checked per job like ffmpeg, so installing it takes effect
   * without a restart: a presence is remembered (a later ENOENT forgets it), an absence is
   * checked again next time (one failed exec, cheap).
   */
  async isAvailable(): Promise<boolean> {
    if (this.seen) return true;
    this.seen = await new Promise<boolean>((resolve) => {
      execFile(this.command, ['--help'], { timeout: 10_000 }, (err) => {
        // heif-convert --help exits non-zero on some versions; only "not found" means absent.
        resolve(!(err && (err as NodeJS.ErrnoException).code === 'ENOENT'));
      });
    });
    return this.seen;
  }

  private gone(): HeifUnavailableError {
    this.seen = false;
    return new HeifUnavailableError();
  }

  /**
   * HEIC/HEIF bytes → JPEG bytes (the primary image, transforms applied). Only for an image whose
   * header passed `probeHeif`: heif-convert decodes every top-level image in full.
   */
  async toJpeg(input: Buffer, signal: AbortSignal, opts: HeifConvertOptions): Promise<Buffer> {
    if (!(await this.isAvailable())) throw new HeifUnavailableError();
    const limits = heifLimits(opts.maxPixels);
    const limited = await this.canLimit();
    const dir = await mkdtemp(path.join(os.tmpdir(), HEIF_WORK_PREFIX + scratchTag()));
    try {
      const name = randomUUID();
      const src = path.join(dir, `${randomUUID()}.heic`);
      const out = path.join(dir, `${name}.jpg`);
      await writeFile(src, input, { mode: 0o600 });
      const convert = [this.command, '--quiet', '-q', '92', src, out];
      const [file, ...args] = limited
        ? [this.prlimit, `--as=${limits.addressSpace}`, `--fsize=${limits.outputBytes}`, '--', ...convert]
        : convert;
      await new Promise<void>((resolve, reject) => {
        execFile(
          file!,
          args,
          { timeout: this.timeoutMs, signal, maxBuffer: 1024 * 1024 },
          (err, _stdout, stderr) => {
            if (!err) return resolve();
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(this.gone());
            // prlimit reports a converter it cannot execute with 127.
            if (limited && err.code === 127) return reject(this.gone());
            if (signal.aborted) return reject(toError(err));
            if (err.signal === 'SIGXFSZ') {
              return reject(
                new HeifDecodeError('The HEIC image cannot be decoded: its output is too large.'),
              );
            }
            const why =
              (stderr || err.message).split('\n').find((l) => l.trim()) ??
              (err.signal ? `killed by ${err.signal}` : 'unknown error');
            reject(new HeifDecodeError(`The HEIC image cannot be decoded: ${why.trim().slice(0, 200)}`));
          },
        );
      });
      // With several top-level images, heif-convert writes <name>-1.jpg, <name>-2.jpg, …
      const wanted = opts.images > 1 ? path.join(dir, `${name}-${opts.primary + 1}.jpg`) : out;
      let size: number;
      try {
        size = (await stat(wanted)).size;
      } catch {
        throw new HeifDecodeError('The HEIC image cannot be decoded: the converter wrote no image.');
      }
      if (size > limits.outputBytes) {
        throw new HeifDecodeError('The HEIC image cannot be decoded: its output is too large.');
      }
      return await readFile(wanted);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
