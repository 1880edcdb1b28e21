/**
 * The browser SDK (`mediary/client`, bundled by esbuild) in a real browser: Debian's Chromium
 * driven by playwright-core. The test page and the API share one origin (a loopback proxy serves
 * the page and forwards everything else to the server), so no CORS is involved (the cross-origin
 * case is browser-cors.test.ts). The server signs URLs for that origin, so every part passes
 * through the proxy, which counts and can slow them.
 * Everything is checked from the Node side too: the API, the database, the stored bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import type { Progress } from '../../src/client/index.ts';
import { bundleTestPage, launchChromium, pageHandler } from '../helpers/browser.ts';
import { sha256 } from '../helpers/files.ts';
import { MiB, MULTIPART_ENV } from '../helpers/multipart-suite.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fileBytes, type RunOptions, type RunOutcome } from './browser/page.ts';

let t: TestServer;
let proxy: Proxy;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

before(async () => {
  proxy = await startProxy(0, { local: pageHandler(await bundleTestPage()) });
  // Multipart above 5 MiB with 5 MiB parts; no worker (the states asserted are upload states).
  t = await startTestServer({ ...MULTIPART_ENV, PUBLIC_URL: proxy.url });
  proxy.setTarget(`http://127.0.0.1:${t.config.port}`);
  browser = await launchChromium();
  page = browser.page;
  await page.goto(`${proxy.url}/`);
});
after(async () => {
  await browser?.close();
  await proxy?.close();
  await t?.close();
});

const run = (o: RunOptions): Promise<RunOutcome> =>
  page.evaluate((opts) => (globalThis as any).mediaryTest.run(opts), o);
const states = (): Promise<{ key: string; state: any }[]> =>
  page.evaluate(() => (globalThis as any).mediaryTest.states());
const partPuts = (from: number) => proxy.seen.slice(from).filter((s) => s.part !== undefined);

function assertProgress(events: Progress[], total: number, partCount: number) {
  const sending = events.filter((e) => e.phase !== 'hashing');
  assert.ok(sending.length > 0, 'progress was reported');
  for (let i = 1; i < sending.length; i++) {
    assert.ok(sending[i]!.bytesSent >= sending[i - 1]!.bytesSent, `bytesSent monotonic at event ${i}`);
    assert.ok(sending[i]!.partsDone >= sending[i - 1]!.partsDone, `partsDone monotonic at event ${i}`);
  }
  const last = sending.at(-1)!;
  assert.equal(last.bytesSent, total);
  assert.equal(last.totalBytes, total);
  assert.equal(last.partsDone, partCount);
  assert.equal(last.etaSeconds, 0);
}

/** The server's record and stored bytes agree with what the page hashed. */
async function assertStored(mediaId: string, auth: Record<string, string>, size: number, seed: number) {
  const media = await call(t.api(`/media/${mediaId}`), { headers: auth });
  assert.equal(media.body.status, 'UPLOADED');
  const expected = sha256(fileBytes(size, seed));
  assert.equal(media.body.sha256, expected);
  // One retry on a reset socket only (a reused keep-alive connection under heavy load); any HTTP
  // answer, right or wrong, is asserted as it is.
  const get = () => fetch(t.api(`/media/${mediaId}/download?mode=proxy`), { headers: auth });
  const dl = await get().catch(get);
  assert.equal(sha256(Buffer.from(await dl.arrayBuffer())), expected, 'stored bytes are the file');
  return expected;
}

describe('the browser SDK in Chromium', () => {
  describe('a small File', () => {
    let user: Awaited<ReturnType<TestServer['user']>>;
    const o = { size: 1 * MiB + 123, seed: 1, name: 'small.mp4' };
    let out: RunOutcome;

    test('goes up as one PUT', async () => {
      user = await t.user('u-browser-single');
      out = await run({ server: proxy.url, key: user.token, ...o });
      assert.ok(out.ok, JSON.stringify(out.error));
      assert.equal(out.result!.multipart, false);
      assert.equal(out.result!.partsSent, 1);
    });

    test('the hash-wasm sha256 equals WebCrypto and the server', async () => {
      assert.equal(out.result!.sha256, out.webSha256, 'the WASM streaming hash equals WebCrypto');
      const expected = await assertStored(out.result!.mediaId, user.auth, o.size, o.seed);
      assert.equal(out.result!.sha256, expected);
    });

    test('progress goes to the end, with hashing reported first', async () => {
      assertProgress(out.events, o.size, 1);
      // Hashing is reported, from 0 to every byte, before anything is sent.
      const hashing = out.events.filter((e) => e.phase === 'hashing');
      assert.equal(
        out.events.findIndex((e) => e.phase !== 'hashing'),
        hashing.length,
        'hashing comes first',
      );
      assert.deepEqual([hashing[0]?.bytesHashed, hashing.at(-1)?.bytesHashed], [0, o.size]);
      assert.deepEqual(await states(), [], 'no resume state left in IndexedDB');
    });
  });

  test('an 18 MiB File goes up as 4 parts over XHR, 3 in flight, progress monotonic with intermediate steps', async () => {
    const user = await t.user('u-browser-multi');
    const o = {
      server: proxy.url,
      key: user.token,
      size: 18 * MiB,
      seed: 2,
      name: 'multi.mp4',
      concurrency: 3,
    };
    const from = proxy.seen.length;
    proxy.peakPartsInFlight = 0;
    // A slow uplink (about 16 MiB/s per part), so progress inside a part is observable.
    proxy.misbehave((_req, { part }) => (part !== undefined ? { bytesPerSecond: 16 * MiB } : undefined));
    let out: RunOutcome;
    try {
      out = await run(o);
    } finally {
      proxy.misbehave();
    }
    assert.ok(out.ok, JSON.stringify(out.error));
    assert.equal(out.result!.multipart, true);
    assert.equal(out.result!.partsSent, 4);
    assert.equal(out.result!.sha256, out.webSha256);
    await assertStored(out.result!.mediaId, user.auth, o.size, o.seed);
    const puts = partPuts(from);
    assert.deepEqual(puts.map((p) => p.part).sort(), [1, 2, 3, 4], 'each part sent once');
    assert.ok(puts.every((p) => p.status === 200));
    assert.ok(proxy.peakPartsInFlight <= 3, `at most 3 in flight (saw ${proxy.peakPartsInFlight})`);
    assert.ok(proxy.peakPartsInFlight >= 2, `parts went in parallel (saw ${proxy.peakPartsInFlight})`);
    assertProgress(out.events, o.size, 4);
    // Bytes beyond the parts already done can only come from XHR upload progress events.
    assert.ok(
      out.events.some((e) => e.phase === 'uploading' && e.bytesSent > e.partsDone * 5 * MiB),
      'XHR upload progress of parts in flight was reported',
    );
  });

  test('the page reloaded mid-upload: the state in IndexedDB resumes the session, only missing parts are sent', async () => {
    const user = await t.user('u-browser-reload');
    const o = {
      server: proxy.url,
      key: user.token,
      size: 30 * MiB,
      seed: 3,
      name: 'reload.mp4',
      concurrency: 1,
    };
    proxy.misbehave((_req, { part }) => (part !== undefined ? { delayMs: 400 } : undefined));
    let mediaId: string | undefined;
    let stored: number[] = [];
    try {
      await page.evaluate((opts) => (globalThis as any).mediaryTest.start(opts), o);
      const deadline = Date.now() + 60_000;
      while (stored.length < 2) {
        assert.ok(Date.now() < deadline, 'two parts stored in time');
        await sleep(100);
        if (!mediaId) {
          const list = await call(t.api('/users/me/media'), { headers: user.auth });
          mediaId = list.body.items?.[0]?.mediaId;
          continue;
        }
        const parts = await call(t.api(`/media/${mediaId}/parts`), { headers: user.auth });
        stored = (parts.body?.parts ?? []).map((p: { partNumber: number }) => p.partNumber);
      }
      await page.reload();
    } finally {
      proxy.misbehave();
    }
    assert.ok(mediaId);
    // The part cut by the reload never lands; wait until the listing is settled.
    let last = '';
    for (let same = 0; same < 3; await sleep(300)) {
      const now = JSON.stringify((await call(t.api(`/media/${mediaId}/parts`), { headers: user.auth })).body);
      same = now === last ? same + 1 : 0;
      last = now;
    }
    stored = JSON.parse(last).parts.map((p: { partNumber: number }) => p.partNumber);
    assert.ok(stored.length >= 2 && stored.length < 6, `reloaded mid-way (${stored.length} parts stored)`);

    const kept = await states();
    assert.equal(kept.length, 1, 'the resume state survived the reload in IndexedDB');
    assert.equal(kept[0]!.state.mediaId, mediaId);
    const remembered = Object.keys(kept[0]!.state.parts).map(Number);
    assert.ok(remembered.length >= 1 && remembered.every((n) => stored.includes(n)), 'parts it saw done');

    const from = proxy.seen.length;
    const out = await run(o);
    assert.ok(out.ok, JSON.stringify(out.error));
    assert.equal(out.result!.mediaId, mediaId, 'the same session was resumed');
    assert.equal(out.result!.created, false);
    assert.equal(out.result!.partsSkipped, stored.length);
    assert.equal(out.result!.partsSent, 6 - stored.length);
    const sent = partPuts(from).map((p) => p.part!);
    assert.deepEqual(
      sent.filter((n) => stored.includes(n)),
      [],
      `no stored part sent again (stored ${stored.join()}, sent ${sent.join()})`,
    );
    assert.deepEqual(
      [...stored, ...sent].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6],
    );
    const resumed = out.events.find((e) => e.phase === 'uploading');
    assert.equal(resumed?.resumedBytes, stored.length * 5 * MiB, 'progress starts at the resumed bytes');
    assertProgress(out.events, o.size, 6);
    await assertStored(mediaId, user.auth, o.size, o.seed);
    const list = await call(t.api('/users/me/media'), { headers: user.auth });
    assert.equal(list.body.items.length, 1, 'one media record');
    assert.deepEqual(await states(), [], 'the state is removed once complete');
  });

  test('abort: AbortError in the page, the session is cancelled (API and database), no state left', async () => {
    const user = await t.user('u-browser-abort');
    const o = {
      server: proxy.url,
      key: user.token,
      size: 20 * MiB,
      seed: 4,
      name: 'abort.mp4',
      concurrency: 1,
      abortAfterParts: 1,
    };
    proxy.misbehave((_req, { part }) => (part !== undefined && part > 1 ? { delayMs: 500 } : undefined));
    let out: RunOutcome;
    try {
      out = await run(o);
    } finally {
      proxy.misbehave();
    }
    assert.equal(out.ok, false);
    assert.equal(out.error?.name, 'AbortError', out.error?.message);
    const list = await call(t.api('/users/me/media'), { headers: user.auth });
    assert.equal(list.body.items.length, 1);
    const mediaId = list.body.items[0].mediaId;
    const media = await call(t.api(`/media/${mediaId}`), { headers: user.auth });
    assert.equal(media.body.status, 'FAILED');
    assert.equal(media.body.error?.code, 'cancelled');
    const { rows } = await t.server.database.pool.query<{ status: string; error: any; state: string }>(
      `SELECT m.status, m.error, u.state FROM media m JOIN multipart_uploads u ON u.media_id = m.id
        WHERE m.id = $1`,
      [mediaId],
    );
    assert.deepEqual(
      rows.map((r) => [r.status, r.error?.code, r.state]),
      [['FAILED', 'cancelled', 'ABORTED']],
    );
    assert.deepEqual(await states(), [], 'no resume state left in IndexedDB');
  });
});
