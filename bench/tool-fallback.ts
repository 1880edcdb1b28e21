/**
 * The npm-shipped fallback tools against the system's, same inputs, same run (issue 17 §1):
 *
 *   node --import tsx bench/tool-fallback.ts        (npm run bench:tools)
 *
 *   - HEIC → JPEG per image (what the image job asks of its decoder): Debian's heif-convert vs
 *     libheif compiled to WebAssembly (libheif-js in a worker thread), a 12 MP photo-like HEIC
 *     (4032×3024, an iPhone's size) and a small one; median of a few runs each;
 *   - the 10 s 1080p ladder (360p + 720p + 1080p HLS, one ffmpeg run, the adapter's
 *     `transcodeHls`): Debian's ffmpeg vs the static ffmpeg 4.1 of `@ffmpeg-installer/ffmpeg`.
 * Needs Debian's ffmpeg and libheif-examples (to make the inputs and as the baseline).
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { HeifConverter } from '../src/infra/imaging/heif.ts';
import { WasmHeifDecoder } from '../src/infra/imaging/heif-wasm.ts';
import { npmBinary } from '../src/infra/tools.ts';
import { transcodeHls } from '../src/infra/video/ffmpeg.ts';
import { planLadder } from '../src/processing/video/ladder.ts';
import { FIXTURES } from '../test/helpers/files.ts';
import { tempDir } from '../test/helpers/server.ts';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const never = new AbortController().signal;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function heicOf(dir: string, name: string, width: number, height: number): Promise<Buffer> {
  const src = path.join(dir, `${name}.jpg`);
  await sharp(path.join(FIXTURES, 'gps/DSCN0021.jpg'))
    .resize(width, height, { fit: 'fill' })
    .jpeg({ quality: 90 })
    .toFile(src);
  const out = path.join(dir, `${name}.heic`);
  await run('heif-enc', ['-q', '50', '-o', out, src]);
  return readFile(out);
}

async function main() {
  const dir = await tempDir('mediary-bench-tools-');
  try {
    const ffmpeg = npmBinary('@ffmpeg-installer/ffmpeg');
    if (!ffmpeg) throw new Error('no npm-shipped ffmpeg for this platform');
    console.log(`${os.cpus().length} CPUs, ${RUNS} runs each (median)`);

    console.log('\nHEIC → JPEG, ms per image (median):');
    const system = new HeifConverter('heif-convert');
    const wasm = new WasmHeifDecoder();
    for (const [name, w, h] of [
      ['12 MP (4032×3024)', 4032, 3024],
      ['0.3 MP (640×480)', 640, 480],
    ] as const) {
      const input = await heicOf(dir, `${w}x${h}`, w, h);
      const opts = { maxPixels: 100_000_000, images: 1, primary: 0 };
      const s: number[] = [];
      const m: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        s.push(await timed(() => system.toJpeg(input, never, opts)));
        m.push(await timed(() => wasm.toJpeg(input, never, opts)));
      }
      console.log(
        `  ${name}: heif-convert ${median(s).toFixed(0)} ms, libheif-wasm ${median(m).toFixed(0)} ms (${(
          median(m) / median(s)
        ).toFixed(1)}×)`,
      );
    }

    const clip = path.join(dir, 'clip.mp4');
    await run('ffmpeg', [
      ...['-hide_banner', '-v', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30:duration=10'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=10'],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p'],
      ...['-c:a', 'aac', '-shortest', clip],
    ]);
    const ladder = planLadder(1920, 1080).filter((r) => r.name !== '2160p');
    console.log(`\n10 s 1080p30 → ${ladder.map((r) => r.name).join(' + ')} HLS (veryfast), seconds:`);
    const times: Record<string, number> = {};
    for (const [label, bin] of [
      ['system ffmpeg', 'ffmpeg'],
      ['npm ffmpeg 4.1', ffmpeg],
    ] as const) {
      const out = path.join(dir, label.replace(/\W+/g, '-'));
      times[label] = await timed(() =>
        transcodeHls(clip, out, ladder, true, { timeoutMs: 600_000, ffmpegPath: bin, preset: 'veryfast' }),
      );
      await rm(out, { recursive: true, force: true });
      console.log(`  ${label}: ${(times[label] / 1000).toFixed(1)} s`);
    }
    console.log(
      `  npm / system: ${(times['npm ffmpeg 4.1']! / times['system ffmpeg']!).toFixed(2)}× (1 run each)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
