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
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { fileTypeFromFile } from 'file-type';
import { rgbaToThumbHash } from 'thumbhash';
import type { ProcessingConfig } from '../config.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { catalogEntry } from '../media/catalog.ts';
import { hlsContentType, hlsMasterKey, hlsObjectKey, hlsRunPrefix } from '../media/layout.ts';
import type { VideoFailureCode } from '../media/lifecycle.ts';
import { hlsObjectKeys, type MediaRecord } from '../media/repo.ts';
import { scratchTag } from '../storage/scratch.ts';
import type { ObjectStore } from '../storage/types.ts';
import { OriginalMissingError, putVariant, VARIANT_SIZES } from './image-job.ts';
import * as repo from './repo.ts';
import { ImageDecodeError, renderVariants } from './sharp-imaging.ts';
import { markVideoReady, type RenditionRecord } from './video-repo.ts';
import {
  ffmpegAvailable,
  extractPoster,
  probe,
  transcodeHls,
  VideoError,
  type FfmpegBinaries,
  type VideoProbe,
} from './video/ffmpeg.ts';
import { planLadder } from './video/ladder.ts';
import type { JobContext, JobOutcome } from './worker.ts';

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

/** An outcome the client must see; retrying would not change it. */
export class VideoFailure extends Error {
  constructor(
    readonly code: VideoFailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'VideoFailure';
  }
}

export interface VideoJobDeps {
  pool: Pool;
  store: ObjectStore;
  config: Pick<ProcessingConfig, 'variantFormat' | 'maxPixels' | 'video'>;
  /** Parent of the per-job work directories (default: the OS temp dir). */
  tmpDir?: string | undefined;
}

const UPLOAD_PARALLELISM = 4;
/** Progress is written at most this often (ffmpeg reports several times a second). */
const PROGRESS_EVERY_MS = 250;

export class VideoJob {
  private ffmpegSeen = false;

  constructor(private readonly deps: VideoJobDeps) {}

  private get bin(): FfmpegBinaries {
    return { ffmpeg: this.deps.config.video.ffmpegPath, ffprobe: this.deps.config.video.ffprobePath };
  }

  /** Checked per job until found once, so installing ffmpeg needs no restart. */
  async ffmpegAvailable(): Promise<boolean> {
    if (!this.ffmpegSeen) this.ffmpegSeen = await ffmpegAvailable(this.bin);
    return this.ffmpegSeen;
  }

  /** The queue handler, for a video whose attempt has started (repo.startProcessing). */
  readonly handle = async (media: MediaRecord, ctx: JobContext): Promise<JobOutcome> => {
    const { pool, config } = this.deps;
    // Our own deadline fails the job (a retry would time out again); the worker's is a backstop.
    ctx.setTimeLimit(config.video.jobTimeoutSeconds + 60);
    const work = await mkdtemp(path.join(this.deps.tmpDir ?? os.tmpdir(), VIDEO_WORK_PREFIX + scratchTag()));
    try {
      await this.process(media, ctx, work);
      return { status: 'completed' };
    } catch (err) {
      const failure = asFailure(err, work, config.video.jobTimeoutSeconds);
      if (failure) {
        ctx.logger.warn({ code: failure.code, reason: failure.message, err }, 'video processing failed');
        await repo.markProcessingFailed(pool, media.id, { code: failure.code, message: failure.message });
        return { status: 'failed', code: failure.code, message: failure.message };
      }
      throw err;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };

  private async process(media: MediaRecord, ctx: JobContext, work: string): Promise<void> {
    const { pool, store, config } = this.deps;
    const video = config.video;
    const deadline = Date.now() + video.jobTimeoutSeconds * 1000;
    const remaining = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new VideoError('timeout', 'over budget');
      return ms;
    };
    let lastWrite = 0;
    let lastValue = -1;
    const progress = (p: number, force = false) => {
      const value = Math.round(p);
      const now = Date.now();
      if (value === lastValue || (!force && now - lastWrite < PROGRESS_EVERY_MS)) return;
      lastValue = value;
      lastWrite = now;
      void repo
        .setProgress(pool, media.id, value)
        .catch((err: unknown) => ctx.logger.debug({ err }, 'progress'));
    };

    if (!(await this.ffmpegAvailable())) throw new VideoFailure('ffmpeg_missing', FFMPEG_MISSING_MESSAGE);

    const input = path.join(work, 'original');
    await this.readOriginal(media, input);
    ctx.signal.throwIfAborted();
    const detected = (await fileTypeFromFile(input))?.mime;
    const entry = catalogEntry(media.mime_type);
    if (!entry || detected === undefined || !VIDEO_TYPES.has(detected) || !entry.detects.includes(detected)) {
      throw new VideoFailure(
        'type_mismatch',
        `The content is ${detected ?? 'not a recognised video type'}, not ${media.mime_type}.`,
      );
    }
    progress(5, true);

    const src = await probe(input, Math.min(60_000, remaining()), {
      ffprobePath: video.ffprobePath,
      signal: ctx.signal,
    });
    if (src.durationMs > video.maxDurationSeconds * 1000) {
      throw new VideoFailure(
        'video_too_long',
        `The video lasts ${Math.round(src.durationMs / 1000)} s, more than the ${video.maxDurationSeconds} s allowed.`,
      );
    }
    if (src.width * src.height > video.maxPixels) {
      throw new VideoFailure(
        'video_too_large',
        `The video is ${src.width}×${src.height}, more than the ${video.maxPixels} pixels per frame allowed.`,
      );
    }
    progress(8, true);

    const written: string[] = [];
    try {
      const poster = await this.poster(media, src, input, work, ctx, remaining, written);
      progress(15, true);

      const ladder = limitLadder(planLadder(src.width, src.height), video.maxRendition);
      const outDir = path.join(work, 'hls');
      const hls = await transcodeHls(input, outDir, ladder, src.audioCodec !== null, {
        timeoutMs: remaining(),
        signal: ctx.signal,
        ffmpegPath: video.ffmpegPath,
        preset: video.preset,
        segmentSeconds: video.segmentSeconds,
        onProgress: (us) => progress(15 + 75 * Math.min(1, us / 1000 / src.durationMs)),
      });
      progress(90, true);

      const prefix = hlsRunPrefix(media.id);
      const hlsObjects = await this.uploadDir(outDir, prefix, written, ctx.signal);
      const renditions: RenditionRecord[] = hls.renditions.map((r) => ({
        name: r.name,
        width: r.width,
        height: r.height,
        bitrate: Math.round((r.videoBitrate + (src.audioCodec !== null ? r.audioBitrate : 0)) * 1.1),
        codecs: r.codecs,
        playlistKey: hlsObjectKey(prefix, r.playlist),
      }));
      ctx.signal.throwIfAborted();

      const previous = [
        ...(await repo.variantKeys(pool, media.id)),
        ...(await hlsObjectKeys(pool, media.id)),
      ];
      const ready = await withTransaction(pool, (tx) =>
        markVideoReady(tx, media.id, {
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
        }),
      );
      if (ready) {
        const current = new Set(written);
        for (const key of previous) if (!current.has(key)) await store.delete(key);
      } else {
        const referenced = new Set([
          ...(await repo.variantKeys(pool, media.id)),
          ...(await hlsObjectKeys(pool, media.id)),
        ]);
        for (const key of written) if (!referenced.has(key)) await store.delete(key);
        ctx.logger.info('media changed state while processing; results discarded');
      }
      written.length = 0;
    } finally {
      // A failed run leaves nothing in the store (variants are shared only with an identical run).
      const referenced = written.length > 0 ? new Set(await repo.variantKeys(pool, media.id)) : new Set();
      for (const key of written) {
        if (referenced.has(key)) continue;
        await store.delete(key).catch((err: unknown) => ctx.logger.warn({ err, key }, 'cleanup failed'));
      }
    }
  }

  /** Poster at 10 % of the duration (the first frame when that seek finds none), as image variants. */
  private async poster(
    media: MediaRecord,
    src: VideoProbe,
    input: string,
    work: string,
    ctx: JobContext,
    remaining: () => number,
    written: string[],
  ) {
    const { store, config } = this.deps;
    const file = path.join(work, 'poster.png');
    const opts = { timeoutMs: 0, signal: ctx.signal, ffmpegPath: config.video.ffmpegPath };
    let png: Buffer | undefined;
    for (const at of [src.durationMs / 10_000, 0]) {
      await extractPoster(input, at, file, { ...opts, timeoutMs: Math.min(120_000, remaining()) });
      png = await readFile(file).catch(() => undefined);
      if (png && png.length > 0) break;
    }
    if (!png || png.length === 0)
      throw new VideoFailure('decode_failed', 'No frame of the video can be decoded.');
    let rendered;
    try {
      // ffmpeg already applied the rotation; a PNG carries no orientation of its own.
      rendered = await renderVariants(png, {
        sizes: VARIANT_SIZES,
        format: config.variantFormat,
        maxPixels: config.maxPixels,
        autoOrient: false,
      });
    } catch (err) {
      if (err instanceof ImageDecodeError)
        throw new VideoFailure('decode_failed', `The poster frame: ${err.message}`);
      throw err;
    }
    const format = config.variantFormat;
    const variants: repo.VariantRecord[] = [];
    for (const v of rendered.variants) {
      const { record, written: isNew } = await putVariant(store, media.id, format, v);
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

  /** Streams the original to `file`, hashing as it goes; size and hash are checked like images'. */
  private async readOriginal(media: MediaRecord, file: string): Promise<void> {
    const stream = await this.deps.store.get(media.storage_key);
    if (!stream) throw new OriginalMissingError('The original object is missing from the store.');
    const hash = createHash('sha256');
    const out = createWriteStream(file);
    let size = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > media.bytes) {
          throw new VideoFailure(
            'integrity',
            `The stored object is larger than the declared ${media.bytes} bytes.`,
          );
        }
        hash.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
      }
      out.end();
      await finished(out);
    } finally {
      stream.destroy();
      out.destroy();
    }
    if (size !== media.bytes) {
      throw new VideoFailure(
        'integrity',
        `The stored object has ${size} bytes, ${media.bytes} were declared.`,
      );
    }
    const actual = hash.digest('hex');
    const expected = media.sha256 ?? media.content_sha256;
    if (expected !== null && actual !== expected) {
      throw new VideoFailure(
        'integrity',
        `The stored bytes hash to ${actual}, not the expected ${expected}.`,
      );
    }
    if (media.content_sha256 === null) await repo.recordVerifiedSha256(this.deps.pool, media.id, actual);
  }
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
function asFailure(err: unknown, work: string, budgetSeconds: number): VideoFailure | undefined {
  if (err instanceof VideoFailure) return err;
  if (!(err instanceof VideoError)) return undefined;
  switch (err.code) {
    case 'ffmpeg_missing':
      return new VideoFailure('ffmpeg_missing', FFMPEG_MISSING_MESSAGE);
    case 'unreadable':
      return new VideoFailure('decode_failed', err.message);
    case 'no_video':
      return new VideoFailure(
        'no_video',
        'The file has no video stream (audio-only files are not processed).',
      );
    case 'too_long':
      return new VideoFailure('video_too_long', err.message);
    case 'timeout':
      return new VideoFailure('timeout', `Video processing did not finish within ${budgetSeconds} s.`);
    case 'ffmpeg_failed':
      // ffmpeg's last lines say what is wrong; our temporary paths are nobody's business.
      return new VideoFailure(
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
