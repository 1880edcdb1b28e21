/**
 * bench:video's input: a 10 s 1080p30 H.264 + AAC clip, encoded like a camera would (not the tests'
 * ultrafast). Its test pattern is flat colour, far easier to compress than a camera's frames;
 * `BENCH_VIDEO_NOISE=<0–100>` adds that much per-pixel noise (ffmpeg's `noise` filter, changing
 * with each frame): 12 gives ≈ 35 Mbit/s and a 2.5 MB PNG per frame (default PNG level).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Writes the clip into `dir` and returns its path. */
export async function makeBenchClip(dir: string): Promise<string> {
  const clip = path.join(dir, 'clip.mp4');
  const noise = Number(process.env.BENCH_VIDEO_NOISE ?? 0);
  await run('ffmpeg', [
    ...['-hide_banner', '-nostdin', '-y', '-v', 'error'],
    ...['-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=30:duration=10${noise ? `,noise=alls=${noise}:allf=t+u` : ''}`],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=10'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p'],
    ...['-c:a', 'aac', '-shortest', clip],
  ]);
  return clip;
}
