/**
 * The image job: original → integrity and type check → (HEIC conversion) → one decode → upright,
 * stripped variants + placeholder + EXIF summary + GPS → READY.
 *
 * Expected outcomes (the bytes are not what was declared, not decodable, too large, HEIC without a
 * converter) mark the media FAILED and return; the job is not retried. Anything else (store or
 * database trouble) throws, and the queue retries with backoff. A HEIC's pixel limit is checked
 * from its header before the converter decodes anything.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { fileTypeFromBuffer } from 'file-type';
import { rgbaToThumbHash } from 'thumbhash';
import type { ProcessingConfig } from '../config.ts';
import { catalogEntry } from '../media/catalog.ts';
import { PROFILE_VARIANT_SIZES, variantStyle } from '../media/purposes.ts';
import type { MediaRecord } from '../media/repo.ts';
import { BufferPool, type BufferLease } from './buffer-pool.ts';
import {
  endWithFailure,
  dropUnreferenced,
  JobFailure,
  ProgressReporter,
  putVariant,
  readOriginal,
  type JobStore,
  VARIANT_SIZES,
} from './job-kit.ts';
import type { MemoryBudget } from './memory-budget.ts';
import {
  HeifDecodeError,
  HeifUnavailableError,
  ImageDecodeError,
  type ExifReader,
  type HeifDecoder,
  type Imaging,
  type ProcessingRecords,
  type RenderedVariant,
} from './ports.ts';
import type { VariantRecord } from './repo.ts';
import type { JobContext, JobOutcome } from './worker.ts';

export { VARIANT_SIZES } from './job-kit.ts';

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif']);
const HEIF_TYPES = new Set(['image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence']);

export interface ImageJobDeps {
  store: JobStore;
  records: ProcessingRecords;
  imaging: Imaging;
  heif: HeifDecoder;
  exif: ExifReader;
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
    try {
      await this.process(media, ctx);
      return { status: 'completed' };
    } catch (err) {
      if (err instanceof JobFailure) return endWithFailure(this.deps.records, media, ctx, err);
      throw err;
    }
  }

  private async process(media: MediaRecord, ctx: JobContext): Promise<void> {
    const progress = ProgressReporter.of(this.deps.records, media.id, ctx, PROGRESS);
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
    const { records, store, config, imaging } = this.deps;
    const step = (name: string, start: number) => traceStep(media.id, name, start);

    let t = performance.now();
    const original = await readOriginal(store, records, media, lease.allocate);
    ctx.signal.throwIfAborted();
    step('read original + sha256', t);
    progress.report(10);

    t = performance.now();
    const detected = (await fileTypeFromBuffer(original))?.mime;
    const entry = catalogEntry(media.mime_type);
    const allowed = detected !== undefined && (IMAGE_TYPES.has(detected) || HEIF_TYPES.has(detected));
    if (!entry || !allowed || !entry.detects.includes(detected)) {
      throw new JobFailure(
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
      const layout = await imaging.probeHeif(original, config.maxPixels).catch(asJobFailure);
      step('heif header', t);
      t = performance.now();
      try {
        decodable = await this.deps.heif.toJpeg(original, ctx.signal, {
          maxPixels: config.maxPixels,
          images: layout.images,
          primary: layout.primary,
        });
      } catch (err) {
        if (err instanceof HeifUnavailableError) throw new JobFailure('unsupported_type', err.message);
        if (err instanceof HeifDecodeError) throw new JobFailure('decode_failed', err.message);
        throw err;
      }
      ctx.signal.throwIfAborted();
      step('heif-convert', t);
    }
    progress.report(20);

    // libheif copies the EXIF block into the JPEG it writes, so a HEIC's is read from that JPEG.
    t = performance.now();
    const exif = await this.deps.exif.read(heif ? 'image/jpeg' : detected, decodable, () =>
      imaging.exifBlock(decodable),
    );
    step('exifr', t);

    // Each variant is stored as soon as it is encoded, while the larger ones still encode; the
    // placeholder hash is computed as soon as its pixels exist. Content-addressed keys: an object
    // already under a key holds these very bytes.
    const format = config.variantFormat;
    const variants: VariantRecord[] = [];
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
    const rendered = await imaging
      .render(decodable, {
        // The purpose decides the variants: profile images get centre-cropped squares.
        ...(variantStyle(media.purpose) === 'square'
          ? { sizes: PROFILE_VARIANT_SIZES, crop: 'square' as const }
          : { sizes: VARIANT_SIZES }),
        format,
        maxPixels: config.maxPixels,
        maxDecodeBytes: config.maxDecodeBytes,
        reserve: this.deps.budget ? (bytes) => this.deps.budget!.reserve(bytes, ctx.signal) : undefined,
        autoOrient: !heif,
        onProgress: (f) => progress.report(20 + f * 70),
        onVariant: storeVariant,
        onPreview: hashPreview,
        trace: step,
      })
      .catch(asJobFailure);
    ctx.signal.throwIfAborted();
    step('render + store (all sharp and storage)', t);
    // Largest first, as recorded before (stored in completion order).
    variants.sort((x, y) => Number(y.name) - Number(x.name));

    const metadata: Record<string, unknown> = { exif: exif.exif };
    if (exif.warning) metadata.warnings = [exif.warning];

    t = performance.now();
    // One statement: READY, the variants replaced, and the keys they replaced.
    const previousKeys = await records.markImageReady(media.id, {
      width: rendered.width,
      height: rendered.height,
      metadata,
      gps: exif.gps ? { ...exif.gps } : null,
      placeholder,
      detectedMime: detected,
      variants,
    });
    step('db: mark ready', t);
    // Reprocessed (another format, say): drop the variants nothing points to any more. Deleted
    // (or finished by another worker) meanwhile: drop what we wrote that nobody references.
    const keys = variants.map((v) => v.key);
    await dropUnreferenced(
      store,
      records,
      media.id,
      previousKeys ? { ready: true, previous: previousKeys, current: keys } : { ready: false, written: keys },
    );
    if (!previousKeys) ctx.logger.info('media changed state while processing; results discarded');
  }
}

/**
 * Progress writes are at least 500 ms apart, the first after 2 s. A 12 MP photo takes 0.5 s on an
 * idle 2-core box and up to ~1 s on a busy one, so a typical image job writes none; each write is
 * an UPDATE, an event row and a NOTIFY (CPU the next image's encode could have had). A large image
 * (a 50 MP PNG, a HEIC through the converter) still reports.
 */
const PROGRESS = { everyMs: 500, firstAfterMs: 2000 };

/** An image the decoder refused (corrupt, over the pixel limit) is the client's failure; else rethrown. */
function asJobFailure(err: unknown): never {
  if (err instanceof ImageDecodeError) {
    throw new JobFailure(err.reason === 'too_large' ? 'image_too_large' : 'decode_failed', err.message);
  }
  throw err;
}

function traceStep(mediaId: string, step: string, start: number): void {
  if (IMAGE_JOB_STEPS.hasSubscribers) {
    IMAGE_JOB_STEPS.publish({ mediaId, step, start, end: performance.now() } satisfies ImageJobStep);
  }
}
