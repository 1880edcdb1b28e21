/**
 * A SIGKILLed `mediary serve` leaves an upload's temp file and a video job's work directory (which
 * holds the whole original). The next start of a process on this data directory removes them at
 * once (not after 24 h), while scratch files of processes still running are left alone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { scratchTag } from '../../src/storage/scratch.ts';
import {
  embeddedUrl,
  fakeMp4,
  makeDevices,
  poolFor,
  spawnService,
  type ServiceProcess,
} from '../helpers/process.ts';
import { tempDir, testEnv } from '../helpers/server.ts';
import { videoClip } from '../helpers/video.ts';

let dataDir: string;
let videoTmp: string;
let env: Record<string, string>;
let svc: ServiceProcess | undefined;
let auth: Record<string, string>;
let clip: Buffer;

before(async () => {
  dataDir = await tempDir('mediary-fault-leftovers-');
  videoTmp = path.join(dataDir, 'video-tmp');
  await mkdir(videoTmp);
  const clipFile = path.join(dataDir, 'clip.mp4');
  clip = await videoClip(clipFile, { size: '1280x720', rate: 25, duration: 20 });
  // A slow preset keeps the job (and its work directory) alive long enough to be killed in it.
  env = await testEnv(dataDir, { LOG_LEVEL: 'warn', VIDEO_TMP_DIR: videoTmp, VIDEO_PRESET: 'slow' });
  svc = await spawnService(env);
  const db = poolFor(embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  auth = (await makeDevices(db, 1, 'left'))[0]!.auth;
  await db.end();
});

after(async () => {
  await svc?.kill('SIGTERM');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function session(bytes: number, mimeType: string, messageId: string, sha256?: string) {
  const res = await fetch(svc!.api('/media'), {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ fileName: 'f', mimeType, bytes, messageId, ...(sha256 ? { sha256 } : {}) }),
  });
  assert.equal(res.status, 201);
  return (await res.json()) as { mediaId: string; upload: { url: string } };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('the next start removes exactly the temp files and video work directories a killed process left (live ones stay)', async () => {
  const store = path.join(dataDir, 'objects');
  // A video job in progress.
  const sha = createHash('sha256').update(clip).digest('hex');
  const v = await session(clip.length, 'video/mp4', 'video', sha);
  const put = await fetch(v.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'video/mp4' },
    body: new Uint8Array(clip),
  });
  assert.equal(put.status, 200);
  const done = await fetch(svc!.api(`/media/${v.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200);
  const workDir = await until('the video work directory', async () => {
    const dirs = (await readdir(videoTmp)).filter((d) => d.startsWith('mediary-video-'));
    return dirs[0] !== undefined ? path.join(videoTmp, dirs[0]) : undefined;
  });

  // An upload in progress.
  const body = fakeMp4(2 * 1024 * 1024);
  const u = await session(body.length, 'video/mp4', 'upload');
  const req = request(u.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'video/mp4', 'content-length': String(body.length) },
  });
  req.on('error', () => undefined);
  req.write(body.subarray(0, body.length / 2));
  const tmpFile = await until('the upload temp file', async () => {
    const names = await readdir(path.join(store, '.tmp')).catch(() => [] as string[]);
    return names[0] !== undefined ? path.join(store, '.tmp', names[0]) : undefined;
  });

  // Scratch files of a process that is still running (this test) must survive the cleanup.
  const live = path.join(store, '.tmp', `${scratchTag()}live`);
  await writeFile(live, 'still being written');
  const liveDir = path.join(videoTmp, `mediary-video-${scratchTag()}live`);
  await mkdir(liveDir);

  await svc!.kill('SIGKILL');
  req.destroy();
  assert.ok(existsSync(tmpFile) && existsSync(workDir), 'the crash left both behind');

  svc = await spawnService(env);
  assert.equal(existsSync(tmpFile), false, 'the upload temp file is gone');
  assert.equal(existsSync(workDir), false, 'the video work directory is gone');
  assert.ok(existsSync(live) && existsSync(liveDir), 'a live process’ scratch files are kept');
});
