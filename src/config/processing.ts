import { ConfigError, MiB, bool, int, str, type Env } from './env.ts';
import { malwareScanConfig, type MalwareScanConfig } from './scanning.ts';

/** Background processing and the tools it runs (sharp, heif-convert, ffmpeg, clamd). */
export interface ProcessingSettings {
  /** Whether `mediary serve` runs the processing worker in the same process (WORKER_ENABLED). */
  worker: { enabled: boolean };
  processing: ProcessingConfig;
}

/** Background processing: the queue's retry policy, the worker runtime and the image pipeline. */
export interface ProcessingConfig {
  /** Retries after the first attempt; then the job goes to the dead-letter queue. */
  retryLimit: number;
  /** First retry delay; doubles (with jitter) on each further retry. */
  retryDelaySeconds: number;
  /** Jobs one worker process runs at once. */
  concurrency: number;
  /** A job running longer is aborted and retried. */
  jobTimeoutSeconds: number;
  /** Fallback poll for delayed retries; new jobs wake idle workers through LISTEN/NOTIFY. */
  pollIntervalMs: number;
  /** On shutdown, in-flight jobs get this long to finish before they are handed back to the queue. */
  shutdownGraceSeconds: number;
  variantFormat: 'webp' | 'avif';
  /** Decompression-bomb guard: images with more pixels fail before decoding. */
  maxPixels: number;
  /**
   * Images whose decode would take more bytes than this (estimated from the header: pixels ×
   * channels × bytes per sample, ×2 interlaced/progressive) fail before decoding.
   */
  maxDecodeBytes: number;
  /** Decode memory all image jobs of one worker process may hold at once; others wait. */
  memoryBudgetBytes: number;
  /** Command that converts HEIC/HEIF to JPEG (Debian: libheif-examples). */
  heifConvert: string;
  video: VideoConfig;
  /** Scanning originals for malware before they become READY (off by default). */
  malwareScan: MalwareScanConfig;
}

/** The video pipeline (Debian's ffmpeg/ffprobe) and HLS playback. */
export interface VideoConfig {
  ffmpegPath: string;
  ffprobePath: string;
  /** Time budget of one video job (probe + poster + the whole ladder); past it the job FAILS. */
  jobTimeoutSeconds: number;
  /** Longer videos fail before transcoding (a decompression-bomb guard for video). */
  maxDurationSeconds: number;
  /** Larger frames (displayed width × height) fail before transcoding. */
  maxPixels: number;
  /** Highest rung of the HLS ladder (lower it to save CPU); smaller sources stop earlier anyway. */
  maxRendition: '360p' | '720p' | '1080p' | '2160p';
  /** x264 preset of the HLS renditions. */
  preset: string;
  segmentSeconds: number;
  /** Lifetime of the playback tokens in rewritten HLS playlists. */
  tokenTtlSeconds: number;
  /** Parent of the per-job work directories (VIDEO_TMP_DIR; default: the OS temp dir). */
  tmpDir: string | undefined;
}

/** WORKER_ENABLED, PROCESSING_*, WORKER_MEMORY_BUDGET_BYTES, HEIF_CONVERT_PATH, video and scanning. */
export function processingSettings(env: Env): ProcessingSettings {
  return { worker: { enabled: bool(env, 'WORKER_ENABLED', true) }, processing: processingConfig(env) };
}

function processingConfig(env: Env): ProcessingConfig {
  const format = str(env, 'PROCESSING_VARIANT_FORMAT') ?? 'webp';
  if (format !== 'webp' && format !== 'avif') {
    throw new ConfigError('PROCESSING_VARIANT_FORMAT', `must be "webp" or "avif", got "${format}"`);
  }
  return {
    retryLimit: int(env, 'PROCESSING_RETRY_LIMIT', 3, 0, 20),
    retryDelaySeconds: int(env, 'PROCESSING_RETRY_DELAY_SECONDS', 5, 0, 3600),
    concurrency: int(env, 'PROCESSING_CONCURRENCY', 2, 1, 64),
    jobTimeoutSeconds: int(env, 'PROCESSING_JOB_TIMEOUT_SECONDS', 300, 5, 24 * 3600),
    pollIntervalMs: int(env, 'PROCESSING_POLL_INTERVAL_MS', 2000, 100, 600_000),
    shutdownGraceSeconds: int(env, 'PROCESSING_SHUTDOWN_GRACE_SECONDS', 25, 0, 3600),
    variantFormat: format,
    maxPixels: int(env, 'PROCESSING_MAX_PIXELS', 100_000_000, 1, 2_000_000_000),
    maxDecodeBytes: int(env, 'PROCESSING_MAX_DECODE_BYTES', 768 * MiB, 1, Number.MAX_SAFE_INTEGER),
    memoryBudgetBytes: int(env, 'WORKER_MEMORY_BUDGET_BYTES', 1024 * MiB, 1, Number.MAX_SAFE_INTEGER),
    heifConvert: str(env, 'HEIF_CONVERT_PATH') ?? 'heif-convert',
    video: videoConfig(env),
    malwareScan: malwareScanConfig(env),
  };
}

const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow'];

function videoConfig(env: Env): VideoConfig {
  const preset = str(env, 'VIDEO_PRESET') ?? 'veryfast';
  if (!X264_PRESETS.includes(preset)) {
    throw new ConfigError('VIDEO_PRESET', `must be one of ${X264_PRESETS.join(', ')}, got "${preset}"`);
  }
  const maxRendition = str(env, 'VIDEO_MAX_RENDITION') ?? '2160p';
  if (
    maxRendition !== '360p' &&
    maxRendition !== '720p' &&
    maxRendition !== '1080p' &&
    maxRendition !== '2160p'
  ) {
    throw new ConfigError('VIDEO_MAX_RENDITION', `must be 360p, 720p, 1080p or 2160p, got "${maxRendition}"`);
  }
  return {
    maxRendition,
    ffmpegPath: str(env, 'FFMPEG_PATH') ?? 'ffmpeg',
    ffprobePath: str(env, 'FFPROBE_PATH') ?? 'ffprobe',
    jobTimeoutSeconds: int(env, 'VIDEO_JOB_TIMEOUT_SECONDS', 3600, 5, 7 * 24 * 3600),
    maxDurationSeconds: int(env, 'VIDEO_MAX_DURATION_SECONDS', 3 * 3600, 1, 7 * 24 * 3600),
    maxPixels: int(env, 'VIDEO_MAX_PIXELS', 4096 * 2304, 1, 100_000_000),
    preset,
    segmentSeconds: int(env, 'HLS_SEGMENT_SECONDS', 4, 1, 30),
    tokenTtlSeconds: int(env, 'HLS_TOKEN_TTL_SECONDS', 3600, 10, 7 * 24 * 3600),
    tmpDir: str(env, 'VIDEO_TMP_DIR'),
  };
}
