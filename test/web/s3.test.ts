/**
 * The web app on the Ceph S3 store, in Chromium: a dropped JPEG goes straight to the bucket
 * (presigned PUT), renders from a presigned variant URL, and a video plays over HLS with its
 * segments presigned from the bucket — all within the app's CSP, which names the store's origin.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import { call, freePort, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { assertAccessible, buildWebApp, dropFiles, signIn } from '../helpers/web.ts';
import { videoClip } from '../helpers/video.ts';

const BUCKET = 'mediary-web-test';
let ceph: Ceph;
let t: TestServer;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
let user: { token: string; auth: Record<string, string> };
let dir: string;
/** Console errors and failed requests of the page (CSP refusals show here). */
const problems: string[] = [];

before(async () => {
  ceph = await startCeph();
  const web = await buildWebApp();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  t = await startTestServer({
    ...ceph.serverEnv(BUCKET, { S3_CORS_ORIGINS: origin }),
    PORT: String(port),
    PUBLIC_URL: origin,
    WEB_DIR: web,
    WORKER_ENABLED: 'true',
  });
  const setup = await mediary(['storage', 'setup'], t.env);
  assert.equal(setup.code, 0, setup.stdout + setup.stderr);
  user = await t.user('sam');
  dir = await tempDir('mediary-web-s3-');
  browser = await launchChromium();
  page = browser.page;
  await page.setViewportSize({ width: 1280, height: 800 });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));
  await signIn(page, t.base, user.token);
});
after(async () => {
  await browser?.close();
  await t?.close();
  await ceph?.stop();
});

async function ready(id: string) {
  for (;;) {
    const r = await call(t.api(`/media/${id}`), { headers: user.auth });
    if (r.body.status === 'READY') return r.body;
    assert.notEqual(r.body.status, 'FAILED', JSON.stringify(r.body.error));
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function upload(file: string): Promise<string> {
  await page.goto(`${t.base}/#/upload`);
  const done = page.evaluate(
    () =>
      new Promise<string>((resolve, reject) => {
        document.addEventListener('mediary-upload-complete', (e) =>
          resolve((e as CustomEvent).detail.result.mediaId),
        );
        document.addEventListener('mediary-upload-error', (e) =>
          reject(new Error(String((e as CustomEvent).detail.error?.message))),
        );
      }),
  );
  await dropFiles(page, [file]);
  return done;
}

test(
  'a JPEG uploads to the bucket and renders from its presigned variant',
  { timeout: 120_000 },
  async () => {
    const jpeg = path.join(dir, 'DSCN0010.jpg');
    await writeFile(jpeg, fixture('gps/DSCN0010.jpg'));
    const id = await upload(jpeg);
    const media = await ready(id);
    assert.equal(media.storageBackend, 's3');
    await page.goto(`${t.base}/#/media/${id}`);
    await page
      .waitForFunction(() => {
        const el = document
          .querySelector('mediary-detail-page mediary-image')
          ?.shadowRoot?.querySelector('img:not(.ph)');
        return el instanceof HTMLImageElement && el.complete && el.naturalWidth > 0;
      })
      .catch(async (err: unknown) => {
        const img = await page
          .locator('mediary-detail-page mediary-image')
          .evaluate((el) => el.shadowRoot?.innerHTML ?? '');
        throw new Error(`the variant did not render: ${problems.join(' | ')} ${img}`, { cause: err });
      });
    const src = await page
      .locator('mediary-detail-page mediary-image img:not(.ph)')
      .evaluate((el: HTMLImageElement) => el.currentSrc);
    assert.ok(
      media.variants.some((v: any) => v.downloadUrl === src),
      src,
    );
    assert.ok(src.startsWith(ceph.env.S3_ENDPOINT!), `${src} is the bucket's`);
    // The owner sees the GPS of the photo.
    await page.getByRole('table', { name: /Location/ }).waitFor();
    await assertAccessible(page, 'detail (S3)');
  },
);

test('a video plays over HLS from the bucket', { timeout: 120_000 }, async () => {
  const mp4 = path.join(dir, 'clip.mp4');
  await videoClip(mp4, { size: '320x240', rate: 15, duration: 3 });
  const id = await upload(mp4);
  await ready(id);
  const segments: string[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(ceph.env.S3_ENDPOINT!) && r.ok()) segments.push(r.url());
  });
  await page.goto(`${t.base}/#/media/${id}`);
  await page.waitForFunction(
    () => (document.querySelector('mediary-video')?.shadowRoot?.querySelector('video')?.readyState ?? 0) >= 2,
  );
  await page.locator('mediary-video video').evaluate(async (v: HTMLVideoElement) => {
    v.muted = true;
    await v.play();
  });
  await page.waitForFunction(
    () =>
      (document.querySelector('mediary-video')?.shadowRoot?.querySelector('video')?.currentTime ?? 0) > 0.5,
  );
  assert.ok(segments.length > 0, 'segments came from the bucket');
});
