/**
 * The video job's logic over fakes (no Postgres, no ffmpeg, no sharp; its work directory is a
 * real temp dir): what it stores and records, which failures end the job for good, which errors
 * it leaves to the queue's retry, and that a failed or cancelled run leaves nothing behind. The
 * real pipeline is test/processing/video-pipeline.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageDecodeError, VideoError } from '../../src/processing/ports.ts';
import type { VideoReadyResult } from '../../src/processing/video-repo.ts';
import { VideoJob } from '../../src/processing/video-job.ts';
import {
  FakeImaging,
  FakeTranscoder,
  jobContext,
  mediaWith,
  MemoryRecords,
  MemoryStore,
  MP4_BYTES,
  processingConfig,
} from './job-fakes.ts';

let tmpDir: string;
before(async () => {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'mediary-video-unit-'));
});
after(async () => {
  await rm(tmpDir, { recursive: true, force: true });
});

function setup() {
  const store = new MemoryStore();
  const records = new MemoryRecords();
  const imaging = new FakeImaging({ width: 1280, height: 720 });
  const transcoder = new FakeTranscoder();
  const config = processingConfig();
  const job = new VideoJob({ store, records, imaging, transcoder, config, tmpDir });
  const media = mediaWith(store, MP4_BYTES, { media_type: 'video', mime_type: 'video/mp4' });
  return { store, records, imaging, transcoder, config, job, media };
}

const workDirsLeft = async () => readdir(tmpDir);

describe('video job (fakes)', () => {
  test('success stores the poster variants and one HLS run, and records both', async () => {
    const { store, records, config, job, media } = setup();
    const ctx = jobContext();
    assert.deepEqual(await job.handle(media, ctx), { status: 'completed' });
    assert.deepEqual(ctx.limits, [config.video.jobTimeoutSeconds + 60], 'its own time budget');
    assert.equal(records.status, 'READY');
    const ready = records.ready as VideoReadyResult;
    assert.deepEqual(
      ready.variants.map((v) => [v.name, v.width, v.height]),
      [
        ['1200', 1200, 675],
        ['600', 600, 338],
        ['300', 300, 169],
        ['150', 150, 84],
      ],
    );
    const prefix = ready.hlsMasterKey.slice(0, -'/master.m3u8'.length);
    assert.match(prefix, new RegExp(`^hls/${media.id}/[0-9a-f-]{36}$`));
    assert.deepEqual(
      ready.renditions.map((r) => [r.name, r.width, r.height, r.playlistKey]),
      [
        ['360p', 640, 360, `${prefix}/360p/index.m3u8`],
        ['720p', 1280, 720, `${prefix}/720p/index.m3u8`],
      ],
    );
    // Every object of the run is stored and listed, with its content type; nothing else is.
    assert.deepEqual(store.keys('hls/'), ready.hlsObjects.map((o) => o.key).sort());
    assert.equal(store.objects.get(ready.hlsMasterKey)?.contentType, 'application/vnd.apple.mpegurl');
    assert.equal(store.objects.get(`${prefix}/720p/seg_00000.m4s`)?.contentType, 'video/mp4');
    for (const v of ready.variants) assert.ok(store.objects.has(v.key));
    assert.equal(ready.durationMs, 3000);
    assert.deepEqual(await workDirsLeft(), [], 'the work directory is removed');
  });

  test('an unreadable file fails the media for good with decode_failed, before any transcode', async () => {
    const { records, transcoder, job, media } = setup();
    transcoder.probe = async () => {
      throw new VideoError('unreadable', 'The file is not a readable video.');
    };
    assert.equal((await job.handle(media, jobContext())).status, 'failed');
    assert.equal(records.error?.code, 'decode_failed');
    assert.equal(transcoder.transcodes, 0);
    assert.deepEqual(await workDirsLeft(), []);
  });

  test('a poster frame the image decoder refuses fails with decode_failed and leaves no object', async () => {
    const { store, records, imaging, transcoder, job, media } = setup();
    imaging.fail = new ImageDecodeError('corrupt', 'The image cannot be read: truncated');
    assert.equal((await job.handle(media, jobContext())).status, 'failed');
    assert.equal(records.error?.code, 'decode_failed');
    // The ladder runs beside the poster: started, it is stopped by the poster's failure.
    assert.ok(transcoder.signals.every((s) => s.aborted));
    assert.deepEqual(store.keys('variants/'), []);
    assert.deepEqual(store.keys('hls/'), []);
  });

  test("the poster frame comes from the ladder's decode at 10 %, its variants made while the ladder runs", async () => {
    const { records, imaging, transcoder, job, media } = setup();
    const rendersDuringTranscode: boolean[] = [];
    const render = imaging.render.bind(imaging);
    imaging.render = async (...args) => {
      rendersDuringTranscode.push(transcoder.transcoding);
      return render(...args);
    };
    assert.equal((await job.handle(media, jobContext())).status, 'completed');
    assert.deepEqual(transcoder.posterTimes, [0.3], 'the frame at 10 % of the 3 s clip');
    assert.deepEqual(transcoder.extracts, [], 'no second decode of the original');
    assert.deepEqual(rendersDuringTranscode, [true], 'variants rendered beside the ladder');
    assert.equal(records.status, 'READY');
    assert.equal((records.ready as VideoReadyResult).variants.length, 4);
  });

  test("no frame at 10 % in the ladder's decode: the poster is the first frame, extracted after it", async () => {
    const { records, transcoder, job, media } = setup();
    transcoder.frameAtPosterTime = false;
    assert.equal((await job.handle(media, jobContext())).status, 'completed');
    assert.deepEqual(transcoder.extracts, [0]);
    assert.equal(records.status, 'READY');
    assert.equal((records.ready as VideoReadyResult).variants.length, 4);
    assert.deepEqual(await workDirsLeft(), []);
  });

  test('ladder progress reaches the records, rising, at most one write a second', async () => {
    const { records, transcoder, job, media } = setup();
    // ffmpeg reports 20 times a second for 2 s.
    transcoder.ticks = { count: 40, gapMs: 50 };
    const writes: { percent: number; at: number }[] = [];
    const setProgress = records.setProgress.bind(records);
    records.setProgress = async (id, percent) => {
      writes.push({ percent, at: performance.now() });
      return setProgress(id, percent);
    };
    let started = 0;
    let ended = 0;
    transcoder.onTranscode = () => (started = performance.now());
    const transcodeHls = transcoder.transcodeHls.bind(transcoder);
    transcoder.transcodeHls = async (...args) => {
      try {
        return await transcodeHls(...args);
      } finally {
        ended = performance.now();
      }
    };
    assert.equal((await job.handle(media, jobContext())).status, 'completed');
    const percents = writes.map((w) => w.percent);
    for (let i = 1; i < percents.length; i++) assert.ok(percents[i]! > percents[i - 1]!, String(percents));
    // Between the probe's milestone (8 %) and the ladder's end (90 %): the ladder's own writes.
    const during = writes.filter((w) => w.percent > 8 && w.percent < 90);
    assert.ok(during.length >= 1, `the ladder's progress is written (${percents.join()})`);
    // A timer that fires late only makes fewer writes: the bound holds on a loaded machine.
    const seconds = Math.floor((ended - started) / 1000);
    assert.ok(
      during.length <= seconds + 1,
      `${during.length} writes in ${ended - started} ms: ${percents.join()}`,
    );
  });

  test('a video longer than allowed fails with video_too_long and is never transcoded', async () => {
    const { records, transcoder, config, job, media } = setup();
    transcoder.probed = { ...transcoder.probed, durationMs: (config.video.maxDurationSeconds + 1) * 1000 };
    assert.equal((await job.handle(media, jobContext())).status, 'failed');
    assert.equal(records.error?.code, 'video_too_long');
    assert.equal(transcoder.transcodes, 0);
  });

  test('no ffmpeg: fails with ffmpeg_missing', async () => {
    const { records, transcoder, job, media } = setup();
    transcoder.available = async () => false;
    assert.equal((await job.handle(media, jobContext())).status, 'failed');
    assert.deepEqual(records.error, { code: 'ffmpeg_missing', message: 'ffmpeg is not installed' });
  });

  test('a store that fails to write throws (the queue retries), leaves the media PROCESSING and no object', async () => {
    const { store, records, job, media } = setup();
    const realPut = store.put.bind(store);
    let puts = 0;
    store.put = async (...args) => {
      // The poster variants go in; the HLS upload then hits the outage.
      if (++puts > 4) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      return realPut(...args);
    };
    await assert.rejects(job.handle(media, jobContext()), /socket hang up/);
    assert.equal(records.status, 'PROCESSING');
    assert.deepEqual(store.keys('variants/'), [], 'the poster variants it wrote are removed again');
    assert.deepEqual(store.keys('hls/'), []);
    assert.deepEqual(await workDirsLeft(), []);
  });

  test('a job cancelled during the transcode throws, records nothing and leaves nothing behind', async () => {
    const { store, records, transcoder, job, media } = setup();
    const abort = new AbortController();
    transcoder.onTranscode = () =>
      abort.abort(new Error('The media was deleted while it was being processed.'));
    await assert.rejects(job.handle(media, jobContext(abort.signal)));
    assert.equal(records.status, 'PROCESSING', 'the worker, not the job, decides what a cancel means');
    assert.equal(records.ready, undefined);
    assert.deepEqual(store.keys('variants/'), []);
    assert.deepEqual(store.keys('hls/'), []);
    assert.deepEqual(await workDirsLeft(), []);
  });
});
