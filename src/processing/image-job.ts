/**
 * The image job: original → integrity and type check → (HEIC conversion) → one decode → upright,
 * stripped variants + placeholder + EXIF summary + GPS → READY.
 *
 * Expected outcomes (the bytes are not what was declared, not decodable, too large, HEIC without a
 * converter) mark the media FAILED and return; the job is not retried. Anything else (store or
 * database trouble) throws, and the queue retries with backoff.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';
import { rgbaToThumbHash } from 'thumbhash';
import type { ProcessingConfig } from '../config.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { catalogEntry } from '../media/catalog.ts';
import { findMedia, type MediaRow } from '../media/repo.ts';
import type { ObjectStore } from '../storage/types.ts';
import { readExif } from './exif.ts';
import { HeifDecodeError, HeifUnavailableError, type HeifConverter } from './heif.ts';
import type { ProcessJob } from './queue.ts';
import * as repo from './repo.ts';
import { ImageDecodeError, renderVariants, type VariantFormat } from './sharp-imaging.ts';
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
  heif: HeifConverter;
  config: Pick<ProcessingConfig, 'variantFormat' | 'maxPixels'>;
}

export const variantKey = (mediaId: string, sha256: string, format: VariantFormat) =>
  `variants/${mediaId}/${sha256}.${format}`;

export function variantContentType(format: string): string {
  return format === 'avif' ? 'image/avif' : 'image/webp';
}

export class ImageJob {
  constructor(private readonly deps: ImageJobDeps) {}

  /** The queue handler. */
  readonly handle = async (payload: ProcessJob, ctx: JobContext): Promise<JobOutcome> => {
    const { pool } = this.deps;
    const media = await findMedia(pool, payload.mediaId);
    if (!media || (media.status !== 'UPLOADED' && media.status !== 'PROCESSING')) {
      return { status: 'skipped', reason: `media is ${media?.status ?? 'gone'}` };
    }
    if (media.media_type !== 'image') {
      // Video processing is a separate pipeline; the media stays UPLOADED until it exists.
      return { status: 'skipped', reason: 'no processor for this media type' };
    }
    if (!(await repo.markProcessing(pool, media.id, ctx.attempt))) {
      return { status: 'skipped', reason: 'media changed state' };
    }
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
  };

  private async process(media: MediaRow, ctx: JobContext): Promise<void> {
    const { pool, store, config } = this.deps;
    const progress = (p: number) =>
      repo.setProgress(pool, media.id, p).catch((err: unknown) => ctx.logger.debug({ err }, 'progress'));

    const original = await this.readOriginal(media);
    ctx.signal.throwIfAborted();
    await progress(10);

    const detected = (await fileTypeFromBuffer(original))?.mime;
    const entry = catalogEntry(media.mime_type);
    const allowed = detected !== undefined && (IMAGE_TYPES.has(detected) || HEIF_TYPES.has(detected));
    if (!entry || !allowed || !entry.detects.includes(detected)) {
      throw new ProcessingFailure(
        'type_mismatch',
        `The content is ${detected ?? 'not a recognised image type'}, not ${media.mime_type}.`,
      );
    }

    let decodable = original;
    const heif = HEIF_TYPES.has(detected);
    if (heif) {
      try {
        decodable = await this.deps.heif.toJpeg(original, ctx.signal);
      } catch (err) {
        if (err instanceof HeifUnavailableError) throw new ProcessingFailure('unsupported_type', err.message);
        if (err instanceof HeifDecodeError) throw new ProcessingFailure('decode_failed', err.message);
        throw err;
      }
      ctx.signal.throwIfAborted();
    }
    await progress(20);

    // libheif copies the EXIF block into the JPEG it writes, so one parser path serves both.
    const exif = await readExif(decodable);
    let rendered;
    try {
      rendered = await renderVariants(decodable, {
        sizes: VARIANT_SIZES,
        format: config.variantFormat,
        maxPixels: config.maxPixels,
        autoOrient: !heif,
        onProgress: (f) => void progress(20 + f * 70),
      });
    } catch (err) {
      if (err instanceof ImageDecodeError) {
        throw new ProcessingFailure(
          err.reason === 'too_large' ? 'image_too_large' : 'decode_failed',
          err.message,
        );
      }
      throw err;
    }
    ctx.signal.throwIfAborted();

    const format = config.variantFormat;
    const variants: repo.VariantRecord[] = [];
    for (const v of rendered.variants) {
      const sha256 = createHash('sha256').update(v.data).digest('hex');
      const key = variantKey(media.id, sha256, format);
      // Content-addressed: an existing object under this key already holds these bytes.
      if (!(await store.stat(key))) {
        await store.put(key, Readable.from([v.data]), {
          contentType: variantContentType(format),
          bytes: v.data.length,
          sha256,
        });
      }
      variants.push({
        name: String(v.size),
        format,
        key,
        width: v.width,
        height: v.height,
        bytes: v.data.length,
      });
    }
    ctx.signal.throwIfAborted();

    const { width: pw, height: ph, rgba } = rendered.preview;
    const placeholder = Buffer.from(rgbaToThumbHash(pw, ph, rgba)).toString('base64');
    const metadata: Record<string, unknown> = { exif: exif.exif };
    if (exif.warning) metadata.warnings = [exif.warning];

    const previousKeys = await repo.variantKeys(pool, media.id);
    const ready = await withTransaction(pool, (tx) =>
      repo.markReady(tx, media.id, {
        width: rendered.width,
        height: rendered.height,
        metadata,
        gps: exif.gps ? { ...exif.gps } : null,
        placeholder,
        detectedMime: detected,
        variants,
      }),
    );
    if (ready) {
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
   * Reads the original, hashing as it streams. The hash is checked against the client's declared
   * sha256 (or the one computed at completion): a store that could not enforce the checksum, or an
   * object replaced since, is caught here.
   */
  private async readOriginal(media: MediaRow): Promise<Buffer> {
    const stream = await this.deps.store.get(media.storage_key);
    if (!stream) throw new OriginalMissingError('The original object is missing from the store.');
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > media.bytes) {
        stream.destroy();
        throw new ProcessingFailure(
          'integrity',
          `The stored object is larger than the declared ${media.bytes} bytes.`,
        );
      }
      hash.update(chunk);
      chunks.push(chunk);
    }
    const actual = hash.digest('hex');
    const expected = media.sha256 ?? media.content_sha256;
    if (size !== media.bytes) {
      throw new ProcessingFailure(
        'integrity',
        `The stored object has ${size} bytes, ${media.bytes} were declared.`,
      );
    }
    if (expected !== null && actual !== expected) {
      throw new ProcessingFailure(
        'integrity',
        `The stored bytes hash to ${actual}, not the expected ${expected}.`,
      );
    }
    return Buffer.concat(chunks, size);
  }
}
