/**
 * The video job's life cycle through the real worker with real ffmpeg: shutdown mid-transcode (a
 * spawned `mediary worker` and the in-process worker), cancellation by deleting the media, the time
 * budget, and an audio-only upload. Each case checks that ffmpeg is gone, the work directory
 * (VIDEO_TMP_DIR) is empty, and no HLS object is left behind unreferenced.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { ProcessingConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startWorker } from '../../src/processing/runtime.ts';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { call, startTestServer, tempDir, testEnv, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { videoClip } from '../helpers/video.ts';
import { upload, waitFor } from './helpers.ts';

const run = promisify(execFile);
let t: TestServer;
let dir: string;
/** VIDEO_TMP_DIR of every worker here: the per-job work directories live under it. */
let work: string;
const clips: Record<string, Buffer> = {};

async function makeClip(name: string, args: string[]): Promise<Buffer> {
  const out = path.join(dir, name);
  await run('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args, out]);
  return readFile(out);
}

before(async () => {
  dir = await tempDir('mediary-video-lifecycle-');
  work = path.join(dir, 'work');
  await mkdir(work);
  // Long enough that the `slow` preset keeps ffmpeg busy for several seconds; `ultrafast` finishes it
  // in a few. Low bit rate keeps the upload small.
  clips.long = await videoClip(path.join(dir, 'long.mp4'), {
    size: '640x360',
    rate: 25,
    duration: 60,
    audioHz: 440,
    video: ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '35', '-pix_fmt', 'yuv420p'],
    extra: ['-b:a', '32k'],
  });
  clips.short = await videoClip(path.join(dir, 'short.mp4'), { size: '320x180', rate: 10, duration: 1 });
  // AAC in an MP4 container, no video stream: what a voice memo saved as .mp4 looks like.
  clips.audio = await makeClip('audio-only.mp4', [
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2'],
    ...['-c:a', 'aac', '-b:a', '32k'],
  ]);
  t = await startTestServer({
    WORKER_ENABLED: 'false',
    PROCESSING_RETRY_LIMIT: '1',
    PROCESSING_RETRY_DELAY_SECONDS: '0',
    PROCESSING_POLL_INTERVAL_MS: '300',
    VIDEO_PRESET: 'ultrafast',
    VIDEO_TMP_DIR: work,
  });
});
after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type VideoOverrides = Partial<ProcessingConfig['video']>;

function inProcessWorker(overrides: Partial<ProcessingConfig> = {}, video: VideoOverrides = {}) {
  const store = new LocalObjectStore(
    t.config.storage.dir,
    new PublicUrls(new UrlSigner('x'.repeat(32)), t.config.publicUrl),
  );
  const config = t.config.processing;
  return startWorker({
    pool: t.server.database.pool,
    queue: t.server.queue,
    store,
    config: { ...config, ...overrides, video: { ...config.video, ...video } },
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 2),
  });
}

// ---- processes ----------------------------------------------------------------------------------

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string[];
}

async function processes(): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      out.push({ pid: Number(name), ppid: Number(ppid), state: state!, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** ffmpeg processes started by `parent` (live ones; a zombie is dead). */
async function ffmpegChildren(parent: number): Promise<Proc[]> {
  return (await processes()).filter(
    (p) => p.ppid === parent && p.state !== 'Z' && path.basename(p.cmdline[0] ?? '') === 'ffmpeg',
  );
}

async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits for `parent`'s HLS ffmpeg run (the one with the split filter) and answers its pid. */
async function transcodeStarted(parent: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hls = (await ffmpegChildren(parent)).find((p) => p.cmdline.includes('-filter_complex'));
    if (hls) return hls.pid;
    await sleep(25);
  }
  assert.fail('the HLS transcode never started');
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

// ---- store and queue state ---------------------------------------------------------------------------

async function filesUnder(root: string): Promise<string[]> {
  try {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => path.relative(t.config.storage.dir, path.join(e.parentPath, e.name)))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** HLS objects of a media in the store vs. the ones its row references. */
async function hlsObjects(id: string) {
  const stored = await filesUnder(path.join(t.config.storage.dir, 'hls', id));
  const { rows } = await t.server.database.pool.query<{ storage_key: string }>(
    'SELECT storage_key FROM media_hls_objects WHERE media_id = $1 ORDER BY storage_key',
    [id],
  );
  return { stored, referenced: rows.map((r) => r.storage_key).sort() };
}

async function job(id: string) {
  const { rows } = await t.server.database.pool.query(
    `SELECT state, retry_count FROM pgboss.job WHERE name = 'media-process-video' AND data->>'mediaId' = $1
     ORDER BY created_on DESC LIMIT 1`,
    [id],
  );
  return rows[0] as { state: string; retry_count: number };
}

async function settledJob(id: string) {
  for (let i = 0; i < 400; i++) {
    const j = await job(id);
    if (j.state !== 'active') return j;
    await sleep(25);
  }
  return job(id);
}

async function uploadVideo(auth: Record<string, string>, bytes: Buffer) {
  const { id, done } = await upload(t, auth, bytes, 'video/mp4');
  assert.equal(done.status, 200, done.text);
  return id;
}

/** Nothing of a job that did not finish is left: no ffmpeg, no work directory, no HLS object. */
async function assertCleanedUp(id: string, ffmpegPid: number) {
  assert.equal(await alive(ffmpegPid), false, 'ffmpeg was killed');
  assert.deepEqual(await readdir(work), [], 'the work directory was removed');
  assert.deepEqual(await hlsObjects(id), { stored: [], referenced: [] }, 'no HLS object left');
}

async function assertReadyAndConsistent(auth: Record<string, string>, id: string) {
  const end = await waitFor(t, auth, id, ['READY', 'FAILED'], 120_000);
  assert.equal(end.status, 'READY', JSON.stringify(end.error));
  const objects = await hlsObjects(id);
  assert.ok(objects.referenced.length >= 4, 'master, media playlist, init and segments');
  assert.deepEqual(objects.stored, objects.referenced, 'every stored HLS object is referenced');
  const master = await call(t.api(`/media/${id}/hls/master.m3u8`), { headers: auth });
  assert.equal(master.status, 200, master.text);
  return end;
}

// ---- the tests -----------------------------------------------------------------------------------

describe('video jobs: shutdown, cancellation, timeout, audio-only', () => {
  test('SIGTERM to `mediary worker` mid-transcode: ffmpeg killed, temp removed, job handed back and completed elsewhere', async () => {
    const user = await t.user('video-sigterm');
    const id = await uploadVideo(user.auth, clips.long!);
    const env = await testEnv(t.dataDir, {
      DATABASE_URL: t.databaseUrl,
      PROCESSING_CONCURRENCY: '1',
      // Every worker applies its retry policy to the queue when it starts: keep the server's.
      PROCESSING_RETRY_LIMIT: '1',
      PROCESSING_RETRY_DELAY_SECONDS: '0',
      PROCESSING_SHUTDOWN_GRACE_SECONDS: '0',
      VIDEO_PRESET: 'slow',
      VIDEO_TMP_DIR: work,
    });
    const child = spawn(process.execPath, ['bin/mediary.mjs', 'worker'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let ffmpegPid: number;
    try {
      ffmpegPid = await transcodeStarted(child.pid!);
      assert.equal((await readdir(work)).length, 1, 'one work directory while the job runs');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, 'a clean exit');
    } finally {
      child.kill('SIGKILL');
    }
    await assertCleanedUp(id, ffmpegPid);
    assert.deepEqual(await job(id), { state: 'retry', retry_count: 0 }, 'handed back, no attempt spent');

    const worker = await inProcessWorker();
    try {
      const end = await assertReadyAndConsistent(user.auth, id);
      assert.equal(end.attempts, 1);
      assert.deepEqual(await settledJob(id), { state: 'completed', retry_count: 0 });
    } finally {
      await worker.stop();
    }
    assert.deepEqual(await readdir(work), []);
  });

  test('in-process stop() past the grace period: ffmpeg killed and temp removed before stop() returns', async () => {
    const user = await t.user('video-stop');
    const id = await uploadVideo(user.auth, clips.long!);
    const worker = await inProcessWorker({ shutdownGraceSeconds: 1 }, { preset: 'slow' });
    let ffmpegPid: number;
    try {
      ffmpegPid = await transcodeStarted(process.pid);
    } finally {
      await worker.stop();
    }
    assert.equal(worker.busy, 0);
    await assertCleanedUp(id, ffmpegPid);
    assert.deepEqual(await job(id), { state: 'retry', retry_count: 0 });

    const next = await inProcessWorker();
    try {
      await assertReadyAndConsistent(user.auth, id);
    } finally {
      await next.stop();
    }
  });

  test('deleting the media mid-transcode cancels the job: ffmpeg killed, nothing written is kept', async () => {
    const user = await t.user('video-delete');
    const id = await uploadVideo(user.auth, clips.long!);
    const worker = await inProcessWorker({}, { preset: 'slow' });
    try {
      const ffmpegPid = await transcodeStarted(process.pid);
      const { rows } = await t.server.database.pool.query<{ key: string }>(
        'SELECT key FROM media_variants WHERE media_id = $1',
        [id],
      );
      assert.deepEqual(rows, [], 'the poster variants are not recorded before READY');
      const started = Date.now();
      const del = await call(t.api(`/media/${id}`), { method: 'DELETE', headers: user.auth });
      assert.equal(del.status, 204);
      await until('ffmpeg is killed', async () => !(await alive(ffmpegPid)), 5_000);
      assert.ok(Date.now() - started < 5_000, 'cancelled promptly, not run to completion');
      await until('the worker is idle', async () => worker.busy === 0);
      await assertCleanedUp(id, ffmpegPid);
      const settled = await settledJob(id);
      assert.equal(settled.state, 'completed', 'a cancelled job is not retried');
      const row = await t.server.database.pool.query<{ status: string }>(
        'SELECT status FROM media WHERE id = $1',
        [id],
      );
      assert.equal(row.rows[0]!.status, 'DELETED');
      // The poster variants written before the delete are gone too (they live under variants/<id>/…).
      const variants = (await filesUnder(t.config.storage.dir)).filter((f) => f.includes(id));
      assert.deepEqual(variants, [], 'no object of the deleted media is left');

      // The worker goes on with the next job.
      const nextId = await uploadVideo(user.auth, clips.short!);
      await assertReadyAndConsistent(user.auth, nextId);
    } finally {
      await worker.stop();
    }
  });

  test('a failed HLS upload leaves no segment behind (every upload lane settles before the cleanup)', async () => {
    const user = await t.user('video-upload-fails');
    const id = await uploadVideo(user.auth, clips.short!);
    // One segment upload fails at once; the others are still being written when it does.
    class FlakyStore extends LocalObjectStore {
      override async put(...args: Parameters<LocalObjectStore['put']>) {
        const [key] = args;
        if (key.startsWith(`hls/${id}/`)) {
          if (key.endsWith('.m4s')) {
            args[1].destroy();
            throw new Error('the store refused the segment');
          }
          await sleep(300);
        }
        return super.put(...args);
      }
    }
    const store = new FlakyStore(
      t.config.storage.dir,
      new PublicUrls(new UrlSigner('x'.repeat(32)), t.config.publicUrl),
    );
    const worker = await startWorker({
      pool: t.server.database.pool,
      queue: t.server.queue,
      store,
      config: t.config.processing,
      logger: createLogger('silent', 2),
    });
    try {
      const st = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 60_000);
      assert.equal(st.status, 'FAILED');
      assert.equal(st.error.code, 'processing_failed');
      assert.equal(st.attempts, 2, 'a store error is retried');
      await until('the worker is idle', async () => worker.busy === 0);
      await sleep(500); // longer than the slow puts: a put left running would have landed by now
      assert.deepEqual(await hlsObjects(id), { stored: [], referenced: [] });
      assert.deepEqual(await readdir(work), []);
    } finally {
      await worker.stop();
    }
  });

  test('VIDEO_JOB_TIMEOUT_SECONDS: a clip over budget FAILS with a timeout reason, and the worker goes on', async () => {
    const user = await t.user('video-timeout');
    // 720p (a 360p and a 720p rendition) for 60 s: the `slow` preset needs several times the
    // budget for it even on an idle machine. The 360p clip the other tests use was transcoded
    // within 15 s on one once the poster came from the ladder's decode.
    const heavy = await videoClip(path.join(dir, 'heavy.mp4'), {
      size: '1280x720',
      rate: 25,
      duration: 60,
      audioHz: 440,
      video: ['-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '40', '-pix_fmt', 'yuv420p'],
      extra: ['-b:a', '32k'],
    });
    const id = await uploadVideo(user.auth, heavy);
    // Room for the probe on a loaded machine (the budget must not run out before the transcode
    // starts), yet far below what the `slow` preset needs for the whole clip.
    const worker = await inProcessWorker({}, { preset: 'slow', jobTimeoutSeconds: 15 });
    try {
      const ffmpegPid = await transcodeStarted(process.pid);
      const st = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 60_000);
      assert.equal(st.status, 'FAILED');
      assert.equal(st.error.code, 'timeout');
      assert.equal(st.error.message, 'Video processing did not finish within 15 s.');
      assert.equal(st.attempts, 1, 'over budget is not retried: it would run out again');
      await until('the worker is idle', async () => worker.busy === 0);
      await assertCleanedUp(id, ffmpegPid);
      assert.equal((await settledJob(id)).state, 'completed');
      const master = await call(t.api(`/media/${id}/hls/master.m3u8`), { headers: user.auth });
      assert.equal(master.status, 409);

      const nextId = await uploadVideo(user.auth, clips.short!);
      await assertReadyAndConsistent(user.auth, nextId);
    } finally {
      await worker.stop();
    }
    assert.deepEqual(await readdir(work), []);
  });

  test('lanes: a photo does not wait for transcodes, and one slot of two is kept for images', async () => {
    const user = await t.user('video-lanes');
    const videos = [await uploadVideo(user.auth, clips.long!), await uploadVideo(user.auth, clips.long!)];
    const { rows: lanes } = await t.server.database.pool.query<{ name: string }>(
      `SELECT DISTINCT name FROM pgboss.job WHERE data->>'mediaId' = ANY($1::text[])`,
      [videos],
    );
    assert.deepEqual(lanes, [{ name: 'media-process-video' }], 'videos queue in their own lane');
    const worker = await inProcessWorker({ concurrency: 2 }, { preset: 'slow' });
    try {
      await transcodeStarted(process.pid);
      const photo = await upload(t, user.auth, fixture('cameras/Canon_40D.jpg'));
      assert.equal(photo.done.status, 200, photo.done.text);
      // Without lanes both slots would be transcoding, and the photo would wait for one to end.
      await waitFor(t, user.auth, photo.id, ['READY']);
      const { rows } = await t.server.database.pool.query<{ status: string }>(
        'SELECT status FROM media WHERE id = ANY($1::uuid[])',
        [videos],
      );
      assert.deepEqual(
        rows.map((r) => r.status).sort(),
        ['PROCESSING', 'UPLOADED'],
        'one video transcodes, the other waits: the second slot stays with the images',
      );
    } finally {
      for (const id of videos) await call(t.api(`/media/${id}`), { method: 'DELETE', headers: user.auth });
      await until('the worker is idle', async () => worker.busy === 0, 30_000);
      await worker.stop();
    }
  });

  test('declared video/mp4 but only audio inside: FAILED no_video with a reason, never stuck', async () => {
    const user = await t.user('video-audio-only');
    const { id, done } = await upload(t, user.auth, clips.audio!, 'video/mp4');
    // The container sniffs as video/mp4 (an `isom` MP4), so completion accepts it; the job finds
    // no video stream and fails for good.
    assert.equal(done.status, 200, done.text);
    const worker = await inProcessWorker();
    try {
      const st = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 30_000);
      assert.equal(st.status, 'FAILED');
      assert.equal(st.error.code, 'no_video');
      assert.equal(st.error.message, 'The file has no video stream (audio-only files are not processed).');
      assert.equal(st.attempts, 1);
      assert.equal((await settledJob(id)).state, 'completed', 'an expected outcome, not retried');
      assert.deepEqual(await hlsObjects(id), { stored: [], referenced: [] });
      const master = await call(t.api(`/media/${id}/hls/master.m3u8`), { headers: user.auth });
      assert.equal(master.status, 409);
    } finally {
      await worker.stop();
    }
    assert.deepEqual(await readdir(work), []);
  });

  test('declared as audio: refused when the session is created', async () => {
    const user = await t.user('audio-declared');
    const bytes = clips.audio!;
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: user.auth,
      json: { fileName: 'memo.m4a', mimeType: 'audio/mp4', bytes: bytes.length, sha256: sha256(bytes) },
    });
    assert.ok(s.status >= 400 && s.status < 500, `${s.status} ${s.text}`);
    assert.equal(s.body.error.code, 'mime_type_not_allowed', s.text);
  });
});
