/**
 * Thin adapter over Debian's ffmpeg/ffprobe (implements `VideoTranscoder`, src/processing/ports.ts):
 * probe, poster frame, and the whole HLS ladder — with the poster frame, when asked — from one
 * decode (split filter). Every run has a timeout, honours an AbortSignal (ffmpeg is killed), and
 * reports progress from `-progress`. Job logic calls this; it never spawns ffmpeg itself.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  VideoError,
  type HlsEncodeOptions,
  type HlsOutput,
  type TranscodeRunOptions,
  type VideoProbe,
  type VideoTranscoder,
} from '../../processing/ports.ts';
import { masterPlaylist, type Rendition } from '../../processing/video/ladder.ts';
import { PngFrameReader } from './png-frame.ts';

export { VideoError };
export type { HlsOutput, VideoProbe };

const run = promisify(execFile);

/** Where the binaries are (config: FFMPEG_PATH, FFPROBE_PATH); PATH lookup by default. */
export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
}

export const DEFAULT_BINARIES: FfmpegBinaries = { ffmpeg: 'ffmpeg', ffprobe: 'ffprobe' };

export async function ffmpegAvailable(bin: FfmpegBinaries = DEFAULT_BINARIES): Promise<boolean> {
  try {
    await run(bin.ffmpeg, ['-version'], { timeout: 10_000 });
    await run(bin.ffprobe, ['-version'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  tags?: Record<string, string>;
  side_data_list?: { rotation?: number }[];
}

function rate(r: string | undefined): number | null {
  if (!r) return null;
  const [n, d] = r.split('/').map(Number);
  return n !== undefined && d ? Math.round((n / d) * 1000) / 1000 : null;
}

export async function probe(
  file: string,
  timeoutMs = 30_000,
  opts: { ffprobePath?: string; signal?: AbortSignal | undefined } = {},
): Promise<VideoProbe> {
  let out: string;
  try {
    ({ stdout: out } = await run(
      opts.ffprobePath ?? 'ffprobe',
      ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL', signal: opts.signal },
    ));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { killed?: boolean };
    if (e.code === 'ENOENT') throw new VideoError('ffmpeg_missing', 'ffmpeg is not installed');
    if (e.name === 'AbortError') throw new VideoError('cancelled', 'Video processing was cancelled.');
    if (e.killed) throw new VideoError('timeout', `ffprobe took longer than ${timeoutMs} ms`);
    throw new VideoError('unreadable', 'The file is not a readable video.', { cause: err });
  }
  const parsed = JSON.parse(out) as {
    streams?: FfprobeStream[];
    format?: { duration?: string; format_name?: string; bit_rate?: string };
  };
  const video = parsed.streams?.find((s) => s.codec_type === 'video' && s.width && s.height);
  if (!video) throw new VideoError('no_video', 'The file has no video stream.');
  const audio = parsed.streams?.find((s) => s.codec_type === 'audio');
  const duration = Number(parsed.format?.duration);
  if (!Number.isFinite(duration) || duration <= 0)
    throw new VideoError('unreadable', 'The video has no usable duration.');
  // Display-matrix rotation is counter-clockwise in ffprobe's side data; the tag is clockwise.
  const matrix = video.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const rotation = (((matrix !== undefined ? -matrix : Number(video.tags?.rotate ?? 0)) % 360) + 360) % 360;
  const swap = rotation === 90 || rotation === 270;
  return {
    durationMs: Math.round(duration * 1000),
    container: parsed.format?.format_name ?? 'unknown',
    videoCodec: video.codec_name ?? 'unknown',
    audioCodec: audio?.codec_name ?? null,
    frameRate: rate(video.avg_frame_rate) ?? rate(video.r_frame_rate),
    bitRate: parsed.format?.bit_rate ? Number(parsed.format.bit_rate) : null,
    codedWidth: video.width!,
    codedHeight: video.height!,
    rotation,
    width: swap ? video.height! : video.width!,
    height: swap ? video.width! : video.height!,
  };
}

interface RunOptions extends TranscodeRunOptions {
  /** Defaults to `ffmpeg` on PATH. */
  ffmpegPath?: string | undefined;
  /** Receives what ffmpeg writes to its file descriptor 3 (`pipe:3`, the poster frame). */
  onPipe3?: ((chunk: Buffer) => void) | undefined;
}

/** Runs ffmpeg; kills it on timeout or abort; keeps the tail of stderr for the error. */
function ffmpeg(args: string[], opts: RunOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new VideoError('cancelled', 'Video processing was cancelled.'));
      return;
    }
    const child = spawn(
      opts.ffmpegPath ?? 'ffmpeg',
      ['-hide_banner', '-nostdin', '-y', '-progress', 'pipe:1', '-nostats', ...args],
      { stdio: ['ignore', 'pipe', 'pipe', opts.onPipe3 ? 'pipe' : 'ignore'] },
    );
    // With a fourth stdio entry Node's types no longer promise the pipes; they are there.
    const [, stdout, stderrPipe, pipe3] = child.stdio as unknown as (Readable | null)[];
    if (opts.onPipe3) pipe3?.on('data', opts.onPipe3);
    let stderr = '';
    let ended: VideoError | undefined;
    const stop = (err: VideoError) => {
      ended ??= err;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () => stop(new VideoError('timeout', `ffmpeg took longer than ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    const onAbort = () => stop(new VideoError('cancelled', 'Video processing was cancelled.'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let buffered = '';
    stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^out_time_us=(\d+)/.exec(line);
        if (m && opts.onProgress) opts.onProgress(Number(m[1]));
      }
    });
    stderrPipe?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' ? new VideoError('ffmpeg_missing', 'ffmpeg is not installed') : err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (ended) reject(ended);
      else if (code === 0) resolve();
      else
        reject(
          new VideoError(
            'ffmpeg_failed',
            `ffmpeg exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
  });
}

/**
 * The poster PNG is a hand-over to sharp, never stored: deflate blocks stored as they are, so
 * ffmpeg does not compress a whole frame (≈ 0.5 CPU s for a noisy 1080p frame at the default
 * level, on the thread that feeds the ladder) for sharp to inflate it again. Same pixels.
 */
const UNCOMPRESSED_PNG = ['-compression_level', '0'];

/** One frame at `atSeconds`, rotation applied (ffmpeg autorotates), as an uncompressed PNG. */
export async function extractPoster(
  input: string,
  atSeconds: number,
  outFile: string,
  opts: RunOptions,
): Promise<void> {
  await ffmpeg(
    [
      '-ss',
      atSeconds.toFixed(3),
      '-i',
      input,
      '-frames:v',
      '1',
      '-an',
      '-f',
      'image2',
      '-c:v',
      'png',
      ...UNCOMPRESSED_PNG,
      outFile,
    ],
    opts,
  );
}

const H264_CODECS: Record<Rendition['name'], string> = {
  // High profile; level by size.
  '360p': 'avc1.64001e',
  '720p': 'avc1.64001f',
  '1080p': 'avc1.640028',
  '2160p': 'avc1.640033',
};

/** The ffmpeg arguments of one ladder run (exported so benchmarks can run the same command by hand). */
export function hlsArguments(
  input: string,
  outDir: string,
  ladder: readonly Rendition[],
  hasAudio: boolean,
  opts: HlsEncodeOptions = {},
): string[] {
  const n = ladder.length + (opts.poster ? 1 : 0);
  const split = `[0:v]split=${n}${Array.from({ length: n }, (_, i) => `[s${i}]`).join('')}`;
  const scales = ladder.map(
    (r, i) => `[s${i}]scale=${r.width}:${r.height}:flags=bicubic,format=yuv420p[v${i}]`,
  );
  // The poster branch keeps the first frame at or after the time (what `-ss` before `-i` keeps:
  // ffmpeg's accurate seek is this same trim) and then ends, so `split` stops feeding it.
  const poster = opts.poster
    ? [`[s${ladder.length}]trim=start=${opts.poster.atSeconds.toFixed(3)},trim=end_frame=1[poster]`]
    : [];
  const args = ['-i', input, '-filter_complex', [split, ...scales, ...poster].join(';')];
  ladder.forEach((r, i) => {
    args.push('-map', `[v${i}]`);
    if (hasAudio) args.push('-map', '0:a:0');
    args.push(
      `-c:v:${i}`,
      'libx264',
      `-b:v:${i}`,
      String(r.videoBitrate),
      `-maxrate:v:${i}`,
      String(Math.round(r.videoBitrate * 1.2)),
      `-bufsize:v:${i}`,
      String(r.videoBitrate * 2),
    );
    if (hasAudio) args.push(`-c:a:${i}`, 'aac', `-b:a:${i}`, String(r.audioBitrate), `-ac:a:${i}`, '2');
  });
  const seg = opts.segmentSeconds ?? 4;
  args.push(
    '-preset',
    opts.preset ?? 'veryfast',
    '-profile:v',
    'high',
    // Closed GOPs aligned to segment boundaries so every rendition switches cleanly.
    '-force_key_frames',
    `expr:gte(t,n_forced*${seg})`,
    '-sc_threshold',
    '0',
    '-f',
    'hls',
    '-hls_time',
    String(seg),
    '-hls_playlist_type',
    'vod',
    '-hls_segment_type',
    'fmp4',
    '-hls_flags',
    'independent_segments',
    '-hls_fmp4_init_filename',
    'init.mp4',
    '-hls_segment_filename',
    path.join(outDir, '%v', 'seg_%05d.m4s'),
    '-var_stream_map',
    // No `name:` key (ffmpeg 4.1, the npm-shipped fallback, lacks it): `%v` is the rendition's
    // index, and transcodeHls renames each index directory to the rendition's name afterwards.
    ladder.map((_, i) => (hasAudio ? `v:${i},a:${i}` : `v:${i}`)).join(' '),
    path.join(outDir, '%v', 'index.m3u8'),
  );
  if (opts.poster) {
    // A second output: one PNG on file descriptor 3. One encoder thread, so the frame comes out
    // when it is encoded: a frame-threaded PNG encoder holds a lone frame until the run ends.
    args.push(
      ...['-map', '[poster]', '-frames:v', '1', '-an', '-threads', '1'],
      ...['-f', 'image2pipe', '-c:v', 'png', ...UNCOMPRESSED_PNG, 'pipe:3'],
    );
  }
  return args;
}

/**
 * The whole ladder from one decode: `split` the (auto-rotated) video once per rendition, scale,
 * encode H.264 (+ AAC when there is audio) into fMP4 HLS segments, then write our own master
 * playlist with BANDWIDTH, RESOLUTION and CODECS. With `poster`, one more branch of the same
 * decode is the poster frame, handed to `poster.onFrame` as soon as it is encoded.
 */
export async function transcodeHls(
  input: string,
  outDir: string,
  ladder: readonly Rendition[],
  hasAudio: boolean,
  opts: RunOptions & HlsEncodeOptions,
): Promise<HlsOutput> {
  await mkdir(outDir, { recursive: true });
  const args = hlsArguments(input, outDir, ladder, hasAudio, opts);
  await Promise.all(ladder.map((_, i) => mkdir(path.join(outDir, String(i)), { recursive: true })));
  const frame = opts.poster ? new PngFrameReader() : undefined;
  let poster: Buffer | undefined;
  await ffmpeg(args, {
    ...opts,
    onPipe3: frame
      ? (chunk) => {
          const png = frame.push(chunk);
          if (!png) return;
          poster = png;
          opts.poster?.onFrame?.(png);
        }
      : undefined,
  });
  // Playlists name their init segment and segments relative to their own directory.
  for (const [i, r] of ladder.entries())
    await rename(path.join(outDir, String(i)), path.join(outDir, r.name));
  const renditions = ladder.map((r) => ({
    ...r,
    dir: r.name,
    playlist: `${r.name}/index.m3u8`,
    codecs: hasAudio ? `${H264_CODECS[r.name]},mp4a.40.2` : H264_CODECS[r.name],
  }));
  const master = masterPlaylist(renditions, hasAudio);
  await writeFile(path.join(outDir, 'master.m3u8'), master);
  return { master, renditions, poster };
}

/**
 * The {@link VideoTranscoder} port over ffmpeg/ffprobe. The binaries' paths are plain constructor
 * parameters (config: FFMPEG_PATH, FFPROBE_PATH); how they are found is the caller's business.
 */
export class FfmpegTranscoder implements VideoTranscoder {
  private seen = false;

  constructor(readonly bin: FfmpegBinaries = DEFAULT_BINARIES) {}

  /** Checked per job until found once, so installing ffmpeg needs no restart. */
  async available(): Promise<boolean> {
    if (!this.seen) this.seen = await ffmpegAvailable(this.bin);
    return this.seen;
  }

  probe(file: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<VideoProbe> {
    return probe(file, opts.timeoutMs, { ffprobePath: this.bin.ffprobe, signal: opts.signal });
  }

  extractPoster(input: string, atSeconds: number, outFile: string, opts: TranscodeRunOptions): Promise<void> {
    return extractPoster(input, atSeconds, outFile, { ...opts, ffmpegPath: this.bin.ffmpeg });
  }

  transcodeHls(
    input: string,
    outDir: string,
    ladder: readonly Rendition[],
    hasAudio: boolean,
    opts: TranscodeRunOptions & HlsEncodeOptions,
  ): Promise<HlsOutput> {
    return transcodeHls(input, outDir, ladder, hasAudio, { ...opts, ffmpegPath: this.bin.ffmpeg });
  }
}
