/**
 * The browser SDK on another origin: the test page is served by a server of its own (another port
 * on 127.0.0.1 is another origin) and talks to the API directly, so every call is cross-origin and
 * Chromium enforces CORS (preflights for Authorization and JSON, `ETag` readable only if exposed).
 * The API lists the first page origin in CORS_ORIGINS; the same page served from a second origin,
 * not listed, must be blocked by the browser.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { ConsoleMessage, Page } from 'playwright-core';
import { bundleTestPage, launchChromium, startPageServer } from '../helpers/browser.ts';
import { sha256 } from '../helpers/files.ts';
import { MiB, MULTIPART_ENV } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import {
  fileBytes,
  type ReadBackOptions,
  type ReadBackOutcome,
  type RunOptions,
  type RunOutcome,
} from './browser/page.ts';

let t: TestServer;
let allowed: Awaited<ReturnType<typeof startPageServer>>;
let other: Awaited<ReturnType<typeof startPageServer>>;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

before(async () => {
  const js = await bundleTestPage();
  allowed = await startPageServer(js);
  other = await startPageServer(js);
  // Multipart above 5 MiB with 5 MiB parts; no worker (the states asserted are upload states).
  t = await startTestServer({ ...MULTIPART_ENV, CORS_ORIGINS: allowed.url });
  browser = await launchChromium();
  page = browser.page;
  await page.goto(`${allowed.url}/`);
});
after(async () => {
  await browser?.close();
  await allowed?.close();
  await other?.close();
  await t?.close();
});

const run = (p: Page, o: RunOptions): Promise<RunOutcome> =>
  p.evaluate((opts) => (globalThis as any).mediaryTest.run(opts), o);
const readBack = (p: Page, o: ReadBackOptions): Promise<ReadBackOutcome> =>
  p.evaluate((opts) => (globalThis as any).mediaryTest.readBack(opts), o);

describe('the browser SDK from another origin (CORS_ORIGINS)', () => {
  test('the page and the API are different origins', async () => {
    const origin = await page.evaluate(() => location.origin);
    assert.equal(origin, allowed.url);
    assert.notEqual(new URL(t.base).origin, origin);
  });

  test('a listed origin uploads in parts (ETag read from the API over XHR) and reads the file back', async () => {
    const user = await t.user('u-cors-multi');
    const o = { server: t.base, key: user.token, size: 12 * MiB + 7, seed: 11, name: 'cors.mp4' };
    const out = await run(page, o);
    assert.ok(out.ok, JSON.stringify(out.error));
    assert.equal(out.result!.multipart, true);
    assert.equal(out.result!.partsSent, 3);
    const expected = sha256(fileBytes(o.size, o.seed));
    assert.equal(out.result!.sha256, expected);
    const media = await call(t.api(`/media/${out.result!.mediaId}`), { headers: user.auth });
    assert.equal(media.body.status, 'UPLOADED');
    assert.equal(media.body.sha256, expected);

    const whole = await readBack(page, { server: t.base, key: user.token, mediaId: out.result!.mediaId });
    assert.ok(whole.ok, JSON.stringify(whole.error));
    assert.equal(whole.status, 200);
    assert.equal(whole.sha256, expected, 'the page read back the bytes it sent');
    assert.equal(whole.headers!.etag, `"${expected}"`, 'ETag exposed to the page');
    assert.match(whole.headers!['content-disposition'] ?? '', /cors\.mp4/, 'Content-Disposition exposed');
    assert.equal(whole.headers!['accept-ranges'], 'bytes', 'Accept-Ranges exposed');

    const head = await readBack(page, {
      server: t.base,
      key: user.token,
      mediaId: out.result!.mediaId,
      range: 'bytes=0-99',
    });
    assert.ok(head.ok, JSON.stringify(head.error));
    assert.equal(head.status, 206, 'Range allowed through the preflight');
    assert.equal(head.bytes, 100);
    assert.equal(head.headers!['content-range'], `bytes 0-99/${o.size}`, 'Content-Range exposed');
  });

  test('a listed origin uploads a small file as one signed PUT (Content-Type preflighted)', async () => {
    const user = await t.user('u-cors-single');
    const o = { server: t.base, key: user.token, size: 256 * 1024, seed: 12, name: 'one.mp4' };
    const out = await run(page, o);
    assert.ok(out.ok, JSON.stringify(out.error));
    assert.equal(out.result!.multipart, false);
    const back = await readBack(page, { server: t.base, key: user.token, mediaId: out.result!.mediaId });
    assert.ok(back.ok, JSON.stringify(back.error));
    assert.equal(back.sha256, sha256(fileBytes(o.size, o.seed)));
  });

  test('API errors reach a listed origin as JSON, not as network errors', async () => {
    const bad = await run(page, { server: t.base, key: 'not-a-token', size: 1000, seed: 13, name: 'x.mp4' });
    assert.equal(bad.ok, false);
    assert.deepEqual(
      [bad.error?.name, bad.error?.status, bad.error?.code],
      ['MediaryError', 401, 'unauthorized'],
    );
    const user = await t.user('u-cors-404');
    const missing = await readBack(page, { server: t.base, key: user.token, mediaId: randomUUID() });
    assert.equal(missing.ok, false);
    assert.deepEqual(
      [missing.error?.name, missing.error?.status, missing.error?.code],
      ['MediaryError', 404, 'not_found'],
    );
  });

  describe('the same page on an origin not listed', () => {
    let p: Page;
    const logged: string[] = [];
    let user: Awaited<ReturnType<TestServer['user']>>;
    after(async () => {
      await p?.close();
    });

    test('is blocked by the browser', async () => {
      p = await browser.context.newPage();
      p.on('console', (m: ConsoleMessage) => logged.push(m.text()));
      await p.goto(`${other.url}/`);
      assert.equal(await p.evaluate(() => location.origin), other.url);
      user = await t.user('u-cors-blocked');
      const out = await run(p, {
        server: t.base,
        key: user.token,
        size: 1000,
        seed: 14,
        name: 'blocked.mp4',
        retries: 1,
      });
      assert.equal(out.ok, false, 'the upload must fail');
      assert.equal(
        out.error?.name,
        'TypeError',
        `a network error, not an HTTP answer: ${JSON.stringify(out.error)}`,
      );
      assert.equal(out.error?.status, undefined);
      const back = await readBack(p, { server: t.base, key: user.token, mediaId: randomUUID() });
      assert.equal(back.ok, false);
      assert.equal(back.error?.name, 'TypeError', 'not the 404 the listed origin gets');
      const cors = logged.filter((l) => /blocked by CORS policy/.test(l));
      assert.ok(
        cors.some((l) => l.includes(`from origin '${other.url}'`)),
        `Chromium reported a CORS block for ${other.url}: ${JSON.stringify(logged)}`,
      );
    });

    test('nothing reaches the handlers', async () => {
      // The preflight failed, so the session request itself was never sent.
      const list = await call(t.api('/users/me/media'), { headers: user.auth });
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.items, [], 'no session was created');
    });
  });
});
