/**
 * Test clips made with ffmpeg's `testsrc2` pattern (and a `sine` tone for audio): one place for the
 * ffmpeg command line that the video, storage, web and client tests used to write out by hand.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface VideoClipOptions {
  /** Frame size of the pattern, `WIDTHxHEIGHT`. */
  size: `${number}x${number}`;
  /** Frames per second. */
  rate: number;
  /** Seconds. */
  duration: number;
  /** Add an AAC tone of this frequency (Hz), cut to the video's length. */
  audioHz?: number;
  /** A `-vf` filter graph (scaling to odd sizes, dropping frames). */
  filter?: string;
  /** H.264 pixel format; default yuv420p (needs even dimensions; yuv444p keeps odd ones). */
  pixFmt?: string;
  /** Video encoder arguments instead of fast H.264 (`-c:v libvpx …` for WebM). */
  video?: readonly string[];
  /** Further output arguments (audio bit rate, `-fps_mode vfr`, …), placed before the file name. */
  extra?: readonly string[];
}

/** Writes the clip to `out` (overwriting) and resolves with its bytes. */
export async function videoClip(out: string, opts: VideoClipOptions): Promise<Buffer> {
  const { size, rate, duration, audioHz } = opts;
  const args = ['-hide_banner', '-v', 'error', '-y'];
  args.push('-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${duration}`);
  if (audioHz !== undefined) args.push('-f', 'lavfi', '-i', `sine=frequency=${audioHz}:duration=${duration}`);
  if (opts.filter !== undefined) args.push('-vf', opts.filter);
  args.push(
    ...(opts.video ?? ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', opts.pixFmt ?? 'yuv420p']),
  );
  if (audioHz !== undefined) args.push('-c:a', 'aac', '-shortest');
  args.push(...(opts.extra ?? []), out);
  await run('ffmpeg', args);
  return readFile(out);
}
