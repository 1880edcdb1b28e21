/**
 * HEIC/HEIF → JPEG with libheif compiled to WebAssembly (npm `libheif-js`): the fallback when
 * Debian's heif-convert is not installed (tools.ts chooses). Same port (HeifDecoder) as heif.ts: only for
 * an image whose header passed `probeHeif`, the primary image with its transforms (irot/imir)
 * applied, the Exif block carried into the JPEG.
 *
 * The decode runs in a worker thread of its own (heif-wasm-worker.mjs), so a cancel or the time
 * budget stops it at once (the thread is terminated, its wasm memory freed). Limits: the pixel
 * limit is checked again on the decoded size before any pixel is decoded; the RGBA buffer is
 * 4 bytes a pixel of an image within that limit. Unlike heif-convert, only the primary image
 * is decoded.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import {
  HeifDecodeError,
  HeifUnavailableError,
  type HeifConvertOptions,
  type HeifDecoder,
} from '../../processing/ports.ts';

/** The JPEG quality heif-convert is run with (heif.ts). */
const JPEG_QUALITY = 92;
/** An APP1 segment holds at most 65,535 bytes, its length field and "Exif\0\0" included. */
const MAX_EXIF_BYTES = 65_535 - 2 - 6;

/** Plain JavaScript, so the thread needs no loader (see the file). */
const WORKER = new URL('./heif-wasm-worker.mjs', import.meta.url);

/** What the worker thread is given. */
interface WasmDecodeRequest {
  input: Uint8Array;
  maxPixels: number;
}

/** What the worker thread answers. */
type WasmDecodeReply =
  | { ok: true; width: number; height: number; rgba: Uint8Array; exif: Uint8Array | null }
  | { ok: false; reason: string };

/** A JPEG with the Exif block (TIFF header first) inserted as APP1 right after SOI. */
export function withExif(jpeg: Buffer, tiff: Uint8Array | null): Buffer {
  if (!tiff || tiff.length === 0 || tiff.length > MAX_EXIF_BYTES) return jpeg;
  const header = Buffer.alloc(10);
  header.writeUInt16BE(0xffe1, 0);
  header.writeUInt16BE(2 + 6 + tiff.length, 2);
  header.write('Exif\0\0', 4, 'latin1');
  return Buffer.concat([jpeg.subarray(0, 2), header, tiff, jpeg.subarray(2)]);
}

export class WasmHeifDecoder implements HeifDecoder {
  private available: boolean | undefined;

  constructor(private readonly timeoutMs = 120_000) {}

  /** Whether libheif-js is installed (checked once: it cannot appear without a restart anyway). */
  async isAvailable(): Promise<boolean> {
    if (this.available === undefined) {
      try {
        createRequire(import.meta.url).resolve('libheif-js/package.json');
        this.available = true;
      } catch {
        this.available = false;
      }
    }
    return this.available;
  }

  async toJpeg(input: Buffer, signal: AbortSignal, opts: HeifConvertOptions): Promise<Buffer> {
    if (!(await this.isAvailable())) throw new HeifUnavailableError();
    signal.throwIfAborted();
    const reply = await this.decode(input, signal, opts.maxPixels);
    if (!reply.ok) {
      throw new HeifDecodeError(`The HEIC image cannot be decoded: ${reply.reason.slice(0, 200)}`);
    }
    const jpeg = await sharp(reply.rgba, {
      raw: { width: reply.width, height: reply.height, channels: 4 },
      limitInputPixels: opts.maxPixels,
    })
      .removeAlpha()
      .jpeg({ quality: JPEG_QUALITY })
      .toBuffer();
    signal.throwIfAborted();
    return withExif(jpeg, reply.exif);
  }

  private decode(input: Buffer, signal: AbortSignal, maxPixels: number): Promise<WasmDecodeReply> {
    const request: WasmDecodeRequest = { input: new Uint8Array(input), maxPixels };
    return new Promise<WasmDecodeReply>((resolve, reject) => {
      const worker = new Worker(WORKER, { workerData: request });
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        void worker.terminate();
        fn();
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(new HeifDecodeError(`The HEIC image cannot be decoded within ${this.timeoutMs} ms.`)),
          ),
        this.timeoutMs,
      );
      const onAbort = () => finish(() => reject(signal.reason as Error));
      signal.addEventListener('abort', onAbort, { once: true });
      worker.once('message', (reply: WasmDecodeReply) => finish(() => resolve(reply)));
      worker.once('error', (err) =>
        finish(() => reject(new HeifDecodeError(`The HEIC image cannot be decoded: ${err.message}`))),
      );
      worker.once('exit', (code) =>
        finish(() => reject(new HeifDecodeError(`The HEIC decoder stopped (exit code ${code}).`))),
      );
    });
  }
}
