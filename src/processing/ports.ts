/**
 * What the processing jobs and the worker need from the outside world, declared here in the domain
 * and implemented by adapters in `src/infra/` (sharp, libheif, exifr, ffmpeg, pg-boss). The jobs
 * import these interfaces only; the composition root (`runtime.ts`, `app.ts`) passes the real
 * adapters in, unit tests pass fakes. The errors the adapters throw are declared here too, so the
 * jobs can map them to outcomes without knowing which library raised them.
 */
import type { Queryable } from '../db/pool.ts';
import type { MediaType } from '../media/catalog.ts';
import type { VariantFormat } from '../media/layout.ts';
import type { MediaFailure } from '../media/lifecycle.ts';
import type { ReadyResult } from './repo.ts';
import type { VideoReadyResult } from './video-repo.ts';
import type { Rendition } from './video/ladder.ts';

export type { VariantFormat };

// ---- images -------------------------------------------------------------------------------------

export interface RenderOptions {
  /** Longest-edge sizes, e.g. [1200, 600, 300, 150]. Fit inside, never upscaled. */
  sizes: readonly number[];
  /**
   * `square`: each variant is the centre square of the image, `size` on a side (the shorter
   * edge when that is smaller: never upscaled). Profile images (src/media/purposes.ts).
   */
  crop?: 'square' | undefined;
  format: VariantFormat;
  maxPixels: number;
  /** Images whose decode would take more bytes than this (the adapter's estimate) fail. */
  maxDecodeBytes?: number;
  /**
   * Reserves the decode estimate before decoding (the worker's memory budget; may wait) and
   * returns its release, called once every step that holds pixels has settled.
   */
  reserve?: ((bytes: number) => Promise<() => void>) | undefined;
  /** False when the decoder upstream already applied the orientation (HEIF irot/imir). */
  autoOrient: boolean;
  /** Called after each step with a 0..1 fraction. */
  onProgress?: (fraction: number) => void;
  /**
   * Called with each variant as soon as it is encoded (largest first to start, smallest usually
   * first to finish), while the others are still encoding; awaited before the render returns.
   */
  onVariant?: (variant: RenderedVariant) => Promise<void>;
  /** Called with the placeholder pixels as soon as they exist (while variants still encode). */
  onPreview?: (preview: RenderResult['preview']) => void;
  /** Called when a step ends, with its name and its start (`performance.now()`): timings. */
  trace?: (step: string, start: number) => void;
}

export interface RenderedVariant {
  size: number;
  width: number;
  height: number;
  data: Buffer;
}

export interface RenderResult {
  /** As displayed (after orientation). */
  width: number;
  height: number;
  variants: RenderedVariant[];
  /** Small RGBA image (≤ 64×64) for the placeholder hash. */
  preview: { width: number; height: number; rgba: Uint8Array };
}

/** What heif-convert would decode, read from the HEIF container's header (no pixel decoded). */
export interface HeifLayout {
  /** The primary image as displayed (libheif applies irot/imir; a grid's size is the whole grid). */
  width: number;
  height: number;
  /** Index of the primary among the top-level images (heif-convert numbers its outputs in this order). */
  primary: number;
  /** Number of top-level images: heif-convert decodes every one of them. */
  images: number;
}

/** Decoding, resizing and encoding images (sharp in production). */
export interface Imaging {
  /** One decode (pixel and decode-memory limits checked from the header first) → every variant. */
  render(input: Buffer, opts: RenderOptions): Promise<RenderResult>;
  /** The HEIF container's layout from its header, with the pixel limit checked; no pixel decoded. */
  probeHeif(input: Buffer, maxPixels: number): Promise<HeifLayout>;
  /** The raw EXIF block of an image (WebP, AVIF …) from its header, without decoding pixels. */
  exifBlock(input: Buffer): Promise<Buffer | undefined>;
}

/** The bytes are not an image we can decode (corrupt, unsupported, or over the pixel limit). */
export class ImageDecodeError extends Error {
  constructor(
    readonly reason: 'corrupt' | 'too_large',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

/** What the HEIF converter may do, and which of its outputs is wanted (from `probeHeif`). */
export interface HeifConvertOptions {
  /** The pixel limit the header was checked against: the resource caps scale with it. */
  maxPixels: number;
  /** Number of top-level images (the converter decodes every one). */
  images: number;
  /** Index of the primary image among them. */
  primary: number;
}

/** HEIC/HEIF → JPEG (libheif's heif-convert in production). */
export interface HeifDecoder {
  /** Whether the converter runs here (checked per job, so installing it needs no restart). */
  isAvailable(): Promise<boolean>;
  /** The primary image as JPEG, transforms applied. Only for an image whose header passed `probeHeif`. */
  toJpeg(input: Buffer, signal: AbortSignal, opts: HeifConvertOptions): Promise<Buffer>;
}

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

export interface ExifSummary {
  make?: string;
  model?: string;
  lens?: string;
  /** Seconds. */
  exposureTime?: number;
  fNumber?: number;
  iso?: number;
  /** Millimetres. */
  focalLength?: number;
  /** As written by the camera, `YYYY-MM-DDTHH:MM:SS` (local time of the camera, no zone). */
  dateTimeOriginal?: string;
  /** `+HH:MM` when the camera recorded it. */
  offsetTimeOriginal?: string;
}

export interface GpsPosition {
  latitude: number;
  longitude: number;
  altitude?: number;
}

export interface ExifResult {
  exif: ExifSummary | null;
  gps: GpsPosition | null;
  warning?: string;
}

/** EXIF summary and GPS (exifr in production). Never throws for a broken block: it warns. */
export interface ExifReader {
  /** The EXIF of a file of type `mime`; `block` gives the container's raw EXIF block when asked. */
  read(mime: string, input: Buffer, block: () => Promise<Buffer | undefined>): Promise<ExifResult>;
}

// ---- video --------------------------------------------------------------------------------------

export interface VideoProbe {
  durationMs: number;
  container: string;
  videoCodec: string;
  audioCodec: string | null;
  frameRate: number | null;
  bitRate: number | null;
  /** Coded size. */
  codedWidth: number;
  codedHeight: number;
  /** Clockwise degrees the player must rotate (from the display matrix or the rotate tag). */
  rotation: number;
  /** Size as displayed, rotation applied. */
  width: number;
  height: number;
}

export interface TranscodeRunOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Microseconds of output written so far. */
  onProgress?: ((outTimeUs: number) => void) | undefined;
}

export interface HlsEncodeOptions {
  segmentSeconds?: number | undefined;
  preset?: string | undefined;
  /** Also the poster, from the ladder's own decode (no second decode of the original). */
  poster?: HlsPosterOptions | undefined;
}

/** The poster frame taken from the ladder's decode (`transcodeHls`'s `poster` option). */
export interface HlsPosterOptions {
  /** The first frame at or after this time (the frame `extractPoster` takes), rotation applied. */
  atSeconds: number;
  /** Called once with the frame (PNG) as soon as it is encoded, while the ladder still runs. */
  onFrame?: ((png: Buffer) => void) | undefined;
}

export interface HlsOutput {
  master: string;
  renditions: (Rendition & { playlist: string; codecs: string; dir: string })[];
  /** The poster frame (PNG) when one was asked for and the video has a frame at that time. */
  poster?: Buffer | undefined;
}

/** Probing and transcoding video (ffmpeg/ffprobe in production). Every run is bounded and abortable. */
export interface VideoTranscoder {
  /** Whether the tools run here (checked per job until found once, so installing needs no restart). */
  available(): Promise<boolean>;
  probe(file: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<VideoProbe>;
  /** One frame at `atSeconds`, rotation applied, written to `outFile` as PNG (nothing when none decodes). */
  extractPoster(input: string, atSeconds: number, outFile: string, opts: TranscodeRunOptions): Promise<void>;
  /** The whole ladder from one decode into `outDir` (`<rung>/index.m3u8`, segments, `master.m3u8`). */
  transcodeHls(
    input: string,
    outDir: string,
    ladder: readonly Rendition[],
    hasAudio: boolean,
    opts: TranscodeRunOptions & HlsEncodeOptions,
  ): Promise<HlsOutput>;
}

export class VideoError extends Error {
  constructor(
    readonly code:
      'ffmpeg_missing' | 'unreadable' | 'no_video' | 'too_long' | 'timeout' | 'cancelled' | 'ffmpeg_failed',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'VideoError';
  }
}

// ---- the job queue ------------------------------------------------------------------------------

export interface ProcessJob {
  mediaId: string;
}

/**
 * Processing runs in two lanes, one queue each, so that photos never wait behind minutes-long
 * transcodes: a worker keeps one slot for images only (see `slotLanes` in worker.ts), and admission
 * control watches the image lane alone.
 */
export type Lane = MediaType;

/** What the queue needs to end, fail or hand back a job: its id and its lane. */
export interface JobRef {
  id: string;
  lane: Lane;
}

/** A processing job this worker fetched. */
export interface QueuedJob extends JobRef {
  data: ProcessJob;
  /** 1-based attempt number of this run. */
  attempt: number;
  maxAttempts: number;
}

/** A job that exhausted its attempts, with what its last attempt reported. */
export interface DeadJob {
  id: string;
  data: ProcessJob;
  /** Our own failure record, `expired` when the queue timed the job out itself, or nothing known. */
  failure: { message: string; name?: string } | 'expired' | undefined;
}

/**
 * The durable job queue (pg-boss in production, in the application's own Postgres). Statements
 * that take `tx` run on the caller's transaction, so a job and the state around it commit together.
 */
export interface JobQueue {
  /** NOTIFY channel an enqueue (or a hand-back) announces itself on: idle workers LISTEN to it. */
  readonly wakeChannel: string;
  /** Enqueues processing for `mediaId` in its lane, inside the caller's transaction. */
  enqueueProcessing(tx: Queryable, mediaId: string, lane: Lane): Promise<void>;
  /** Takes the next processing job of the first of `lanes` that has one, inside the caller's transaction. */
  fetchProcessing(tx: Queryable, lanes: readonly Lane[]): Promise<QueuedJob | undefined>;
  /** Ends a job with an outcome (inside `tx` when given). */
  complete(job: JobRef, output: object, tx?: Queryable): Promise<void>;
  /** Fails an attempt: retried after the queue's backoff, or dead-lettered after the last. */
  fail(job: JobRef, error: { message: string; name: string }): Promise<void>;
  /** Hands an active job back without spending an attempt (worker shutdown). */
  release(job: JobRef): Promise<void>;
  /** Up to `limit` dead-lettered processing jobs. */
  fetchDead(limit: number): Promise<DeadJob[]>;
  completeDead(jobId: string): Promise<void>;
  failDead(jobId: string, error: { message: string }): Promise<void>;
  stop(): Promise<void>;
}

// ---- what the jobs record -------------------------------------------------------------------------

/**
 * The media row as the jobs change it (Postgres in production: `pgRecords`, records.ts). Every
 * write is guarded: a media that left PROCESSING (deleted, finished elsewhere) is not changed.
 */
export interface ProcessingRecords {
  setProgress(mediaId: string, percent: number): Promise<void>;
  /** The original hashed to what was declared: its sha256 is verified now (kept if already set). */
  recordVerifiedSha256(mediaId: string, sha256: string): Promise<void>;
  /** PROCESSING → FAILED with a reason the client can read; false when it is not PROCESSING any more. */
  markFailed(mediaId: string, error: MediaFailure): Promise<boolean>;
  /** READY with the variants replaced; the keys they replaced, or undefined when nothing changed. */
  markImageReady(mediaId: string, result: ReadyResult): Promise<string[] | undefined>;
  /** READY with poster variants, renditions and HLS objects replaced (atomically); false when not PROCESSING. */
  markVideoReady(mediaId: string, result: VideoReadyResult): Promise<boolean>;
  /** The object keys the media's variants and HLS objects reference now. */
  referencedKeys(mediaId: string): Promise<string[]>;
}
