/**
 * The ffmpeg adapter against real ffmpeg, on clips generated with ffmpeg's test sources.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { extractPoster, probe, transcodeHls, VideoError } from '../../src/infra/video/ffmpeg.ts';
import { planLadder } from '../../src/processing/video/ladder.ts';
import { tempDir } from '../helpers/server.ts';
import { videoClip, type VideoClipOptions } from '../helpers/video.ts';

const run = promisify(execFile);
let dir: string;

async function makeClip(name: string, args: string[]): Promise<string> {
  const out = path.join(dir, name);
  await run('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args, out]);
  return out;
}

const clips: Record<string, string> = {};
before(async () => {
  dir = await tempDir('mediary-video-');
  const clip = async (name: string, opts: VideoClipOptions) => {
    const out = path.join(dir, name);
    await videoClip(out, opts);
    return out;
  };
  clips.landscape = await clip('landscape.mp4', { size: '1920x1080', rate: 24, duration: 3, audioHz: 440 });
  // A phone clip: stored landscape 1280x720 with a 90° rotation in its metadata.
  const stored = await clip('stored-landscape.mp4', { size: '1280x720', rate: 30, duration: 2 });
  clips.portrait = await makeClip('portrait.mp4', [
    '-i',
    stored,
    '-c',
    'copy',
    '-metadata:s:v:0',
    'rotate=90',
  ]);
  clips.uhd = await clip('uhd.mp4', { size: '3840x2160', rate: 10, duration: 1 });
  clips.odd = await clip('odd.mp4', {
    size: '320x240',
    rate: 15,
    duration: 1,
    filter: 'scale=333:211',
    pixFmt: 'yuv444p',
  });
  // Its index first (`+faststart`), so ffmpeg can read it from a pipe as it arrives.
  clips.streamable = await clip('streamable.mp4', {
    size: '640x360',
    rate: 24,
    duration: 4,
    extra: ['-movflags', '+faststart'],
  });
  clips.truncated = await clip('truncated.mp4', { size: '640x360', rate: 24, duration: 2 });
  await truncate(clips.truncated, Math.floor((await stat(clips.truncated)).size / 3));
  clips.audioOnly = await makeClip('audio.m4a', [
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:duration=1',
    '-c:a',
    'aac',
  ]);
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const opts = { timeoutMs: 120_000 };

/**
 * Whether a PNG's pixels are stored, not compressed: its IDAT chunks hold at least the filtered
 * rows (a filter byte and 3 bytes a pixel for RGB), which deflate would have shrunk.
 */
function isUncompressedRgbPng(png: Buffer): boolean {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  let idat = 0;
  for (let at = 8; at + 8 <= png.length;) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') idat += length;
    at += 12 + length;
  }
  return idat >= height * (1 + width * 3);
}

async function ffprobeStreams(file: string) {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', file]);
  return (
    JSON.parse(stdout) as {
      streams: { codec_type: string; codec_name: string; width?: number; height?: number }[];
    }
  ).streams;
}

describe('ffmpeg video adapter', () => {
  test('probe: duration, codecs, frame rate, displayed size with rotation applied', async () => {
    const l = await probe(clips.landscape!);
    assert.equal(l.width, 1920);
    assert.equal(l.height, 1080);
    assert.equal(l.videoCodec, 'h264');
    assert.equal(l.audioCodec, 'aac');
    assert.equal(l.frameRate, 24);
    assert.ok(Math.abs(l.durationMs - 3000) < 200, String(l.durationMs));
    const p = await probe(clips.portrait!);
    assert.equal(p.rotation % 180, 90);
    assert.deepEqual([p.width, p.height], [720, 1280], 'displayed portrait');
    assert.equal(p.audioCodec, null);
  });

  test('ladder: never upscales, 2160p only for 4K sources, portrait keeps orientation, even sizes', () => {
    assert.deepEqual(
      planLadder(1920, 1080).map((r) => [r.name, r.width, r.height]),
      [
        ['360p', 640, 360],
        ['720p', 1280, 720],
        ['1080p', 1920, 1080],
      ],
    );
    assert.deepEqual(
      planLadder(3840, 2160).map((r) => r.name),
      ['360p', '720p', '1080p', '2160p'],
    );
    assert.deepEqual(
      planLadder(720, 1280).map((r) => [r.name, r.width, r.height]),
      [
        ['360p', 360, 640],
        ['720p', 720, 1280],
      ],
    );
    const tiny = planLadder(333, 211);
    assert.deepEqual(
      tiny.map((r) => [r.name, r.width, r.height]),
      [['360p', 334, 212]],
    );
  });

  test('HLS ladder from one run: playlists parse, segments decode, renditions at the planned sizes', async () => {
    const src = await probe(clips.landscape!);
    const ladder = planLadder(src.width, src.height).filter((r) => r.name !== '1080p');
    const out = path.join(dir, 'hls-landscape');
    const progress: number[] = [];
    const result = await transcodeHls(clips.landscape!, out, ladder, true, {
      ...opts,
      onProgress: (us) => progress.push(us),
    });
    const master = await readFile(path.join(out, 'master.m3u8'), 'utf8');
    assert.match(master, /^#EXTM3U/);
    const infs = master.split('\n').filter((l) => l.startsWith('#EXT-X-STREAM-INF:'));
    assert.equal(infs.length, 2);
    for (const inf of infs)
      assert.match(inf, /BANDWIDTH=\d+,RESOLUTION=\d+x\d+,CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"/);
    assert.ok(progress.length > 0 && progress.at(-1)! > 0, 'progress reported');
    for (const r of result.renditions) {
      const playlist = await readFile(path.join(out, r.playlist), 'utf8');
      const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)?.[1];
      assert.ok(
        init && (await stat(path.join(out, r.dir, init))).size > 0,
        'init segment beside the playlist',
      );
      assert.match(playlist, /#EXT-X-ENDLIST/);
      const streams = await ffprobeStreams(path.join(out, r.playlist));
      const v = streams.find((s) => s.codec_type === 'video')!;
      assert.deepEqual([v.codec_name, v.width, v.height], ['h264', r.width, r.height]);
      assert.ok(streams.some((s) => s.codec_type === 'audio' && s.codec_name === 'aac'));
    }
  });

  test('portrait phone clip without an audio track: renditions come out upright', async () => {
    const src = await probe(clips.portrait!);
    const ladder = planLadder(src.width, src.height);
    const out = path.join(dir, 'hls-portrait');
    const result = await transcodeHls(clips.portrait!, out, ladder, false, opts);
    for (const r of result.renditions) {
      assert.ok(r.height > r.width);
      const v = (await ffprobeStreams(path.join(out, r.playlist))).find((s) => s.codec_type === 'video')!;
      assert.deepEqual([v.width, v.height], [r.width, r.height]);
    }
  });

  test('portrait phone clip: the poster comes out upright', async () => {
    const src = await probe(clips.portrait!);
    const poster = path.join(dir, 'poster.png');
    await extractPoster(clips.portrait!, src.durationMs / 10000, poster, opts);
    const meta = await sharp(poster).metadata();
    assert.deepEqual([meta.width, meta.height], [720, 1280]);
    assert.ok(isUncompressedRgbPng(await readFile(poster)), 'a hand-over to sharp: not deflated');
  });

  test("the ladder's poster is the frame extractPoster takes at that time, upright", async () => {
    for (const name of ['landscape', 'portrait'] as const) {
      const src = await probe(clips[name]!);
      const at = src.durationMs / 10_000;
      const frames: Buffer[] = [];
      const result = await transcodeHls(
        clips[name]!,
        path.join(dir, `hls-poster-${name}`),
        planLadder(src.width, src.height).slice(0, 1),
        name === 'landscape',
        {
          ...opts,
          poster: { atSeconds: at, onFrame: (png) => frames.push(png) },
        },
      );
      assert.equal(frames.length, 1, 'handed over once');
      assert.equal(result.poster, frames[0]);
      const file = path.join(dir, `poster-${name}.png`);
      await extractPoster(clips[name]!, at, file, opts);
      const [ours, theirs] = await Promise.all(
        [result.poster!, file].map((png) => sharp(png).raw().toBuffer({ resolveWithObject: true })),
      );
      assert.deepEqual([ours!.info.width, ours!.info.height], [src.width, src.height]);
      assert.ok(ours!.data.equals(theirs!.data), `${name}: the same pixels as the second decode's frame`);
      // ffmpeg does not deflate the frame (on the thread that feeds the ladder) for sharp to inflate.
      assert.ok(isUncompressedRgbPng(result.poster!), `${name}: the frame is not deflated`);
    }
  });

  test('no frame at the poster time: no poster, and the ladder completes', async () => {
    const src = await probe(clips.odd!);
    let frames = 0;
    const out = path.join(dir, 'hls-no-poster');
    const result = await transcodeHls(clips.odd!, out, planLadder(src.width, src.height), false, {
      ...opts,
      poster: { atSeconds: src.durationMs / 1000 + 5, onFrame: () => frames++ },
    });
    assert.equal(result.poster, undefined);
    assert.equal(frames, 0);
    assert.match(await readFile(path.join(out, result.renditions[0]!.playlist), 'utf8'), /#EXT-X-ENDLIST/);
  });

  test('the poster frame is handed over while ffmpeg is still reading the original', async () => {
    // The original arrives through a FIFO: most of it, then the rest only once the frame is out.
    // A frame held back until ffmpeg ends (a frame-threaded PNG encoder does that) never comes.
    const bytes = await readFile(clips.streamable!);
    const fifo = path.join(dir, 'streamable.fifo');
    await run('mkfifo', [fifo]);
    let onFrame!: () => void;
    const frame = new Promise<void>((resolve) => (onFrame = resolve));
    const job = transcodeHls(fifo, path.join(dir, 'hls-fifo'), planLadder(640, 360), false, {
      ...opts,
      poster: { atSeconds: 0.4, onFrame: () => onFrame() },
    });
    const writer = createWriteStream(fifo);
    writer.write(bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    const before = await Promise.race([
      frame.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000).unref()),
    ]);
    writer.end(bytes.subarray(Math.floor(bytes.length * 0.7)));
    const result = await job;
    assert.ok(before, 'the frame came before the last 30 % of the original was written');
    assert.ok(result.poster && result.poster.length > 0);
  });

  test('a 2160p source gets a 2160p rendition', async () => {
    const uhd = await probe(clips.uhd!);
    assert.deepEqual(planLadder(uhd.width, uhd.height).at(-1)?.name, '2160p');
  });

  test('odd dimensions are evened', async () => {
    const odd = await probe(clips.odd!);
    const out = path.join(dir, 'hls-odd');
    const result = await transcodeHls(clips.odd!, out, planLadder(odd.width, odd.height), false, opts);
    const v = (await ffprobeStreams(path.join(out, result.renditions[0]!.playlist))).find(
      (s) => s.codec_type === 'video',
    )!;
    assert.deepEqual([v.width, v.height], [334, 212]);
  });

  test('truncated and audio-only inputs fail with a reason, never hang', async () => {
    await assert.rejects(
      async () => {
        const p = await probe(clips.truncated!);
        await transcodeHls(
          clips.truncated!,
          path.join(dir, 'hls-trunc'),
          planLadder(p.width, p.height),
          false,
          opts,
        );
      },
      (err: unknown) => err instanceof VideoError && ['unreadable', 'ffmpeg_failed'].includes(err.code),
    );
    await assert.rejects(
      probe(clips.audioOnly!),
      (err: unknown) => err instanceof VideoError && err.code === 'no_video',
    );
  });

  test('cancellation and timeouts kill ffmpeg', async () => {
    const ac = new AbortController();
    const src = await probe(clips.landscape!);
    const started = Date.now();
    const job = transcodeHls(
      clips.landscape!,
      path.join(dir, 'hls-cancel'),
      planLadder(src.width, src.height),
      true,
      {
        timeoutMs: 120_000,
        signal: ac.signal,
      },
    );
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(job, (err: unknown) => err instanceof VideoError && err.code === 'cancelled');
    assert.ok(Date.now() - started < 30_000);
    await assert.rejects(
      transcodeHls(clips.landscape!, path.join(dir, 'hls-timeout'), planLadder(src.width, src.height), true, {
        timeoutMs: 100,
      }),
      (err: unknown) => err instanceof VideoError && err.code === 'timeout',
    );
  });
});
