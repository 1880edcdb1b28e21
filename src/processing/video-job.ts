/**
 * The video job: original → probe (duration, codecs, rotation, displayed size) → poster at 10 % of
 * the duration (upright) → the image variants + thumbhash → the HLS ladder from one ffmpeg run →
 * objects under `hls/<mediaId>/<runId>/` → READY with renditions.
 *
 * Like the image job, outcomes a retry cannot change (not a video, undecodable, too long, ffmpeg
 * missing, over the time budget) mark the media FAILED and return; store or database trouble
 * throws and the queue retries. The work directory is removed whatever happens; ffmpeg dies with
 * the job (the worker's AbortSignal: cancellation, worker timeout, shutdown).
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileTypeFromFile } from 'file-type';
import { rgbaToThumbHash } from 'thumbhash';
import type { ProcessingConfig } from '../config.ts';
import { catalogEntry } from '../media/catalog.ts';
import { hlsContentType, hlsMasterKey, hlsObjectKey, hlsRunPrefix } from '../media/layout.ts';
import type { MediaRecord } from '../media/repo.ts';
import { scratchTag } from '../storage/scratch.ts';
import {
  copyOriginal,
  dropUnreferenced,
  endWithFailure,
  JobFailure,
  ProgressReporter,
  putVariant,
  type JobStore,
  VARIANT_SIZES,
} from './job-kit.ts';
import {
  ImageDecodeError,
  VideoError,
  type Imaging,
  type ProcessingRecords,
  type VideoProbe,
  type VideoTranscoder,
} from './ports.ts';
import type { VariantRecord } from './repo.ts';
import type { RenditionRecord } from './video-repo.ts';
import { planLadder } from './video/ladder.ts';
import type { JobContext, JobOutcome } from './worker.ts';

/** One timed step of a video job (`performance.now()` clock), as published on {@link VIDEO_JOB_STEPS}. */
export interface VideoJobStep {
  mediaId: string;
  step: string;
  start: number;
  end: number;
}

/** Step timings of video jobs (bench:video subscribes); nothing is published while nobody listens. */
export const VIDEO_JOB_STEPS = diagnostics_channel.channel('mediary:video-job-step');

function traceStep(mediaId: string, step: string, start: number): void {
  if (VIDEO_JOB_STEPS.hasSubscribers) {
    VIDEO_JOB_STEPS.publish({ mediaId, step, start, end: performance.now() } satisfies VideoJobStep);
  }
}

export const FFMPEG_MISSING_MESSAGE = 'ffmpeg is not installed';
/** Work directories are `<VIDEO_TMP_DIR>/mediary-video-<owner tag><random>` (../storage/scratch.ts). */
export const VIDEO_WORK_PREFIX = 'mediary-video-';

const VIDEO_TYPES = new Set([
  'video/mp4',
  'video/quicktime',
  'video/x-m4v',
  'video/3gpp',
  'video/webm',
  'video/x-matroska',
]);

export interface VideoJobDeps {
  store: JobStore;
  records: ProcessingRecords;
  imaging: Imaging;
  transcoder: VideoTranscoder;
  config: Pick<ProcessingConfig, 'variantFormat' | 'maxPixels' | 'video'>;
  /** Parent of the per-job work directories (default: the OS temp dir). */
  tmpDir?: string | undefined;
}

const UPLOAD_PARALLELISM = 4;
/**
 * Progress is written at most once a second, and only when the whole percentage rose
 * (ProgressReporter). ffmpeg reports several times a second; each write is an UPDATE, an event
 * and a NOTIFY, CPU taken from x264 on a small box, while a status poller or an SSE consumer
 * gains nothing from more than one step a second. Milestones (5, 8, 90 %) are written at once.
 */
const PROGRESS = { everyMs: 1000, firstAfterMs: 0 };

export class VideoJob {
  constructor(private readonly deps: VideoJobDeps) {}

  /** Checked per job until found once, so installing ffmpeg needs no restart. */
  ffmpegAvailable(): Promise<boolean> {
    return this.deps.transcoder.available();
  }

  /** The queue handler, for a video whose attempt has started (repo.startProcessing). */
  readonly handle = async (media: MediaRecord, ctx: JobContext): Promise<JobOutcome> => {
    const { records, config } = this.deps;
    // Our own deadline fails the job (a retry would time out again); the worker's is a backstop.
    ctx.setTimeLimit(config.video.jobTimeoutSeconds + 60);
    const work = await mkdtemp(path.join(this.deps.tmpDir ?? os.tmpdir(), VIDEO_WORK_PREFIX + scratchTag()));
    try {
      await this.process(media, ctx, work);
      return { status: 'completed' };
    } catch (err) {
      const failure = asFailure(err, work, config.video.jobTimeoutSeconds);
      if (failure) return endWithFailure(records, media, ctx, failure, err);
      throw err;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };

  private async process(media: MediaRecord, ctx: JobContext, work: string): Promise<void> {
    const { records, config } = this.deps;
    const video = config.video;
    const deadline = Date.now() + video.jobTimeoutSeconds * 1000;
    const remaining = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new VideoError('timeout', 'over budget');
      return ms;
    };
    const reporter = ProgressReporter.of(records, media.id, ctx, PROGRESS);
    const progress = (p: number, milestone = false) => reporter.report(p, milestone);
    try {
      await this.run(media, ctx, work, remaining, progress);
    } finally {
      reporter.close();
    }
  }

  private async run(
    media: MediaRecord,
    ctx: JobContext,
    work: string,
    remaining: () => number,
    progress: (p: number, milestone?: boolean) => void,
  ): Promise<void> {
    const { records, store, config, transcoder } = this.deps;
    const video = config.video;
    const step = (name: string, start: number) => traceStep(media.id, name, start);
    let t = performance.now();
    if (!(await this.ffmpegAvailable())) throw new JobFailure('ffmpeg_missing', FFMPEG_MISSING_MESSAGE);
    step('ffmpeg check', t);

    t = performance.now();
    const input = path.join(work, 'original');
    await copyOriginal(store, records, media, input);
    ctx.signal.throwIfAborted();
    step('copy original + sha256', t);
    t = performance.now();
    const detected = (await fileTypeFromFile(input))?.mime;
    const entry = catalogEntry(media.mime_type);
    if (!entry || detected === undefined || !VIDEO_TYPES.has(detected) || !entry.detects.includes(detected)) {
      throw new JobFailure(
        'type_mismatch',
        `The content is ${detected ?? 'not a recognised video type'}, not ${media.mime_type}.`,
      );
    }
    step('file-type', t);
    progress(5, true);

    t = performance.now();
    const src = await transcoder.probe(input, {
      timeoutMs: Math.min(60_000, remaining()),
      signal: ctx.signal,
    });
    if (src.durationMs > video.maxDurationSeconds * 1000) {
      throw new JobFailure(
        'video_too_long',
        `The video lasts ${Math.round(src.durationMs / 1000)} s, more than the ${video.maxDurationSeconds} s allowed.`,
      );
    }
    if (src.width * src.height > video.maxPixels) {
      throw new JobFailure(
        'video_too_large',
        `The video is ${src.width}×${src.height}, more than the ${video.maxPixels} pixels per frame allowed.`,
      );
    }
    step('probe', t);
    progress(8, true);

    const written: string[] = [];
    try {
      // The poster frame comes from the ladder's own decode (one ffmpeg run, one decode of the
      // original); its variants and their store writes start as soon as that frame is out, beside
      // the rest of the ladder. A poster failure stops the ladder and is the job's outcome, as
      // when it ran first; both have settled before anything else happens.
      const ladderStop = new AbortController();
      const ladderSignal = AbortSignal.any([ctx.signal, ladderStop.signal]);
      t = performance.now();
      const parallel = t;
      let posterRun: Promise<Poster> | undefined;
      const onFrame = (png: Buffer) => {
        step('poster frame (from the ladder)', parallel);
        const variantsStart = performance.now();
        posterRun = this.posterVariants(media.id, png, written).then(
          (done) => {
            step('poster variants (beside the ladder)', variantsStart);
            return done;
          },
          (err: unknown) => {
            ladderStop.abort();
            throw err;
          },
        );
        // Awaited below, once the ladder has settled; until then a rejection is not unhandled.
        posterRun.catch(() => undefined);
      };
      const ladder = limitLadder(planLadder(src.width, src.height), video.maxRendition);
      const outDir = path.join(work, 'hls');
      const ladderDone = await settle(
        transcoder.transcodeHls(input, outDir, ladder, src.audioCodec !== null, {
          timeoutMs: remaining(),
          signal: ladderSignal,
          preset: video.preset,
          segmentSeconds: video.segmentSeconds,
          poster: { atSeconds: src.durationMs / 10_000, onFrame },
          onProgress: (us) => progress(15 + 75 * Math.min(1, us / 1000 / src.durationMs)),
        }),
      );
      step('ladder (ffmpeg)', parallel);
      const posterDone = posterRun ? await settle(posterRun) : undefined;
      step('poster and ladder, both settled', parallel);
      if (posterDone?.status === 'rejected') throw posterDone.reason;
      if (ladderDone.status === 'rejected') throw ladderDone.reason;
      const hls = ladderDone.value;
      // No frame at 10 % (a video stream shorter than its container): the first frame, as before.
      t = performance.now();
      const poster =
        posterDone?.value ??
        (await this.posterVariants(media.id, await this.firstFrame(input, work, ctx, remaining), written));
      if (!posterDone) step('poster from the first frame (after the ladder)', t);
      progress(90, true);

      t = performance.now();
      const prefix = hlsRunPrefix(media.id);
      const hlsObjects = await this.uploadDir(outDir, prefix, written, ctx.signal);
      step('store HLS objects', t);
      const renditions: RenditionRecord[] = hls.renditions.map((r) => ({
        name: r.name,
        width: r.width,
        height: r.height,
        bitrate: Math.round((r.videoBitrate + (src.audioCodec !== null ? r.audioBitrate : 0)) * 1.1),
        codecs: r.codecs,
        playlistKey: hlsObjectKey(prefix, r.playlist),
      }));
      ctx.signal.throwIfAborted();

      t = performance.now();
      const previous = await records.referencedKeys(media.id);
      const ready = await records.markVideoReady(media.id, {
        width: src.width,
        height: src.height,
        durationMs: src.durationMs,
        metadata: { video: videoMetadata(src) },
        gps: null,
        placeholder: poster.placeholder,
        detectedMime: detected,
        variants: poster.variants,
        hlsMasterKey: hlsMasterKey(prefix),
        renditions,
        hlsObjects,
      });
      await dropUnreferenced(
        store,
        records,
        media.id,
        ready ? { ready: true, previous, current: written } : { ready: false, written },
      );
      step('db: referenced keys + mark ready + drop unreferenced', t);
      if (!ready) ctx.logger.info('media changed state while processing; results discarded');
      written.length = 0;
    } finally {
      // A failed run leaves nothing in the store (variants are shared only with an identical run).
      const referenced = written.length > 0 ? new Set(await records.referencedKeys(media.id)) : new Set();
      for (const key of written) {
        if (referenced.has(key)) continue;
        await store.delete(key).catch((err: unknown) => ctx.logger.warn({ err, key }, 'cleanup failed'));
      }
    }
  }

  /** The first frame, for a video whose decode found no frame at the poster time. */
  private async firstFrame(
    input: string,
    work: string,
    ctx: JobContext,
    remaining: () => number,
  ): Promise<Buffer> {
    const file = path.join(work, 'poster.png');
    await this.deps.transcoder.extractPoster(input, 0, file, {
      timeoutMs: Math.min(120_000, remaining()),
      signal: ctx.signal,
    });
    const png = await readFile(file).catch(() => undefined);
    if (!png || png.length === 0)
      throw new JobFailure('decode_failed', 'No frame of the video can be decoded.');
    return png;
  }

  /** The poster frame as image variants (stored) and a thumbhash placeholder. */
  private async posterVariants(mediaId: string, png: Buffer, written: string[]): Promise<Poster> {
    const { store, config, imaging } = this.deps;
    let rendered;
    try {
      // ffmpeg already applied the rotation; a PNG carries no orientation of its own.
      rendered = await imaging.render(png, {
        sizes: VARIANT_SIZES,
        format: config.variantFormat,
        maxPixels: config.maxPixels,
        autoOrient: false,
      });
    } catch (err) {
      if (err instanceof ImageDecodeError)
        throw new JobFailure('decode_failed', `The poster frame: ${err.message}`);
      throw err;
    }
    const format = config.variantFormat;
    const variants: VariantRecord[] = [];
    for (const v of rendered.variants) {
      const { record, written: isNew } = await putVariant(store, mediaId, format, v);
      if (isNew) written.push(record.key);
      variants.push(record);
    }
    const { width: pw, height: ph, rgba } = rendered.preview;
    return { variants, placeholder: Buffer.from(rgbaToThumbHash(pw, ph, rgba)).toString('base64') };
  }

  /** Uploads every file under `dir` to `prefix/<relative path>`, a few at a time. */
  private async uploadDir(
    dir: string,
    prefix: string,
    written: string[],
    signal: AbortSignal,
  ): Promise<{ key: string; bytes: number }[]> {
    const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile())
      .map((d) => path.relative(dir, path.join(d.parentPath, d.name)).split(path.sep).join('/'))
      .sort();
    const out: { key: string; bytes: number }[] = [];
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (next < files.length && !failed) {
        signal.throwIfAborted();
        const rel = files[next++]!;
        const file = path.join(dir, rel);
        const key = hlsObjectKey(prefix, rel);
        const bytes = (await stat(file)).size;
        written.push(key);
        await this.deps.store.put(key, createReadStream(file), { contentType: hlsContentType(rel), bytes });
        out.push({ key, bytes });
      }
    };
    // Every lane settles before this returns or throws: a put still running when another lane
    // failed would land after the caller's cleanup deleted `written`, and stay in the store.
    const results = await Promise.allSettled(
      Array.from({ length: UPLOAD_PARALLELISM }, () =>
        lane().catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      ),
    );
    const rejected = results.find((r) => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    return out;
  }
}

interface Poster {
  variants: VariantRecord[];
  placeholder: string;
}

/** `Promise.allSettled` of one promise. */
function settle<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  return p.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  );
}

const RUNG_ORDER = ['360p', '720p', '1080p', '2160p'] as const;

/** Drops rungs above `max`; the smallest always stays, so every video plays. */
export function limitLadder<R extends { name: (typeof RUNG_ORDER)[number] }>(
  ladder: readonly R[],
  max: (typeof RUNG_ORDER)[number],
): R[] {
  const limit = RUNG_ORDER.indexOf(max);
  const kept = ladder.filter((r) => RUNG_ORDER.indexOf(r.name) <= limit);
  return kept.length > 0 ? kept : ladder.slice(0, 1);
}

function videoMetadata(p: VideoProbe) {
  return {
    container: p.container,
    videoCodec: p.videoCodec,
    audioCodec: p.audioCodec,
    frameRate: p.frameRate,
    bitRate: p.bitRate,
    rotation: p.rotation,
    codedWidth: p.codedWidth,
    codedHeight: p.codedHeight,
  };
}

/** Maps what went wrong to a client-visible failure; undefined when a retry may help. */
function asFailure(err: unknown, work: string, budgetSeconds: number): JobFailure | undefined {
  if (err instanceof JobFailure) return err;
  if (!(err instanceof VideoError)) return undefined;
  switch (err.code) {
    case 'ffmpeg_missing':
      return new JobFailure('ffmpeg_missing', FFMPEG_MISSING_MESSAGE);
    case 'unreadable':
      return new JobFailure('decode_failed', err.message);
    case 'no_video':
      return new JobFailure('no_video', 'The file has no video stream (audio-only files are not processed).');
    case 'too_long':
      return new JobFailure('video_too_long', err.message);
    case 'timeout':
      return new JobFailure('timeout', `Video processing did not finish within ${budgetSeconds} s.`);
    case 'ffmpeg_failed':
      // ffmpeg's last lines say what is wrong; our temporary paths are nobody's business.
      return new JobFailure(
        'decode_failed',
        `The video cannot be transcoded: ${err.message.replaceAll(work + path.sep, '').replaceAll(work, '.')}`.slice(
          0,
          500,
        ),
      );
    case 'cancelled':
      // Shutdown or the worker's own limit: the worker decides (hand back, or retry).
      return undefined;
  }
}
