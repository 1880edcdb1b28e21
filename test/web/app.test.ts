/**
 * The web app as a person uses it, in Debian's Chromium against a real `mediary serve` (local
 * store, worker on): sign in, drop a real JPEG and see it render from its variant, a 40 MB file
 * interrupted by a reload and resumed, a video that plays over HLS, a device's captures, the admin
 * page, posts; axe-core on every page and screenshots at desktop and phone widths.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { uploadFile } from '../../src/client/node.ts';
import { launchChromium } from '../helpers/browser.ts';
import { fixture } from '../helpers/files.ts';
import { MiB } from '../helpers/multipart-suite.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { assertAccessible, buildWebApp, dropFiles, screenshots, signIn } from '../helpers/web.ts';
import { videoClip } from '../helpers/video.ts';

let t: TestServer;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
let user: { id: string; token: string; auth: Record<string, string> };
let dir: string;

async function waitForStatus(id: string, status: string) {
  for (;;) {
    const r = await call(t.api(`/media/${id}`), { headers: user.auth });
    if (r.body.status === status) return r.body;
    if (r.body.status === 'FAILED') throw new Error(`media ${id} failed: ${JSON.stringify(r.body.error)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Waits for the uploader's row of `name` to finish; asserts it reached `state`; returns its text. */
async function rowState(name: string, state: string) {
  const row = page.locator(
    `mediary-uploader li[data-file="${name}"]:is([data-state="done"], [data-state="failed"])`,
  );
  await row.waitFor({ timeout: 120_000 });
  const text = await row.innerText();
  assert.equal(await row.getAttribute('data-state'), state, text);
  return text;
}

/** The mediaId of the next upload the uploader on the page completes (or its error). */
const nextUpload = () =>
  page.evaluate(
    () =>
      new Promise<{ mediaId: string; partsSkipped: number }>((resolve, reject) => {
        document.addEventListener(
          'mediary-upload-complete',
          (e) => resolve((e as CustomEvent).detail.result),
          {
            once: true,
          },
        );
        document.addEventListener(
          'mediary-upload-error',
          (e) => reject(new Error(String((e as CustomEvent).detail.error?.message))),
          { once: true },
        );
      }),
  );

before(async () => {
  const web = await buildWebApp();
  t = await startTestServer({
    WEB_DIR: web,
    WORKER_ENABLED: 'true',
    MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
  });
  user = await t.user('alice');
  dir = await tempDir('mediary-web-files-');
  browser = await launchChromium();
  page = browser.page;
  await page.setViewportSize({ width: 1280, height: 800 });
});
after(async () => {
  await browser?.close();
  await t?.close();
});

describe('the web app (local store)', () => {
  test(
    'is served with a strict CSP, hashed assets cached for good and index.html revalidated',
    { timeout: 120_000 },
    async () => {
      const index = await fetch(`${t.base}/`);
      assert.equal(index.status, 200);
      assert.equal(index.headers.get('cache-control'), 'no-cache');
      const csp = index.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
      assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|sandbox/);
      const html = await index.text();
      const asset = /src="(\/assets\/app-[A-Z0-9]{8}\.js)"/.exec(html)?.[1];
      assert.ok(asset, html);
      const js = await fetch(`${t.base}${asset}`);
      assert.equal(js.status, 200);
      assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
      const missing = await call(`${t.base}/assets/nope-AAAAAAAA.js`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'not_found');
      const bad = await call(`${t.base}/assets/..%2Fsecret`);
      assert.equal(bad.status, 400);
      // The API keeps its own policy.
      const api = await fetch(t.api('/openapi.json'));
      assert.match(api.headers.get('content-security-policy') ?? '', /sandbox/);
    },
  );

  test('sign-in refuses a bad token and keeps a good one out of the URL', { timeout: 120_000 }, async () => {
    await page.goto(`${t.base}/`);
    await assertAccessible(page, 'sign-in');
    await screenshots(page, 'signin');
    await page.getByLabel('Token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await signIn(page, t.base, user.token);
    assert.ok(!page.url().includes(user.token));
    assert.equal(await page.evaluate(() => sessionStorage.getItem('mediary.token')), user.token);
  });

  test(
    'a dropped JPEG uploads, and its detail page renders it from a variant with EXIF',
    { timeout: 120_000 },
    async () => {
      const jpeg = path.join(dir, 'Canon_40D.jpg');
      await writeFile(jpeg, fixture('cameras/Canon_40D.jpg'));
      const completed = nextUpload();
      await dropFiles(page, [jpeg]);
      const { mediaId: id } = await completed;
      await rowState('Canon_40D.jpg', 'done');
      await assertAccessible(page, 'upload');
      await screenshots(page, 'upload');
      const media = await waitForStatus(id, 'READY');
      await page.goto(`${t.base}/#/media/${id}`);
      const img = page.locator('mediary-detail-page mediary-image img:not(.ph)');
      await img.waitFor();
      await page.waitForFunction(
        () => {
          const el = document
            .querySelector('mediary-detail-page mediary-image')
            ?.shadowRoot?.querySelector('img:not(.ph)');
          return el instanceof HTMLImageElement && el.complete && el.naturalWidth > 0;
        },
        undefined,
        { timeout: 30_000 },
      );
      const src = await img.evaluate((el: HTMLImageElement) => el.currentSrc);
      const variantUrls = media.variants.map((v: any) => v.downloadUrl);
      assert.ok(variantUrls.includes(src), `${src} is one of the variants' URLs`);
      await page.getByRole('table', { name: 'EXIF' }).waitFor();
      assert.match(await page.getByRole('table', { name: 'EXIF' }).innerText(), /Canon/);
      await assertAccessible(page, 'detail');
      await screenshots(page, 'detail');
    },
  );

  test(
    'a 40 MB file: a reload mid-upload, then the same file again resumes with the parts already sent',
    { timeout: 120_000 },
    async () => {
      // A real JPEG padded after its end marker: 40 MB, still an image (sharp stops at the marker).
      const big = path.join(dir, 'big-40mb.jpg');
      await writeFile(big, Buffer.concat([fixture('gps/DSCN0010.jpg'), Buffer.alloc(40 * 1000 * 1000, 7)]));
      await page.goto(`${t.base}/#/upload`);
      // Uploads throttled to 4 MiB/s, so the reload lands mid-upload whatever the machine's speed.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Network.enable');
      const throttle = (uploadThroughput: number) =>
        cdp.send('Network.emulateNetworkConditions', {
          offline: false,
          latency: 0,
          downloadThroughput: -1,
          uploadThroughput,
        });
      await throttle(4 * MiB);
      await dropFiles(page, [big]);
      // At least two parts are stored, and the upload is not finished, when the page reloads.
      let id: string | undefined;
      for (;;) {
        const sessions = await call(t.api('/users/me/media?status=PENDING'), { headers: user.auth });
        id = sessions.body.items.find((m: any) => m.fileName === 'big-40mb.jpg')?.mediaId;
        if (id) {
          const parts = await call(t.api(`/media/${id}/parts`), { headers: user.auth });
          if (parts.body.parts?.length >= 2) break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await page.reload();
      await throttle(-1);
      await cdp.detach();
      assert.equal((await call(t.api(`/media/${id}`), { headers: user.auth })).body.status, 'PENDING');
      await page.getByRole('heading', { name: 'Upload' }).waitFor();
      const result = nextUpload();
      await dropFiles(page, [big]);
      const r = await result;
      assert.ok(r.partsSkipped >= 2, `resumed: ${r.partsSkipped} parts skipped`);
      assert.match(await rowState('big-40mb.jpg', 'done'), /resumed/);
      const pending = await call(t.api('/users/me/media?status=PENDING'), { headers: user.auth });
      assert.deepEqual(pending.body.items, [], 'no second session was left open');
    },
  );

  test('a dropped video processes, and its detail page plays it over HLS', { timeout: 120_000 }, async () => {
    const mp4 = path.join(dir, 'clip.mp4');
    await videoClip(mp4, { size: '320x240', rate: 15, duration: 3 });
    await page.goto(`${t.base}/#/upload`);
    const completed = nextUpload();
    await dropFiles(page, [mp4]);
    const { mediaId: id } = await completed;
    await page.goto(`${t.base}/#/media/${id}`);
    // Live status while it processes, then the player.
    await waitForStatus(id, 'READY');
    const video = page.locator('mediary-video video');
    await video.waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => {
      const v = document.querySelector('mediary-video')?.shadowRoot?.querySelector('video');
      return v !== null && v !== undefined && v.readyState >= 2;
    });
    await video.evaluate(async (v: HTMLVideoElement) => {
      v.muted = true;
      await v.play();
    });
    await page.waitForFunction(() => {
      const v = document.querySelector('mediary-video')?.shadowRoot?.querySelector('video');
      return (v?.currentTime ?? 0) > 0.5;
    });
    await video.evaluate((v: HTMLVideoElement) => v.pause());
    await assertAccessible(page, 'video detail');
    await screenshots(page, 'video');
  });
  test(
    'the gallery lists everything, a page at a time, with placeholders',
    { timeout: 120_000 },
    async () => {
      // 24 more (a full page of the listing): small PNGs of their own colours, as alice.
      for (let batch = 0; batch < 4; batch++) {
        await Promise.all(
          Array.from({ length: 6 }, async (_, i) => {
            const n = batch * 6 + i;
            const png = await sharp({
              create: {
                width: 64,
                height: 48,
                channels: 3,
                background: { r: n * 10, g: 120, b: 255 - n * 10 },
              },
            })
              .png()
              .toBuffer();
            const file = path.join(dir, `tile-${n}.png`);
            await writeFile(file, png);
            await uploadFile(file, { server: t.base, token: user.token, stateStore: null });
          }),
        );
      }
      const total = 27;
      await page.goto(`${t.base}/#/gallery`);
      await page.locator('mediary-gallery-page li.tile').nth(23).waitFor();
      // Scrolling to the end loads the next page of the keyset listing.
      await page.locator('mediary-gallery-page .sentinel').scrollIntoViewIfNeeded();
      await page.locator('text=That is everything.').waitFor();
      assert.equal(await page.locator('mediary-gallery-page li.tile').count(), total);
      const ids = await page
        .locator('mediary-gallery-page li.tile')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-media-id')));
      assert.equal(new Set(ids).size, total, 'no media twice');
      await page.evaluate(() => window.scrollTo(0, 0));
      await assertAccessible(page, 'gallery');
      await screenshots(page, 'gallery');
    },
  );

  describe('admin: a registered device', () => {
    let key: string;

    test('admin: register a device', { timeout: 120_000 }, async () => {
      await page.goto(`${t.base}/#/admin`);
      await page.getByLabel('New device').fill('garden cam');
      await page.getByRole('button', { name: 'Register' }).click();
      key = (await page.locator('code.key').innerText()).trim();
      assert.match(key, /^mdk_/);
      await assertAccessible(page, 'admin');
      await screenshots(page, 'admin');
    });

    test('its captures appear on the devices page', { timeout: 120_000 }, async () => {
      await page.goto(`${t.base}/#/devices`);
      await page.getByRole('heading', { name: 'garden cam' }).waitFor();
      const shot = path.join(dir, 'capture.jpg');
      await writeFile(shot, fixture('cameras/Nikon_D70.jpg'));
      const r = await uploadFile(shot, {
        server: t.base,
        key,
        cameraId: 'front',
        stateStore: null,
        wait: true,
      });
      // The page refreshes by itself: the capture shows up under its camera.
      await page
        .locator(`mediary-devices-page li.tile[data-media-id="${r.mediaId}"]`)
        .waitFor({ timeout: 30_000 });
      await page.getByRole('heading', { name: /^front/ }).waitFor();
      await assertAccessible(page, 'devices');
      await screenshots(page, 'devices');
    });

    test('revoking it stops its key', { timeout: 120_000 }, async () => {
      await page.goto(`${t.base}/#/admin`);
      page.once('dialog', (d) => void d.accept());
      await page.getByRole('button', { name: 'Revoke garden cam' }).click();
      await page.locator('text=No devices yet.').waitFor();
      const after = await call(t.api('/media'), {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        json: { fileName: 'x.jpg', mimeType: 'image/jpeg', bytes: 10 },
      });
      assert.equal(after.status, 401, 'the revoked key no longer works');
    });
  });

  describe('admin: claiming a device', () => {
    let start: Awaited<ReturnType<typeof call>>;

    test('the admin claims a device by the code it shows', { timeout: 120_000 }, async () => {
      start = await call(t.api('/device-claims'), { method: 'POST', json: { name: 'porch cam' } });
      assert.equal(start.status, 201, start.text);
      await page.goto(`${t.base}/#/admin`);
      await page.getByLabel('Claim a device').fill(start.body.userCode.toLowerCase());
      await page.getByRole('button', { name: 'Claim', exact: true }).click();
      await page.locator('text=porch cam is yours now').waitFor();
      await page.locator('mediary-admin-page td', { hasText: 'porch cam' }).waitFor();
      await assertAccessible(page, 'admin-claim');
    });

    test('the claimed device fetches its key', async () => {
      const poll = await call(t.api('/device-claims/token'), {
        method: 'POST',
        json: { deviceCode: start.body.deviceCode },
      });
      assert.equal(poll.status, 200, poll.text);
      assert.match(poll.body.apiKey, /^mdk_/);
    });
  });

  test('posts: a post made through the API shows with its media', { timeout: 120_000 }, async () => {
    const list = await call(t.api('/users/me/media?status=READY'), { headers: user.auth });
    const image = list.body.items.find((m: any) => m.mediaType === 'image');
    const post = await call(t.api('/posts'), {
      method: 'POST',
      headers: user.auth,
      json: { caption: 'Holiday, day one', mediaIds: [image.mediaId] },
    });
    assert.equal(post.status, 201, post.text);
    await page.goto(`${t.base}/#/posts`);
    await page.locator('text=Holiday, day one').waitFor();
    await page.locator(`mediary-posts-page li.tile[data-media-id="${image.mediaId}"]`).waitFor();
    await assertAccessible(page, 'posts');
    await screenshots(page, 'posts');
  });
});

describe('the endpoints the app adds', () => {
  test("cameras, queue and limits: the caller's own only, devices and strangers get 404", async () => {
    const bob = await t.user('bob');
    const own = await call(t.api('/devices'), { method: 'POST', headers: bob.auth, json: { name: 'porch' } });
    assert.equal(own.status, 201);
    const deviceId = own.body.device.deviceId;
    const cams = await call(t.api(`/devices/${deviceId}/cameras`), { headers: bob.auth });
    assert.deepEqual(cams.body, { items: [] });
    assert.equal((await call(t.api(`/devices/${deviceId}/cameras`), { headers: user.auth })).status, 404);
    const asDevice = await call(t.api(`/devices/${deviceId}/cameras`), {
      headers: { authorization: `Bearer ${own.body.apiKey}` },
    });
    assert.equal(asDevice.status, 404);
    const bad = await call(t.api('/devices/not-a-uuid/cameras'), { headers: bob.auth });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'validation_failed');
    const q = await call(t.api('/users/me/queue'), { headers: bob.auth });
    assert.deepEqual(q.body, { waiting: 0, active: 0, failed: 0, deadLettered: 0 });
    assert.equal((await call(t.api('/users/alice/queue'), { headers: bob.auth })).status, 404);
    const limits = await call(t.api('/limits'), { headers: bob.auth });
    assert.ok(limits.body.allowedMimeTypes.includes('image/jpeg'));
    assert.equal((await call(t.api('/limits'))).status, 401);
  });
});
