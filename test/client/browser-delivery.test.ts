/**
 * Delivery to a web page, on the local store and on a real Ceph S3 store, in Chromium, from a page
 * on another origin (the API and the bucket list it: CORS_ORIGINS, and S3_CORS_ORIGINS applied by
 * `mediary storage setup`). Regression: on S3 the download and variant URLs answered 302 to the
 * bucket, and Chromium follows a cross-origin redirect with `Origin: null`, which no bucket CORS
 * rule matches, so `fetch` failed. The media record now carries signed URLs a page can use as they
 * are, in `<img>`/`<video>` and with `fetch`, and `?mode=url` hands one out as JSON.
 *
 * The same Ceph store also proves: HLS segments go straight to the bucket (presigned URLs in the
 * media playlists), and the sha256 the worker verifies after an S3 multipart upload is recorded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { launchChromium, startPageServer } from '../helpers/browser.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { asBody, MiB } from '../helpers/multipart-suite.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../processing/helpers.ts';
import { videoClip } from '../helpers/video.ts';

const run = promisify(execFile);
const BUCKET = 'mediary-delivery-test';
let ceph: Ceph;
let pageServer: Awaited<ReturnType<typeof startPageServer>>;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
const servers: Record<'local' | 's3', TestServer> = {} as never;
let webm: Buffer;
let mp4: Buffer;

before(async () => {
  ceph = await startCeph();
  pageServer = await startPageServer('');
  const cors = { CORS_ORIGINS: pageServer.url };
  const multipart = {
    MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
  };
  servers.local = await startTestServer({ ...cors, ...multipart });
  servers.s3 = await startTestServer({
    ...ceph.serverEnv(BUCKET, { S3_CORS_ORIGINS: pageServer.url }),
    ...cors,
    ...multipart,
  });
  const setup = await mediary(['storage', 'setup'], servers.s3.env);
  assert.equal(setup.code, 0, setup.stdout + setup.stderr);
  assert.match(setup.stdout, new RegExp(`CORS applied for ${pageServer.url}`));
  const dir = await tempDir('mediary-delivery-clips-');
  const clip = { size: '320x240', rate: 10, duration: 1 } as const;
  webm = await videoClip(path.join(dir, 'clip.webm'), { ...clip, video: ['-c:v', 'libvpx', '-b:v', '200k'] });
  mp4 = await videoClip(path.join(dir, 'clip.mp4'), clip);
  browser = await launchChromium();
  page = browser.page;
  await page.goto(`${pageServer.url}/`);
});
after(async () => {
  await browser?.close();
  await pageServer?.close();
  await servers.local?.close();
  await servers.s3?.close();
  await ceph?.stop();
});

type Auth = Record<string, string>;

/** Session → PUT (every header of upload.headers) → complete. */
async function upload(t: TestServer, auth: Auth, bytes: Buffer, mimeType: string): Promise<string> {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: {
      fileName: `clip.${mimeType.split('/')[1]}`,
      mimeType,
      bytes: bytes.length,
      sha256: sha256(bytes),
    },
  });
  assert.equal(s.status, 201, s.text);
  const put = await fetch(s.body.upload.url, {
    method: 'PUT',
    headers: s.body.upload.headers,
    body: asBody(bytes),
  });
  assert.equal(put.status, 200, await put.text());
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return s.body.mediaId;
}

/**
 * Runs in the page: reads the record with the bearer token, then uses its signed URLs without
 * any credentials — `<img>` for the original and a variant, `<video>` for a video original,
 * `fetch` for bytes — and the `?mode=url` answers of the download and variant routes.
 */
const PAGE_SCRIPT = String.raw`async ({ api, token, imageId, videoId }) => {
  const auth = { authorization: 'Bearer ' + token };
  const hex = async (buf) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))]
    .map((b) => b.toString(16).padStart(2, '0')).join('');
  const out = { errors: [] };
  const attempt = async (name, fn) => {
    try { out[name] = await fn(); } catch (err) { out.errors.push(name + ': ' + (err && err.name) + ' ' + (err && err.message)); }
  };
  const image = await (await fetch(api + '/media/' + imageId, { headers: auth })).json();
  const video = await (await fetch(api + '/media/' + videoId, { headers: auth })).json();
  out.downloadUrl = image.downloadUrl;
  out.variantUrl = image.variants[1].downloadUrl;
  out.urlsExpireAt = image.urlsExpireAt;
  const showImage = (src) => new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
    img.onerror = () => reject(new Error('img failed to load'));
    img.src = src;
  });
  await attempt('imgOriginal', () => showImage(image.downloadUrl));
  await attempt('imgVariant', () => showImage(image.variants[1].downloadUrl));
  await attempt('video', () => new Promise((resolve, reject) => {
    const v = document.createElement('video');
    v.muted = true;
    v.preload = 'auto';
    v.onloadeddata = () => resolve([v.videoWidth, v.videoHeight]);
    v.onerror = () => reject(new Error('video error ' + (v.error && v.error.code)));
    v.src = video.downloadUrl;
    document.body.append(v);
  }));
  await attempt('fetchOriginal', async () => hex(await (await fetch(image.downloadUrl)).arrayBuffer()));
  await attempt('fetchVariant', async () => hex(await (await fetch(image.variants[0].downloadUrl)).arrayBuffer()));
  await attempt('modeUrl', async () => {
    const res = await fetch(api + '/media/' + imageId + '/download?mode=url', { headers: auth });
    const body = await res.json();
    return { status: res.status, expiresAt: body.expiresAt, sha256: await hex(await (await fetch(body.url)).arrayBuffer()) };
  });
  await attempt('variantModeUrl', async () => {
    const v = image.variants[2];
    const body = await (await fetch(api.replace(/\/api\/v1$/, '') + v.url + '&mode=url', { headers: auth })).json();
    return await hex(await (await fetch(body.url)).arrayBuffer());
  });
  return out;
}`;

describe('a web page uses the signed URLs of the media record, on every store', () => {
  for (const backend of ['local', 's3'] as const) {
    test(`${backend}: <img>, <video> and fetch from another origin, and ?mode=url`, async () => {
      const t = servers[backend];
      const user = await t.user(`page-${backend}`);
      const jpeg = fixture('cameras/Canon_40D.jpg');
      const imageId = await upload(t, user.auth, jpeg, 'image/jpeg');
      const videoId = await upload(t, user.auth, webm, 'video/webm');
      await waitFor(t, user.auth, imageId, ['READY']);
      const record = (await call(t.api(`/media/${imageId}`), { headers: user.auth })).body;
      // Where the URLs point: the bucket itself on S3, the API's signed /storage route on disk.
      const expectedHost = new URL(backend === 's3' ? ceph.env.S3_ENDPOINT! : t.base).host;
      assert.equal(new URL(record.downloadUrl).host, expectedHost, record.downloadUrl);
      for (const v of record.variants) assert.equal(new URL(v.downloadUrl).host, expectedHost);
      assert.ok(Date.parse(record.urlsExpireAt) > Date.now() + 60_000, record.urlsExpireAt);
      // Signed for a window: fetching the record again gives the very same URLs (cache hits).
      const again = (await call(t.api(`/media/${imageId}`), { headers: user.auth })).body;
      assert.equal(again.downloadUrl, record.downloadUrl);
      assert.equal(again.variants[0].downloadUrl, record.variants[0].downloadUrl);

      const out = await page.evaluate(
        `(${PAGE_SCRIPT})(${JSON.stringify({
          api: t.api(''),
          token: user.token,
          imageId,
          videoId,
        })})`,
      );
      const o = out as Record<string, any>;
      assert.deepEqual(o.errors, [], JSON.stringify(o));
      assert.deepEqual(o.imgOriginal, [100, 68], 'the original shows in an <img>');
      assert.deepEqual(o.imgVariant, [record.variants[1].width, record.variants[1].height]);
      assert.deepEqual(o.video, [320, 240], 'the video original plays in a <video>');
      assert.equal(o.fetchOriginal, sha256(jpeg), 'fetch reads the original');
      assert.equal(o.fetchVariant, record.variants[0].sha256, 'fetch reads a variant');
      assert.equal(o.modeUrl.status, 200);
      assert.equal(o.modeUrl.sha256, sha256(jpeg), '?mode=url hands out a URL fetch can read');
      assert.equal(o.variantModeUrl, record.variants[2].sha256);
    });
  }
});

describe('HLS on S3: segments come from the bucket, not through the API', () => {
  let master: Awaited<ReturnType<typeof call>>;

  test('media playlists point segments at presigned bucket URLs that serve the segment bytes', async () => {
    const t = servers.s3;
    const user = await t.user('hls-s3');
    const id = await upload(t, user.auth, mp4, 'video/mp4');
    await waitFor(t, user.auth, id, ['READY'], 120_000);
    master = await call(t.api(`/media/${id}/hls/master.m3u8`), { headers: user.auth });
    assert.equal(master.status, 200, master.text);
    const variantPlaylist = master.text.split('\n').find((l) => l.startsWith('http'))!;
    assert.ok(variantPlaylist.startsWith(t.base), 'playlists are still served by the API (rewritten)');
    const playlist = await call(variantPlaylist);
    assert.equal(playlist.status, 200, playlist.text);
    const uris = [
      ...Array.from(playlist.text.matchAll(/URI="([^"]+)"/g), (m) => m[1]!),
      ...playlist.text.split('\n').filter((l) => l.startsWith('http')),
    ];
    assert.ok(uris.length >= 2, playlist.text);
    const s3 = new URL(ceph.env.S3_ENDPOINT!);
    const tokenRoute = new URL(variantPlaylist);
    for (const uri of uris) {
      const u = new URL(uri);
      assert.equal(u.host, s3.host, `segment from the bucket: ${uri}`);
      assert.match(u.searchParams.get('X-Amz-Signature') ?? '', /^[0-9a-f]{64}$/, 'presigned');
      const direct = await fetch(uri);
      assert.equal(direct.status, 200, uri);
      const bytes = Buffer.from(await direct.arrayBuffer());
      // The same object through the token route (still served there): identical bytes.
      const file = decodeURIComponent(u.pathname.split('/').slice(-2).join('/'));
      const viaApi = await fetch(
        new URL(
          `${path.posix.dirname(tokenRoute.pathname)}/${path.posix.basename(file)}${tokenRoute.search}`,
          t.base,
        ),
      );
      assert.equal(viaApi.status, 200);
      assert.equal(sha256(Buffer.from(await viaApi.arrayBuffer())), sha256(bytes), uri);
      // Without the signature the bucket refuses: playback stays private.
      assert.equal((await fetch(`${u.origin}${u.pathname}`)).status, 403);
    }
  });

  test('ffmpeg plays the master playlist', async () => {
    await run(
      'ffmpeg',
      [
        '-v',
        'error',
        '-xerror',
        '-i',
        master.text.split('\n').find((l) => l.startsWith('http'))!,
        '-f',
        'null',
        '-',
      ],
      {
        timeout: 120_000,
      },
    );
  });
});

describe('sha256 verified by the worker is recorded (S3 multipart on Ceph)', () => {
  let user: Awaited<ReturnType<TestServer['user']>>;
  // A small photo followed by 5 MiB of padding after its end marker (decoders stop there).
  let jpeg: Buffer;
  const multipartUpload = async (declared: string) => {
    const t = servers.s3;
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: user.auth,
      json: { fileName: 'big.jpg', mimeType: 'image/jpeg', bytes: jpeg.length, sha256: declared },
    });
    assert.equal(s.status, 201, s.text);
    assert.equal(s.body.upload.method, 'MULTIPART');
    const n = s.body.upload.partCount as number;
    const size = s.body.upload.partSize as number;
    const signed = await call(t.api(`/media/${s.body.mediaId}/parts`), {
      method: 'POST',
      headers: user.auth,
      json: { partNumbers: Array.from({ length: n }, (_, i) => i + 1) },
    });
    const parts = [];
    for (const p of signed.body.parts as { partNumber: number; url: string; headers: Auth }[]) {
      const res = await fetch(p.url, {
        method: 'PUT',
        headers: p.headers,
        body: asBody(jpeg.subarray((p.partNumber - 1) * size, p.partNumber * size)),
      });
      assert.equal(res.status, 200);
      parts.push({ partNumber: p.partNumber, etag: res.headers.get('etag')! });
    }
    const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
      method: 'POST',
      headers: user.auth,
      json: { parts },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.sha256Verified, false, 'Ceph cannot verify a multipart upload at completion');
    return s.body.mediaId as string;
  };

  test('after READY, sha256Verified is true and the proxied download ETag is the sha256', async () => {
    const t = servers.s3;
    user = await t.user('sha-multipart');
    jpeg = Buffer.concat([fixture('cameras/Canon_40D.jpg'), Buffer.alloc(5 * MiB + 4096)]);
    assert.ok(jpeg.length > 5 * MiB, `needs a multipart upload: ${jpeg.length} bytes`);
    const good = await multipartUpload(sha256(jpeg));
    await waitFor(t, user.auth, good, ['READY'], 120_000);
    const media = (await call(t.api(`/media/${good}`), { headers: user.auth })).body;
    assert.equal(media.sha256Verified, true, 'the worker hashed the bytes: recorded');
    assert.equal(media.sha256, sha256(jpeg));
    const proxied = await fetch(t.api(`/media/${good}/download?mode=proxy`), { headers: user.auth });
    assert.equal(
      proxied.headers.get('etag'),
      `"${sha256(jpeg)}"`,
      'the ETag is the sha256, not the store MD5',
    );
    assert.equal(sha256(Buffer.from(await proxied.arrayBuffer())), sha256(jpeg));
  });

  test('a sha256 mismatch fails integrity and records nothing', async () => {
    const t = servers.s3;
    const bad = await multipartUpload('0'.repeat(64));
    const st = await waitFor(t, user.auth, bad, ['FAILED', 'READY'], 120_000);
    assert.equal(st.status, 'FAILED');
    assert.equal(st.error.code, 'integrity');
    const badMedia = (await call(t.api(`/media/${bad}`), { headers: user.auth })).body;
    assert.equal(badMedia.sha256Verified, false, 'a mismatch records nothing');
  });
});
