/**
 * Video limits before transcoding (SECURITY.md "Decompression bombs"): a clip over
 * VIDEO_MAX_DURATION_SECONDS or VIDEO_MAX_PIXELS ends FAILED with its reason from ffprobe's figures,
 * before ffmpeg decodes a single frame of it (no poster, no rendition); one within both still plays.
 * Real ffmpeg, real files: the server's FFMPEG_PATH is a wrapper that notes each run and hands it on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { videoClip } from '../helpers/video.ts';
import { upload, waitFor } from './helpers.ts';

const run = promisify(execFile);
let t: TestServer;
let dir: string;
let ffmpegLog: string;

/** The ffmpeg runs the server made on an uploaded original (the ladder with its poster frame), so far. */
async function ffmpegRunsOnOriginals(): Promise<string[]> {
  const text = await readFile(ffmpegLog, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => /(^|\s)-i\s\S*\/original(\s|$)/.test(l));
}

function clip(name: string, size: `${number}x${number}`, seconds: number): Promise<Buffer> {
  return videoClip(path.join(dir, name), { size, rate: 5, duration: seconds });
}

before(async () => {
  dir = await tempDir('mediary-video-limits-');
  ffmpegLog = path.join(dir, 'ffmpeg-runs.log');
  const real = (await run('sh', ['-c', 'command -v ffmpeg'])).stdout.trim();
  const wrapper = path.join(dir, 'ffmpeg');
  await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${ffmpegLog}'\nexec '${real}' "$@"\n`);
  await chmod(wrapper, 0o755);
  t = await startTestServer({
    VIDEO_MAX_DURATION_SECONDS: '2',
    VIDEO_MAX_PIXELS: String(320 * 240),
    FFMPEG_PATH: wrapper,
  });
});
after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Uploads `bytes` and waits for the outcome; also the ffmpeg runs on it the server made meanwhile. */
async function processClip(bytes: Buffer) {
  const user = await t.user('video-limits');
  const runsBefore = (await ffmpegRunsOnOriginals()).length;
  const { id, done } = await upload(t, user.auth, bytes, 'video/mp4');
  assert.equal(done.status, 200, done.text);
  const media = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 120_000);
  const runs = (await ffmpegRunsOnOriginals()).slice(runsBefore);
  return { id, media, runs, auth: user.auth };
}

for (const [name, size, seconds, code] of [
  ['longer than VIDEO_MAX_DURATION_SECONDS', '160x120', 4, 'video_too_long'],
  ['larger than VIDEO_MAX_PIXELS', '640x360', 1, 'video_too_large'],
] as const) {
  test(`a clip ${name} fails with ${code} before ffmpeg decodes it`, async () => {
    const { id, media, runs, auth } = await processClip(await clip(`${code}.mp4`, size, seconds));
    assert.deepEqual(runs, [], 'ffmpeg never ran on it (no poster, no transcode)');
    assert.equal(media.status, 'FAILED');
    assert.equal(media.error.code, code);
    assert.match(media.error.message, /\d/, 'the message names the figures');
    const renditions = await call(t.api(`/media/${id}/hls/master.m3u8`), { headers: auth });
    assert.equal(renditions.status, 409, 'nothing to play');
  });
}

test('a clip within both limits is transcoded and plays', async () => {
  const { media, runs } = await processClip(await clip('fits.mp4', '320x240', 1));
  assert.equal(media.status, 'READY', JSON.stringify(media.error));
  // The wrapper sees the one run that decodes it, ladder and poster frame together (so its
  // silence above means something): the original is decoded exactly once.
  assert.equal(runs.length, 1, `ffmpeg runs seen: ${JSON.stringify(runs)}`);
  assert.match(runs[0]!, /-f hls .* pipe:3$/, 'the HLS ladder and the poster frame');
});
