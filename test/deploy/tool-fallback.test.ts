/**
 * A machine without Debian's ffmpeg/ffprobe and heif-convert (issue 17 §1): a real `mediary serve`
 * started with a PATH that holds none of them (and FFMPEG_PATH, FFPROBE_PATH, HEIF_CONVERT_PATH
 * unset) falls back to the npm-shipped ffmpeg/ffprobe and libheif compiled to WebAssembly, says so
 * in its start-up log, transcodes a video into the HLS ladder and decodes a phone's HEIC photo
 * (EXIF and GPS kept). The inputs are made here with the system's tools.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import exifr from 'exifr';
import type pg from 'pg';
import sharp from 'sharp';
import { mintUserToken } from '../../src/auth/principals.ts';
import { HeifConverter, HeifDecodeError } from '../../src/infra/imaging/heif.ts';
import { WasmHeifDecoder } from '../../src/infra/imaging/heif-wasm.ts';
import { FIXTURES, sha256 } from '../helpers/files.ts';
import {
  embeddedUrl,
  poolFor,
  spawnService,
  stopOrphanPostgres,
  type ServiceProcess,
} from '../helpers/process.ts';
import { call, JWT_SECRET, tempDir, testEnv } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';
import { videoClip } from '../helpers/video.ts';

let dataDir: string;
let svc: ServiceProcess;
let db: pg.Pool;
let auth: Record<string, string>;
const lines: string[] = [];
let heicBytes: Buffer | undefined;

/** A phone-like HEIC (a Nikon photo with EXIF and GPS) made with the system's heif-enc. */
function heic(): Buffer {
  if (!heicBytes) {
    const out = path.join(dataDir, 'photo.heic');
    execFileSync('heif-enc', ['-q', '60', '-o', out, path.join(FIXTURES, 'gps/DSCN0021.jpg')], {
      stdio: 'ignore',
    });
    heicBytes = readFileSync(out);
  }
  return heicBytes;
}

before(async () => {
  dataDir = await tempDir('mediary-tool-fallback-');
  // An empty directory as the whole PATH: no ffmpeg, ffprobe, heif-convert (or prlimit) in reach.
  const emptyPath = path.join(dataDir, 'empty-path');
  await mkdir(emptyPath);
  for (const name of ['FFMPEG_PATH', 'FFPROBE_PATH', 'HEIF_CONVERT_PATH']) delete process.env[name];
  const cloned = await createTestDatabase();
  const env = await testEnv(dataDir, {
    PATH: emptyPath,
    LOG_LEVEL: 'info',
    ...(cloned ? { DATABASE_URL: cloned } : {}),
  });
  svc = await spawnService(env, { onStdout: (l) => lines.push(l) });
  db = poolFor(cloned ?? embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  // A user (not a device): only the owning user sees a photo's location.
  auth = { authorization: `Bearer ${await mintUserToken(JWT_SECRET, 'fallback-user')}` };
});

after(async () => {
  await svc?.kill('SIGTERM');
  await db?.end();
  if (dataDir) {
    await stopOrphanPostgres(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  }
});

async function uploadAndWait(bytes: Buffer, mimeType: string) {
  const s = await call(svc.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'in', mimeType, bytes: bytes.length, sha256: sha256(bytes) },
  });
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: { 'content-type': mimeType },
    body: bytes,
  });
  assert.equal(put.status, 200, put.text);
  const id = s.body.mediaId as string;
  const done = await call(svc.api(`/media/${id}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  const deadline = Date.now() + 240_000;
  for (;;) {
    const st = await call(svc.api(`/media/${id}/status`), { headers: auth });
    if (st.body.status === 'READY' || st.body.status === 'FAILED') break;
    assert.ok(Date.now() < deadline, `media ${id} is still ${st.body.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { id, media: (await call(svc.api(`/media/${id}`), { headers: auth })).body };
}

test('the start-up log names the npm-shipped tools it falls back to', () => {
  const tools = lines.map((l) => JSON.parse(l)).find((l) => /^processing tools/.test(l.msg ?? ''));
  assert.ok(tools, `no "processing tools" line in:\n${lines.join('\n')}`);
  assert.equal(tools.ffmpeg?.source, 'npm');
  assert.match(tools.ffmpeg.path, /node_modules\/@ffmpeg-installer\//);
  assert.equal(tools.ffprobe?.source, 'npm');
  assert.deepEqual(tools.heif, { decoder: 'libheif-wasm', source: 'npm' });
});

test('a video is transcoded into the HLS ladder by the npm-shipped ffmpeg', async () => {
  const clip = path.join(dataDir, 'clip.mp4');
  const bytes = await videoClip(clip, { size: '1280x720', rate: 12, duration: 2, audioHz: 440 });
  const { id, media } = await uploadAndWait(bytes, 'video/mp4');
  assert.equal(media.status, 'READY', JSON.stringify(media.error));
  assert.deepEqual([media.width, media.height], [1280, 720]);
  assert.deepEqual(
    media.hls.renditions.map((r: any) => [r.name, r.width, r.height]),
    [
      ['360p', 640, 360],
      ['720p', 1280, 720],
    ],
  );
  // Every rendition playlist and the segments it names are there.
  const master = await call(svc.api(`/media/${id}/hls/master.m3u8`), { headers: auth });
  assert.equal(master.status, 200, master.text);
  const playlists = master.text.split('\n').filter((l) => l.startsWith('http'));
  assert.equal(playlists.length, 2, master.text);
  for (const url of playlists) {
    const pl = await call(url);
    assert.equal(pl.status, 200, pl.text);
    const parts = [
      ...[...pl.text.matchAll(/URI="([^"]+)"/g)].map((m) => m[1]!),
      ...pl.text.split('\n').filter((l) => l.startsWith('http')),
    ];
    assert.ok(parts.length >= 2, pl.text);
    for (const part of parts) assert.equal((await fetch(part)).status, 200, part);
  }
});

test('a phone HEIC is decoded by libheif in WebAssembly, EXIF and GPS kept', async () => {
  const { id, media } = await uploadAndWait(heic(), 'image/heic');
  assert.equal(media.status, 'READY', JSON.stringify(media.error));
  assert.equal(media.detectedMimeType, 'image/heic');
  assert.deepEqual([media.width, media.height], [640, 480]);
  assert.ok(media.gps, 'GPS read from the HEIC');
  assert.equal(media.metadata.exif?.make, 'NIKON');
  const res = await fetch(svc.api(`/media/${id}/variants/300?mode=proxy`), { headers: auth });
  assert.equal(res.status, 200);
  assert.equal((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width, 300);
});

describe('the WebAssembly decoder beside heif-convert', () => {
  const never = new AbortController().signal;
  const opts = { maxPixels: 100_000_000, images: 1, primary: 0 };

  test('same image, same EXIF as heif-convert', async () => {
    const input = heic();
    const wasm = await new WasmHeifDecoder().toJpeg(input, never, opts);
    const system = await new HeifConverter('heif-convert').toJpeg(input, never, opts);
    const [a, b] = await Promise.all(
      [wasm, system].map((j) => sharp(j).removeAlpha().raw().toBuffer({ resolveWithObject: true })),
    );
    assert.deepEqual([a!.info.width, a!.info.height], [b!.info.width, b!.info.height]);
    let sum = 0;
    for (let i = 0; i < a!.data.length; i++) sum += Math.abs(a!.data[i]! - b!.data[i]!);
    // Both decode the same HEVC bitstream; only the JPEG re-encoding differs.
    assert.ok(sum / a!.data.length < 3, `mean difference ${sum / a!.data.length}`);
    const [ea, eb] = await Promise.all([exifr.parse(wasm), exifr.parse(system)]);
    assert.equal(ea.Make, eb.Make);
    assert.equal(String(ea.DateTimeOriginal), String(eb.DateTimeOriginal));
    assert.deepEqual([ea.latitude, ea.longitude], [eb.latitude, eb.longitude]);
  });

  test('the pixel limit holds before decoding', async () => {
    await assert.rejects(
      new WasmHeifDecoder().toJpeg(heic(), never, { ...opts, maxPixels: 640 * 480 - 1 }),
      HeifDecodeError,
    );
  });

  test('a cancel stops the decode', async () => {
    const ac = new AbortController();
    const pending = new WasmHeifDecoder().toJpeg(heic(), ac.signal, opts);
    ac.abort(new Error('cancelled by the test'));
    await assert.rejects(pending, /cancelled by the test/);
  });

  test('bytes that are not HEIF are a decode error', async () => {
    await assert.rejects(
      new WasmHeifDecoder().toJpeg(Buffer.from('not a heif file at all'), never, opts),
      HeifDecodeError,
    );
  });
});
