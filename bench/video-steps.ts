/**
 * Where the video pipeline's CPU goes beside the ladder, step by step (issue 22 §5).
 *
 *   node --import tsx bench/video-steps.ts        (npm run bench:video-steps)
 *
 * On bench:video's clip (10 s 1080p30 H.264 + AAC → 360p + 720p), each step alone, in this process,
 * one after the other, `BENCH_REPS` times (default 5; medians):
 *   - ffmpeg: the ladder as the adapter runs it (with the poster branch on pipe:3) against the
 *     same ladder without it (alternating), and the poster frame alone at each PNG compression
 *     level, so the frame's encode shows without the ladder's noise;
 *   - node (process CPU: main thread, libuv pool and libvips threads): the poster's render (decode,
 *     resize, four WebP variants, preview), the thumbhash, the variants' store writes, the
 *     original's copy + sha256, file-type, and storing the HLS objects (local store, fsync);
 *   - ffprobe's CPU for the probe.
 * `BENCH_VIDEO_NOISE` makes the clip camera-like (bench/lib/video-clip.ts); `BENCH_STEPS_LADDER=0`
 * skips the ladders. Nothing else runs in the process meanwhile, so its CPU is the step's; other tenants of the
 * machine do not count (CPU seconds, not wall time), though they make caches colder.
 */
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { fileTypeFromFile } from 'file-type';
import { rgbaToThumbHash } from 'thumbhash';
import { hlsArguments, probe, transcodeHls } from '../src/infra/video/ffmpeg.ts';
import { renderVariants } from '../src/infra/imaging/sharp-imaging.ts';
import { LocalObjectStore } from '../src/storage/local.ts';
import { copyOriginal, putVariant, VARIANT_SIZES } from '../src/processing/job-kit.ts';
import type { ProcessingRecords } from '../src/processing/ports.ts';
import type { MediaRecord } from '../src/media/repo.ts';
import { planLadder } from '../src/processing/video/ladder.ts';
import { tempDir } from '../test/helpers/server.ts';
import { reapedChildrenSeconds } from './lib/cpu.ts';
import { makeBenchClip } from './lib/video-clip.ts';

const run = promisify(execFile);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const PRESET = 'veryfast';
const SEGMENT = 4;
/** `BENCH_STEPS_LADDER=0` skips the two ladder runs (the slow part) and the HLS store step. */
const LADDERS = process.env.BENCH_STEPS_LADDER !== '0';

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

const nodeCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** CPU seconds (this process and the children it reaped meanwhile) and wall seconds of `fn`. */
async function measure<T>(
  fn: () => Promise<T>,
): Promise<{ node: number; child: number; wall: number; value: T }> {
  const n0 = nodeCpu();
  const c0 = reapedChildrenSeconds(process.pid);
  const t0 = performance.now();
  const value = await fn();
  return {
    wall: (performance.now() - t0) / 1000,
    node: nodeCpu() - n0,
    child: reapedChildrenSeconds(process.pid) - c0,
    value,
  };
}

const samples = new Map<string, { node: number[]; child: number[]; wall: number[] }>();
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const m = await measure(fn);
  const s = samples.get(name) ?? { node: [], child: [], wall: [] };
  s.node.push(m.node);
  s.child.push(m.child);
  s.wall.push(m.wall);
  samples.set(name, s);
  return m.value;
}

/** The poster frame alone at `atSeconds` (the ladder's trim), PNG at `level` (undefined: default). */
async function posterAlone(clip: string, atSeconds: number, level: number | undefined): Promise<Buffer> {
  const { stdout } = await run(
    'ffmpeg',
    [
      ...['-hide_banner', '-nostdin', '-v', 'error', '-i', clip, '-filter_complex'],
      `[0:v]trim=start=${atSeconds.toFixed(3)},trim=end_frame=1[poster]`,
      ...['-map', '[poster]', '-frames:v', '1', '-an', '-threads', '1', '-f', 'image2pipe', '-c:v', 'png'],
      ...(level === undefined ? [] : ['-compression_level', String(level)]),
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** The same run decoding to the same frame, encoding nothing: what the PNG encode adds is the rest. */
async function decodeAlone(clip: string, atSeconds: number): Promise<void> {
  await run('ffmpeg', [
    ...['-hide_banner', '-nostdin', '-v', 'error', '-i', clip, '-filter_complex'],
    `[0:v]trim=start=${atSeconds.toFixed(3)},trim=end_frame=1[poster]`,
    ...['-map', '[poster]', '-frames:v', '1', '-an', '-f', 'null', '-'],
  ]);
}

async function main() {
  const dir = await tempDir('mediary-bench-video-steps-');
  const clip = await makeBenchClip(dir);
  const bytes = (await stat(clip)).size;
  const ladder = planLadder(1920, 1080).filter((r) => r.name === '360p' || r.name === '720p');
  const atSeconds = 1; // 10 % of the clip, as the job asks
  const store = new LocalObjectStore(path.join(dir, 'store'), { signedGet: () => '' });
  const records = { recordVerifiedSha256: async () => undefined } as unknown as ProcessingRecords;
  const { sha256 } = await store.put('originals/clip', createReadStream(clip), {
    bytes,
    contentType: 'video/mp4',
  });
  const media = { id: 'bench', storage_key: 'originals/clip', bytes, sha256: null, content_sha256: sha256 };
  console.log(`clip ${(bytes / 1e6).toFixed(1)} MB; ${REPS} rounds; load ${os.loadavg()[0]!.toFixed(1)}`);
  const loadStart = os.loadavg();

  const pngs = new Map<string, Buffer>();
  for (let round = 0; round < REPS; round++) {
    // ffmpeg: the ladder with and without the poster branch, alternating which goes first.
    const out = path.join(dir, 'hls');
    const ladderRun = async (withPoster: boolean) => {
      await rm(out, { recursive: true, force: true });
      await mkdir(out, { recursive: true });
      if (withPoster) {
        await transcodeHls(clip, out, ladder, true, {
          timeoutMs: 600_000,
          preset: PRESET,
          segmentSeconds: SEGMENT,
          poster: { atSeconds },
        });
        return;
      }
      await Promise.all(ladder.map((_, i) => mkdir(path.join(out, String(i)), { recursive: true })));
      const args = hlsArguments(clip, out, ladder, true, { preset: PRESET, segmentSeconds: SEGMENT });
      await new Promise<void>((resolve, reject) => {
        const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-y', '-v', 'error', ...args], {
          stdio: 'ignore',
        });
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg ${code}`))));
      });
    };
    for (const withPoster of LADDERS ? (round % 2 === 0 ? [false, true] : [true, false]) : [])
      await step(withPoster ? 'ffmpeg: ladder + poster branch' : 'ffmpeg: ladder alone', () =>
        ladderRun(withPoster),
      );

    // ffmpeg: the poster frame alone, by PNG compression level, against decoding only.
    await step('ffmpeg: decode to the poster frame, no encode', () => decodeAlone(clip, atSeconds));
    for (const level of [undefined, 0] as const) {
      const name = level === undefined ? 'default' : `level ${level}`;
      pngs.set(
        name,
        await step(`ffmpeg: poster frame, PNG ${name}`, () => posterAlone(clip, atSeconds, level)),
      );
    }

    // node: the poster's render from each PNG (what posterVariants does), then its store writes.
    for (const [name, png] of pngs) {
      await step(`sharp: PNG ${name} (${(png.length / 1e6).toFixed(2)} MB) decode only`, () =>
        import('sharp').then(({ default: sharp }) => sharp(png).raw().toBuffer()),
      );
      const rendered = await step(`sharp: render from PNG ${name} (decode, resize, 4 WebP, preview)`, () =>
        renderVariants(png, { sizes: VARIANT_SIZES, format: 'webp', maxPixels: 100e6, autoOrient: false }),
      );
      if (name !== 'default') continue;
      await step('thumbhash', async () => {
        const { width, height, rgba } = rendered.preview;
        return rgbaToThumbHash(width, height, rgba);
      });
      await rm(path.join(dir, 'store', 'variants'), { recursive: true, force: true });
      await step('store: 4 poster variants (sha256, stat, put + fsync)', async () => {
        for (const v of rendered.variants) await putVariant(store, `bench-${round}`, 'webp', v);
      });
    }

    // node: the original's copy + sha256, file-type; ffprobe.
    const input = path.join(dir, 'original');
    await rm(input, { force: true });
    await step('copy original + sha256 (store → work file)', () =>
      copyOriginal(store, records, media as unknown as MediaRecord, input),
    );
    await step('file-type', () => fileTypeFromFile(input));
    await step('ffprobe', () => probe(input, 60_000));

    // node: the HLS objects into the store (the job's uploadDir does the same puts, 4 at a time).
    if (!LADDERS) {
      console.log(`round ${round + 1}/${REPS} done (load ${os.loadavg()[0]!.toFixed(1)})`);
      continue;
    }
    const files = (await readdir(out, { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
    await step(`store: the HLS objects (put + fsync)`, async () => {
      await Promise.all(
        files.map(async (d) => {
          const file = path.join(d.parentPath, d.name);
          const size = (await stat(file)).size;
          await store.put(`hls/${round}/${path.relative(out, file)}`, createReadStream(file), {
            bytes: size,
            contentType: 'application/octet-stream',
          });
        }),
      );
    });
    console.log(`round ${round + 1}/${REPS} done (load ${os.loadavg()[0]!.toFixed(1)})`);
  }
  await rm(dir, { recursive: true, force: true });

  console.log(
    `\n${'step'.padEnd(66)}${'node CPU s'.padStart(11)}${'child CPU s'.padStart(12)}${'wall s'.padStart(9)}`,
  );
  const results: Record<string, { nodeCpu: number; childCpu: number; wall: number }> = {};
  for (const [name, s] of samples) {
    results[name] = { nodeCpu: median(s.node), childCpu: median(s.child), wall: median(s.wall) };
    console.log(
      `${name.padEnd(66)}${median(s.node).toFixed(3).padStart(11)}${median(s.child).toFixed(3).padStart(12)}${median(s.wall).toFixed(3).padStart(9)}`,
    );
  }
  console.log(
    `load average at start ${loadStart.map((l) => l.toFixed(1)).join(' / ')}, at end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}`,
  );
  if (process.env.BENCH_OUT) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      process.env.BENCH_OUT,
      JSON.stringify(
        { rounds: REPS, loadStart, loadEnd: os.loadavg(), results, samples: Object.fromEntries(samples) },
        null,
        2,
      ) + '\n',
    );
  }
}

await main();
