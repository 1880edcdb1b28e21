/**
 * HEIC/HEIF through Debian's `heif-convert` (libheif-examples): prebuilt sharp cannot decode HEVC.
 * libheif applies the HEIF transforms (irot/imir), so the JPEG it writes is already upright.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toError } from '../errors.ts';

export class HeifUnavailableError extends Error {
  constructor() {
    super('HEIC is not supported on this installation.');
    this.name = 'HeifUnavailableError';
  }
}

export class HeifDecodeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HeifDecodeError';
  }
}

export class HeifConverter {
  private available: Promise<boolean> | undefined;

  constructor(
    private readonly command: string,
    private readonly timeoutMs = 120_000,
  ) {}

  /** Whether the converter runs here (checked once). */
  isAvailable(): Promise<boolean> {
    this.available ??= new Promise((resolve) => {
      execFile(this.command, ['--help'], { timeout: 10_000 }, (err) => {
        // heif-convert --help exits non-zero on some versions; only "not found" means absent.
        resolve(!(err && (err as NodeJS.ErrnoException).code === 'ENOENT'));
      });
    });
    return this.available;
  }

  /** HEIC/HEIF bytes → JPEG bytes (the primary image, transforms applied). */
  async toJpeg(input: Buffer, signal: AbortSignal): Promise<Buffer> {
    if (!(await this.isAvailable())) throw new HeifUnavailableError();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mediary-heif-'));
    try {
      const src = path.join(dir, `${randomUUID()}.heic`);
      const out = path.join(dir, `${randomUUID()}.jpg`);
      await writeFile(src, input, { mode: 0o600 });
      await new Promise<void>((resolve, reject) => {
        execFile(
          this.command,
          ['--quiet', '-q', '92', src, out],
          { timeout: this.timeoutMs, signal, maxBuffer: 1024 * 1024 },
          (err, _stdout, stderr) => {
            if (!err) return resolve();
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new HeifUnavailableError());
            if (signal.aborted) return reject(toError(err));
            const why = (stderr || err.message).split('\n').find((l) => l.trim()) ?? 'unknown error';
            reject(new HeifDecodeError(`The HEIC image cannot be decoded: ${why.trim().slice(0, 200)}`));
          },
        );
      });
      return await readFile(out);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
