/**
 * The image job: original → integrity and type check → (HEIC conversion) → one decode → upright,
 * stripped variants + placeholder + EXIF summary + GPS → READY.
 *
 * Expected outcomes (the bytes are not what was declared, not decodable, too large, HEIC without a
 * converter) mark the media FAILED and return; the job is not retried. Anything else (store or
 * database trouble) throws, and the queue retries with backoff. A HEIC's pixel limit is checked
 * from its header before the converter decodes anything.
 */
import { createHash } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';
import { rgbaToThumbHash } from 'thumbhash';
import type { ProcessingConfig } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import { catalogEntry } from '../media/catalog.ts';
import type { MediaRecord } from '../media/repo.ts';
import { ObjectTooLargeError, type ObjectStore } from '../storage/types.ts';
import { BufferPool, type BufferLease } from './buffer-pool.ts';
import { readExifOf } from './exif.ts';
import type { MemoryBudget } from './memory-budget.ts';
import { HeifDecodeError, HeifUnavailableError } from './heif.ts';
import type { HeifDecoder } from './tools.ts';
import * as repo from './repo.ts';
import {
  exifBlock,
  ImageDecodeError,
  probeHeif,
  renderVariants,
  type RenderedVariant,
  type VariantFormat,
} from './sharp-imaging.ts';
import type { JobContext, JobOutcome } from './worker.ts';

/** Longest-edge sizes of the variants; the variant's name is its size. */
export const VARIANT_SIZES = [1200, 600, 300, 150] as const;

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif']);
const HEIF_TYPES = new Set(['image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence']);

/** An outcome the client must see; retrying would not change it. */
export class ProcessingFailure extends Error {
  constructor(
    readonly code: 'integrity' | 'type_mismatch' | 'unsupported_type' | 'decode_failed' | 'image_too_large',
    message: string,
  ) {
    super(message);
    this.name = 'ProcessingFailure';
  }
}

/** The original is missing from the store: may be eventual consistency, so it is retried. */
export class OriginalMissingError extends Error {
  override readonly name = 'OriginalMissingError';
}

/** What a client may read about an attempt's error: our own messages, never internals. */
export function publicMessage(err: Error): string {
  // By name: dead letters rebuild the error from the job's stored output.
  if (['OriginalMissingError', 'JobTimeoutError', 'WorkerLostError'].includes(err.name)) return err.message;
  return 'A temporary error interrupted processing.';
}

export interface ImageJobDeps {
  pool: Pool;
  store: ObjectStore;
  heif: HeifDecoder;
  config: Pick<ProcessingConfig, 'variantFormat' | 'maxPixels' | 'maxDecodeBytes' | 'concurrency'>;
  /** The worker's decode-memory budget (shared by its image jobs); none: no waiting. */
  budget?: MemoryBudget;
}

/** Originals up to this size are read into reused buffers (see buffer-pool.ts); larger ones into their own. */
const POOLED_ORIGINAL_BYTES = 32 * 1024 * 1024;

/** One timed step of an image job (`performance.now()` clock), as published on {@link IMAGE_JOB_STEPS}. */
export interface ImageJobStep {
  mediaId: string;
  step: string;
  start: number;
  end: number;
}

/**
 * Step timings of image jobs (the benchmark subscribes). Publishing costs nothing while nobody
 * subscribes.
 */
export const IMAGE_JOB_STEPS = diagnostics_channel.channel('mediary:image-job-step');

export const variantKey = (mediaId: string, sha256: string, format: VariantFormat) =>
  `variants/${mediaId}/${sha256}.${format}`;

/** The sha256 a {@link variantKey} names (null for a key of another shape). */
export const variantKeySha256 = (key: string): string | null =>
  /^variants\/[^/]+\/([0-9a-f]{64})\.[a-z0-9]+$/.exec(key)?.[1] ?? null;

export function variantContentType(format: string): string {
  return format === 'avif' ? 'image/avif' : 'image/webp';
}

/**
 * Stores one rendered variant under its content-addressed key (skipped when that key already
 * holds these very bytes) and returns its record; `written` says whether this call wrote it.
 */
export async function putVariant(
  store: ObjectStore,
  mediaId: string,
  format: VariantFormat,
  v: { size: number; width: number; height: number; data: Buffer },
): Promise<{ record: repo.VariantRecord; written: boolean }> {
  const sha256 = createHash('sha256').update(v.data).digest('hex');
  const key = variantKey(mediaId, sha256, format);
  const written = !(await store.stat(key));
  if (written) {
    await store.put(key, Readable.from([v.data]), {
      contentType: variantContentType(format),
      bytes: v.data.length,
      sha256,
    });
  }
  const record = {
    name: String(v.size),
    format,
    key,
    width: v.width,
    height: v.height,
    bytes: v.data.length,
  };
  return { record, written };
}

export class ImageJob {
  /** Buffers for the originals, reused from job to job. */
  readonly originals: BufferPool;

  constructor(private readonly deps: ImageJobDeps) {
    this.originals = new BufferPool({
      maxFree: deps.config.concurrency,
      maxBufferBytes: POOLED_ORIGINAL_BYTES,
      idleMs: 30_000,
    });
  }

  /** The queue handler, for an image whose attempt has started (repo.startProcessing). */
  readonly handle = async (media: MediaRecord, ctx: JobContext): Promise<JobOutcome> => {
    const started = performance.now();
    try {
      return await this.run(media, ctx);
    } finally {
      traceStep(media.id, 'job', started);
    }
  };

  private async run(media: MediaRecord, ctx: JobContext): Promise<JobOutcome> {
    const { pool } = this.deps;
    try {
      await this.process(media, ctx);
      return { status: 'completed' };
    } catch (err) {
      if (err instanceof ProcessingFailure) {
        ctx.logger.warn({ code: err.code, reason: err.message }, 'processing failed');
        await repo.markProcessingFailed(pool, media.id, { code: err.code, message: err.message });
        return { status: 'failed', code: err.code, message: err.message };
      }
      throw err;
    }
  }

  private async process(media: MediaRecord, ctx: JobContext): Promise<void> {
    const { pool } = this.deps;
    const progress = new ProgressReporter((p) =>
      repo.setProgress(pool, media.id, p).catch((err: unknown) => ctx.logger.debug({ err }, 'progress')),
    );
    // The original's bytes live in this lease until render has settled: every reader of them
    // (file-type, exifr, heif-convert's input, sharp) has finished by then, even on failure.
    const lease = this.originals.lease();
    try {
      await this.render(media, ctx, progress, lease);
    } finally {
      lease.release();
      progress.close();
    }
  }

  private async render(
    media: MediaRecord,
    ctx: JobContext,
    progress: ProgressReporter,
    lease: BufferLease,
  ): Promise<void> {
    const { pool, store, config } = this.deps;
    const step = (name: string, start: number) => traceStep(media.id, name, start);

    let t = performance.now();
    const original = await this.readOriginal(media, lease);
    ctx.signal.throwIfAborted();
    step('read original + sha256', t);
    progress.report(10);

    t = performance.now();
    const detected = (await fileTypeFromBuffer(original))?.mime;
    const entry = catalogEntry(media.mime_type);
    const allowed = detected !== undefined && (IMAGE_TYPES.has(detected) || HEIF_TYPES.has(detected));
    if (!entry || !allowed || !entry.detects.includes(detected)) {
      throw new ProcessingFailure(
        'type_mismatch',
        `The content is ${detected ?? 'not a recognised image type'}, not ${media.mime_type}.`,
      );
    }
    step('file-type', t);

    let decodable = original;
    const heif = HEIF_TYPES.has(detected);
    if (heif) {
      t = performance.now();
      // The pixel limit, from the container's header, before heif-convert decodes anything.
      const layout = await probeHeif(original, config.maxPixels).catch(asProcessingFailure);
      step('heif header', t);
      t = performance.now();
      try {
        decodable = await this.deps.heif.toJpeg(original, ctx.signal, {
          maxPixels: config.maxPixels,
          images: layout.images,
          primary: layout.primary,
        });
      } catch (err) {
        if (err instanceof HeifUnavailableError) throw new ProcessingFailure('unsupported_type', err.message);
        if (err instanceof HeifDecodeError) throw new ProcessingFailure('decode_failed', err.message);
        throw err;
      }
      ctx.signal.throwIfAborted();
      step('heif-convert', t);
    }
    progress.report(20);

    // libheif copies the EXIF block into the JPEG it writes, so a HEIC's is read from that JPEG.
    t = performance.now();
    const exif = await readExifOf(heif ? 'image/jpeg' : detected, decodable, () => exifBlock(decodable));
    step('exifr', t);

    // Each variant is stored as soon as it is encoded, while the larger ones still encode; the
    // placeholder hash is computed as soon as its pixels exist. Content-addressed keys: an object
    // already under a key holds these very bytes.
    const format = config.variantFormat;
    const variants: repo.VariantRecord[] = [];
    const storeVariant = async (v: RenderedVariant) => {
      ctx.signal.throwIfAborted();
      const start = performance.now();
      const { record } = await putVariant(store, media.id, format, v);
      step(`store ${v.size}`, start);
      variants.push(record);
    };
    let placeholder: string | null = null;
    const hashPreview = ({ width, height, rgba }: { width: number; height: number; rgba: Uint8Array }) => {
      const start = performance.now();
      placeholder = Buffer.from(rgbaToThumbHash(width, height, rgba)).toString('base64');
      step('thumbhash', start);
    };

    t = performance.now();
    const rendered = await renderVariants(decodable, {
      sizes: VARIANT_SIZES,
      format,
      maxPixels: config.maxPixels,
      maxDecodeBytes: config.maxDecodeBytes,
      reserve: this.deps.budget ? (bytes) => this.deps.budget!.reserve(bytes, ctx.signal) : undefined,
      autoOrient: !heif,
      onProgress: (f) => progress.report(20 + f * 70),
      onVariant: storeVariant,
      onPreview: hashPreview,
      trace: step,
    }).catch(asProcessingFailure);
    ctx.signal.throwIfAborted();
    step('render + store (all sharp and storage)', t);
    // Largest first, as recorded before (stored in completion order).
    variants.sort((x, y) => Number(y.name) - Number(x.name));

    const metadata: Record<string, unknown> = { exif: exif.exif };
    if (exif.warning) metadata.warnings = [exif.warning];

    t = performance.now();
    // One statement: READY, the variants replaced, and the keys they replaced.
    const previousKeys = await repo.markReadyReplacing(pool, media.id, {
      width: rendered.width,
      height: rendered.height,
      metadata,
      gps: exif.gps ? { ...exif.gps } : null,
      placeholder,
      detectedMime: detected,
      variants,
    });
    step('db: mark ready', t);
    if (previousKeys) {
      // Reprocessed (another format, say): drop the variants nothing points to any more.
      const current = new Set(variants.map((v) => v.key));
      for (const key of previousKeys) if (!current.has(key)) await store.delete(key);
    } else {
      // Deleted (or finished by another worker) meanwhile: drop what we wrote that nobody references.
      const referenced = new Set(await repo.variantKeys(pool, media.id));
      for (const v of variants) if (!referenced.has(v.key)) await store.delete(v.key);
      ctx.logger.info('media changed state while processing; results discarded');
    }
  }

  /**
   * Reads the original in one piece and checks it against the declared size and the client's
   * declared sha256 (or the one computed at completion): a store that could not enforce the
   * checksum, or an object replaced since, is caught here.
   */
  private async readOriginal(media: MediaRecord, lease: BufferLease): Promise<Buffer> {
    let bytes: Buffer | undefined;
    try {
      bytes = await this.deps.store.readAll(media.storage_key, media.bytes, lease.allocate);
    } catch (err) {
      if (err instanceof ObjectTooLargeError) {
        throw new ProcessingFailure(
          'integrity',
          `The stored object is larger than the declared ${media.bytes} bytes.`,
        );
      }
      throw err;
    }
    if (!bytes) throw new OriginalMissingError('The original object is missing from the store.');
    if (bytes.length !== media.bytes) {
      throw new ProcessingFailure(
        'integrity',
        `The stored object has ${bytes.length} bytes, ${media.bytes} were declared.`,
      );
    }
    const expected = media.sha256 ?? media.content_sha256;
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (expected !== null && actual !== expected) {
      throw new ProcessingFailure(
        'integrity',
        `The stored bytes hash to ${actual}, not the expected ${expected}.`,
      );
    }
    if (media.content_sha256 === null) await repo.recordVerifiedSha256(this.deps.pool, media.id, actual);
    return bytes;
  }
}

/** Progress writes are at least this far apart (a typical image job never writes one). */
const PROGRESS_EVERY_MS = 500;

/**
 * Progress for the status endpoint without holding up the job: at most one UPDATE in flight and
 * at most one per {@link PROGRESS_EVERY_MS} (the first one that long after the start); a value
 * reported meanwhile replaces any older one still waiting, so writes stay in order and a short
 * job costs no progress writes at all. `close()` drops what is still waiting.
 */
class ProgressReporter {
  private writing = false;
  private pending: number | undefined;
  private last = -1;
  private nextAt = Date.now() + PROGRESS_EVERY_MS;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly write: (percent: number) => Promise<unknown>) {}

  report(percent: number): void {
    const p = Math.round(percent);
    if (p <= this.last || this.closed) return;
    this.last = p;
    this.pending = p;
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.pending = undefined;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.writing || this.timer || this.pending === undefined || this.closed) return;
    const wait = this.nextAt - Date.now();
    if (wait <= 0) {
      void this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const p = this.pending!;
    this.pending = undefined;
    this.writing = true;
    this.nextAt = Date.now() + PROGRESS_EVERY_MS;
    await this.write(p);
    this.writing = false;
    this.schedule();
  }
}

/** An image the decoder refused (corrupt, over the pixel limit) is the client's failure; else rethrown. */
function asProcessingFailure(err: unknown): never {
  if (err instanceof ImageDecodeError) {
    throw new ProcessingFailure(
      err.reason === 'too_large' ? 'image_too_large' : 'decode_failed',
      err.message,
    );
  }
  throw err;
}

function traceStep(mediaId: string, step: string, start: number): void {
  if (IMAGE_JOB_STEPS.hasSubscribers) {
    IMAGE_JOB_STEPS.publish({ mediaId, step, start, end: performance.now() } satisfies ImageJobStep);
  }
}
