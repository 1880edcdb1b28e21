/**
 * Fakes for the job unit tests: an in-memory object store, in-memory processing records, fake
 * imaging and a fake transcoder that write what the real ones would (shapes, not pixels). The
 * real-component tests (test/processing/) prove the adapters; these prove the job logic.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { loadConfig, type ProcessingConfig } from '../../src/config.ts';
import type { MediaRecord } from '../../src/media/repo.ts';
import type { JobStore } from '../../src/processing/job-kit.ts';
import {
  ImageDecodeError,
  VideoError,
  type ExifReader,
  type HeifDecoder,
  type Imaging,
  type ProcessingRecords,
  type RenderOptions,
  type RenderResult,
  type VideoProbe,
  type VideoTranscoder,
} from '../../src/processing/ports.ts';
import type { ReadyResult } from '../../src/processing/repo.ts';
import type { VideoReadyResult } from '../../src/processing/video-repo.ts';
import type { JobContext } from '../../src/processing/worker.ts';
import { ObjectTooLargeError } from '../../src/storage/types.ts';

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** JPEG magic (SOI + APP0 JFIF) and some bytes: file-type calls it image/jpeg. */
export const JPEG_BYTES = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]),
  Buffer.alloc(200, 7),
]);
/** An ISO BMFF `ftyp` box of brand mp42: file-type calls it video/mp4. */
export const MP4_BYTES = Buffer.concat([
  Buffer.from([0, 0, 0, 0x18]),
  Buffer.from('ftypmp42', 'latin1'),
  Buffer.from([0, 0, 0, 0]),
  Buffer.from('mp42isom', 'latin1'),
  Buffer.alloc(300, 1),
]);

/** An object store in a Map. `failPuts` makes every put fail (a store outage). */
export class MemoryStore implements JobStore {
  readonly objects = new Map<string, { data: Buffer; contentType: string }>();
  failPuts: Error | undefined;
  puts = 0;

  async get(key: string) {
    const o = this.objects.get(key);
    return o ? Readable.from([o.data]) : undefined;
  }
  async readAll(key: string, maxBytes: number, allocate?: (size: number) => Buffer) {
    const o = this.objects.get(key);
    if (!o) return undefined;
    if (o.data.length > maxBytes) throw new ObjectTooLargeError(o.data.length, maxBytes);
    if (!allocate) return Buffer.from(o.data);
    const buf = allocate(o.data.length);
    o.data.copy(buf);
    return buf.subarray(0, o.data.length);
  }
  async stat(key: string) {
    const o = this.objects.get(key);
    return o ? { size: o.data.length, etag: `"${sha256(o.data)}"`, lastModified: new Date(0) } : undefined;
  }
  async put(key: string, body: Readable, expect: { contentType: string }) {
    if (this.failPuts) {
      body.destroy();
      throw this.failPuts;
    }
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
    const data = Buffer.concat(chunks);
    this.puts++;
    this.objects.set(key, { data, contentType: expect.contentType });
    return { size: data.length, sha256: sha256(data) };
  }
  async delete(key: string) {
    this.objects.delete(key);
  }
  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}

/** One media row in memory, changed only while PROCESSING, as the SQL guards do. */
export class MemoryRecords implements ProcessingRecords {
  status = 'PROCESSING';
  error: { code: string; message: string } | null = null;
  verifiedSha256: string | null = null;
  progress: number[] = [];
  ready: ReadyResult | VideoReadyResult | undefined;
  private refs: string[] = [];

  constructor(refs: string[] = []) {
    this.refs = refs;
  }
  async setProgress(_id: string, percent: number) {
    this.progress.push(percent);
  }
  async recordVerifiedSha256(_id: string, sha: string) {
    this.verifiedSha256 ??= sha;
  }
  async markFailed(_id: string, error: { code: string; message: string }) {
    if (this.status !== 'PROCESSING') return false;
    this.status = 'FAILED';
    this.error = error;
    return true;
  }
  async markImageReady(_id: string, r: ReadyResult) {
    if (this.status !== 'PROCESSING') return undefined;
    const previous = this.refs;
    this.status = 'READY';
    this.ready = r;
    this.refs = r.variants.map((v) => v.key);
    return previous;
  }
  async markVideoReady(_id: string, r: VideoReadyResult) {
    if (this.status !== 'PROCESSING') return false;
    this.status = 'READY';
    this.ready = r;
    this.refs = [...r.variants.map((v) => v.key), ...r.hlsObjects.map((o) => o.key)];
    return true;
  }
  async referencedKeys() {
    return [...this.refs];
  }
}

/**
 * Renders one small fake encode per size (its bytes name the size and the format, so keys are
 * content-addressed and distinct). `fail` makes it refuse the image like a decoder would.
 */
export class FakeImaging implements Imaging {
  fail: ImageDecodeError | undefined;
  renders = 0;
  constructor(private readonly shown = { width: 4000, height: 3000 }) {}

  async render(_input: Buffer, opts: RenderOptions): Promise<RenderResult> {
    this.renders++;
    if (this.fail) throw this.fail;
    const { width, height } = this.shown;
    const release = opts.reserve ? await opts.reserve(width * height * 3) : () => undefined;
    try {
      const variants = [];
      for (const size of opts.sizes) {
        const scale = Math.min(1, size / Math.max(width, height));
        const v = {
          size,
          width: Math.round(width * scale),
          height: Math.round(height * scale),
          data: Buffer.from(`${opts.format}:${size}:${width}x${height}`),
        };
        opts.onProgress?.(variants.length / opts.sizes.length);
        await opts.onVariant?.(v);
        variants.push(v);
      }
      const preview = { width: 4, height: 3, rgba: new Uint8Array(4 * 3 * 4).fill(128) };
      opts.onPreview?.(preview);
      return { width, height, variants, preview };
    } finally {
      release();
    }
  }
  async probeHeif(): Promise<never> {
    throw new ImageDecodeError('corrupt', 'no HEIF in these tests');
  }
  async exifBlock() {
    return undefined;
  }
}

export const noHeif: HeifDecoder = {
  isAvailable: async () => false,
  toJpeg: async () => {
    throw new Error('not used');
  },
};

export const fakeExif: ExifReader = {
  read: async () => ({ exif: { make: 'Fake', model: 'Camera' }, gps: null }),
};

/**
 * ffmpeg's part without ffmpeg: a probe result, a poster PNG-to-be (from the ladder's decode when
 * asked, as the adapter does, or from `extractPoster`), and an HLS directory.
 */
export class FakeTranscoder implements VideoTranscoder {
  probed: VideoProbe = {
    durationMs: 3000,
    container: 'mov,mp4,m4a,3gp,3g2,mj2',
    videoCodec: 'h264',
    audioCodec: 'aac',
    frameRate: 24,
    bitRate: 1_000_000,
    codedWidth: 1280,
    codedHeight: 720,
    rotation: 0,
    width: 1280,
    height: 720,
  };
  transcodes = 0;
  /** Called when the transcode starts (cancellation tests abort from here). */
  onTranscode: (() => void) | undefined;
  /** The signal each transcode was given. */
  readonly signals: AbortSignal[] = [];
  /** ffmpeg's `-progress` during the transcode: `count` reports, `gapMs` apart, up to the duration. */
  ticks: { count: number; gapMs: number } | undefined;
  /** Whether the ladder's decode has a frame at the poster time (a stream shorter than its file: not). */
  frameAtPosterTime = true;
  /** The time (seconds) of each `extractPoster` run: a second decode of the original. */
  readonly extracts: number[] = [];
  /** The poster time each transcode was asked for (undefined: no poster asked). */
  readonly posterTimes: (number | undefined)[] = [];
  private running = 0;

  /** Whether a transcode is running now. */
  get transcoding(): boolean {
    return this.running > 0;
  }

  async available() {
    return true;
  }
  async probe() {
    return this.probed;
  }
  async extractPoster(_input: string, at: number, outFile: string) {
    this.extracts.push(at);
    await writeFile(outFile, Buffer.from('poster'));
  }
  async transcodeHls(
    _input: string,
    outDir: string,
    ladder: Parameters<VideoTranscoder['transcodeHls']>[2],
    _hasAudio: boolean,
    opts: Parameters<VideoTranscoder['transcodeHls']>[4],
  ) {
    this.transcodes++;
    this.posterTimes.push(opts.poster?.atSeconds);
    if (opts.signal) this.signals.push(opts.signal);
    this.onTranscode?.();
    if (opts.signal?.aborted) throw new VideoError('cancelled', 'Video processing was cancelled.');
    this.running++;
    try {
      for (let i = 1; i <= (this.ticks?.count ?? 0); i++) {
        await new Promise((resolve) => setTimeout(resolve, this.ticks!.gapMs));
        opts.onProgress?.((this.probed.durationMs * 1000 * i) / this.ticks!.count);
      }
      // The poster frame is out early in the decode, well before the ladder ends.
      await new Promise((resolve) => setImmediate(resolve));
      const poster = opts.poster && this.frameAtPosterTime ? Buffer.from('poster') : undefined;
      if (poster) opts.poster?.onFrame?.(poster);
      return { ...(await this.writeHls(outDir, ladder, opts.signal)), poster };
    } finally {
      this.running--;
    }
  }

  private async writeHls(
    outDir: string,
    ladder: Parameters<VideoTranscoder['transcodeHls']>[2],
    signal: AbortSignal | undefined,
  ) {
    // Long enough for the poster's variants, started beside it, to be rendered meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw new VideoError('cancelled', 'Video processing was cancelled.');
    const renditions = [];
    for (const r of ladder) {
      await mkdir(path.join(outDir, r.name), { recursive: true });
      await writeFile(path.join(outDir, r.name, 'index.m3u8'), '#EXTM3U\n');
      await writeFile(path.join(outDir, r.name, 'init.mp4'), 'init');
      await writeFile(path.join(outDir, r.name, 'seg_00000.m4s'), 'seg');
      renditions.push({
        ...r,
        dir: r.name,
        playlist: `${r.name}/index.m3u8`,
        codecs: 'avc1.64001f,mp4a.40.2',
      });
    }
    const master = '#EXTM3U\n';
    await writeFile(path.join(outDir, 'master.m3u8'), master);
    return { master, renditions };
  }
}

/** The default processing configuration (as `serve` would parse it from an empty environment). */
export function processingConfig(): ProcessingConfig {
  return loadConfig({}, '/nonexistent').processing;
}

/** A media row as `startProcessing` returns it, its original already in `store`. */
export function mediaWith(
  store: MemoryStore,
  original: Buffer,
  over: Partial<MediaRecord> & Pick<MediaRecord, 'media_type' | 'mime_type'>,
): MediaRecord {
  const id = over.id ?? '00000000-0000-4000-8000-000000000001';
  const key = `${over.media_type}/owner/${id}.bin`;
  store.objects.set(key, { data: original, contentType: over.mime_type });
  return {
    id,
    bytes: original.length,
    sha256: sha256(original),
    content_sha256: null,
    storage_key: key,
    status: 'PROCESSING',
    ...over,
  } as MediaRecord;
}

export function jobContext(signal = new AbortController().signal): JobContext & { limits: number[] } {
  const limits: number[] = [];
  return {
    logger: pino({ level: 'silent' }),
    signal,
    jobId: 'job-1',
    attempt: 1,
    maxAttempts: 3,
    setTimeLimit: (s) => limits.push(s),
    limits,
  };
}
