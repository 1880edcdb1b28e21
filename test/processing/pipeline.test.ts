import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import exifr from 'exifr';
import sharp from 'sharp';
import { thumbHashToRGBA } from 'thumbhash';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, FIXTURES, sha256 } from '../helpers/files.ts';
import { upload, waitFor } from './helpers.ts';

// The poll is a minute: every job here must be picked up through LISTEN/NOTIFY.
let t: TestServer;
before(async () => {
  t = await startTestServer({ PROCESSING_POLL_INTERVAL_MS: '60000', PROCESSING_MAX_PIXELS: '50000000' });
});
after(async () => {
  await t?.close();
});

async function variantBytes(auth: Record<string, string>, id: string, name: string): Promise<Buffer> {
  const res = await fetch(t.api(`/media/${id}/variants/${name}?mode=proxy`), { headers: auth });
  assert.equal(res.status, 200, `variant ${name} of ${id}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Mean absolute difference per channel value of two same-sized images, 0..255. */
async function diff(a: Buffer, b: Buffer): Promise<number> {
  const ra = await sharp(a).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const rb = await sharp(b)
    .removeAlpha()
    .resize(ra.info.width, ra.info.height, { fit: 'fill' })
    .raw()
    .toBuffer();
  let sum = 0;
  for (let i = 0; i < ra.data.length; i++) sum += Math.abs(ra.data[i]! - rb[i]!);
  return sum / ra.data.length;
}

describe('EXIF orientation', () => {
  for (const shape of ['landscape', 'portrait'] as const) {
    test(`${shape} 1–8 all give upright variants of the right size`, async () => {
      const user = await t.user(`orient-${shape}`);
      const ids: string[] = [];
      for (let o = 1; o <= 8; o++) {
        const { id, done } = await upload(t, user.auth, fixture(`orientation/${shape}_${o}.jpg`));
        assert.equal(done.status, 200, done.text);
        ids.push(id);
      }
      const [w, h] = shape === 'landscape' ? [600, 450] : [450, 600];
      const expected: Record<string, [number, number]> = {
        '1200': [w, h], // never upscaled
        '600': [w, h],
        '300': shape === 'landscape' ? [300, 225] : [225, 300],
        '150': shape === 'landscape' ? [150, 113] : [113, 150],
      };
      let reference: Buffer | undefined;
      for (const [i, id] of ids.entries()) {
        await waitFor(t, user.auth, id, ['READY', 'FAILED']);
        const m = await call(t.api(`/media/${id}`), { headers: user.auth });
        assert.equal(m.body.status, 'READY', `${shape}_${i + 1}: ${JSON.stringify(m.body.error)}`);
        assert.deepEqual([m.body.width, m.body.height], [w, h], `${shape}_${i + 1} displayed size`);
        assert.deepEqual(
          m.body.variants.map((v: any) => v.name),
          ['1200', '600', '300', '150'],
        );
        for (const v of m.body.variants) {
          assert.deepEqual([v.width, v.height], expected[v.name], `${shape}_${i + 1} variant ${v.name}`);
          assert.equal(v.format, 'webp');
          const bytes = await variantBytes(user.auth, id, v.name);
          const meta = await sharp(bytes).metadata();
          assert.deepEqual([meta.format, meta.width, meta.height], ['webp', ...expected[v.name]!]);
          assert.equal(meta.exif, undefined, 'no EXIF in variants');
          assert.equal(meta.orientation, undefined, 'no orientation tag left to apply twice');
        }
        // Upright: every orientation's pixels match orientation 1's.
        const px = await variantBytes(user.auth, id, '300');
        if (i === 0) reference = px;
        else assert.ok((await diff(reference!, px)) < 12, `${shape}_${i + 1} is not upright`);
      }
      // The comparison can fail: a mirrored image differs clearly.
      const mirrored = await sharp(reference).flop().webp().toBuffer();
      assert.ok((await diff(reference!, mirrored)) > 20, 'mirror check has no power');
    });
  }
});

describe('metadata and privacy', () => {
  test('GPS is extracted for the owner, absent from variants and from other principals', async () => {
    const owner = await t.user('gps-owner');
    const dev = await t.device('gps-cam', owner.id);
    const original = fixture('gps/DSCN0010.jpg');
    assert.ok(await exifr.gps(original), 'the fixture carries GPS');
    const { id } = await upload(t, dev.auth, original);
    await waitFor(t, dev.auth, id, ['READY', 'FAILED']);

    const mine = await call(t.api(`/media/${id}`), { headers: owner.auth });
    assert.equal(mine.body.status, 'READY');
    assert.ok(Math.abs(mine.body.gps.latitude - 43.4674) < 0.001, JSON.stringify(mine.body.gps));
    assert.ok(Math.abs(mine.body.gps.longitude - 11.8851) < 0.001);
    assert.equal(mine.body.metadata.exif.make, 'NIKON');
    assert.equal(mine.body.metadata.exif.model, 'COOLPIX P6000');
    assert.match(mine.body.metadata.exif.dateTimeOriginal, /^2008-10-22T16:\d\d:\d\d$/);
    assert.ok(mine.body.metadata.exif.exposureTime > 0);
    assert.ok(!JSON.stringify(mine.body.metadata).includes('43.46'), 'GPS only in its own field');
    const listed = await call(t.api('/users/me/media'), { headers: owner.auth });
    assert.ok(listed.body.items.find((m: any) => m.mediaId === id).gps);

    // The device may read the media, but it is not the owning user: no location.
    const asDevice = await call(t.api(`/media/${id}`), { headers: dev.auth });
    assert.equal(asDevice.status, 200);
    assert.ok(!('gps' in asDevice.body), 'no gps for the device');
    const devList = await call(t.api(`/devices/${dev.id}/media`), { headers: dev.auth });
    assert.ok(!('gps' in devList.body.items[0]));
    const stranger = await t.user('gps-stranger');
    for (const p of [`/media/${id}`, `/media/${id}/status`, `/media/${id}/variants/300`]) {
      const r = await call(t.api(p), { headers: stranger.auth });
      assert.equal(r.status, 404, p);
      assert.ok(!r.text.includes('43.46'));
    }

    for (const v of mine.body.variants) {
      const bytes = await variantBytes(owner.auth, id, v.name);
      assert.equal(await exifr.gps(bytes).catch(() => undefined), undefined, `no GPS in variant ${v.name}`);
      assert.equal((await sharp(bytes).metadata()).exif, undefined);
    }

    // Placeholder: a valid thumbhash of the right aspect ratio.
    const hash = Buffer.from(mine.body.placeholder, 'base64');
    const decoded = thumbHashToRGBA(hash);
    assert.ok(decoded.w > decoded.h, 'landscape placeholder');
  });

  test('HEIC from a phone is converted with heif-convert', async () => {
    const user = await t.user('heic-user');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mediary-heic-'));
    try {
      const heic = path.join(dir, 'photo.heic');
      execFileSync('heif-enc', ['-q', '60', '-o', heic, path.join(FIXTURES, 'gps/DSCN0021.jpg')], {
        stdio: 'ignore',
      });
      const { id, done } = await upload(t, user.auth, readFileSync(heic), 'image/heic');
      assert.equal(done.status, 200, done.text);
      await waitFor(t, user.auth, id, ['READY', 'FAILED']);
      const m = await call(t.api(`/media/${id}`), { headers: user.auth });
      assert.equal(m.body.status, 'READY', JSON.stringify(m.body.error));
      assert.deepEqual([m.body.width, m.body.height], [640, 480]);
      assert.equal(m.body.detectedMimeType, 'image/heic');
      assert.ok(m.body.gps, 'GPS read from the HEIC');
      const v = await variantBytes(user.auth, id, '300');
      assert.deepEqual(
        [(await sharp(v).metadata()).width, (await exifr.gps(v).catch(() => undefined)) ?? null],
        [300, null],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bad input never breaks the worker', () => {
  describe('undecodable images, then a good one', () => {
    let user: { auth: Record<string, string> };
    const ids: string[] = [];
    let goodOne: { id: string };
    const cases = [
      { name: 'truncated JPEG', mime: 'image/jpeg', code: 'decode_failed' },
      { name: 'JPEG magic + garbage', mime: 'image/jpeg', code: 'decode_failed' },
      { name: 'pixel bomb', mime: 'image/png', code: 'image_too_large' },
    ];
    before(async () => {
      user = await t.user('broken-user');
      const good = fixture('cameras/Canon_40D.jpg');
      const truncated = fixture('gps/DSCN0042.jpg').subarray(0, 40_000);
      const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(5000, 0x5a)]);
      // A PNG whose header claims 100000×100000 pixels (a decompression bomb's calling card).
      const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } })
        .png()
        .toBuffer();
      const bomb = Buffer.from(png);
      bomb.writeUInt32BE(100_000, 16);
      bomb.writeUInt32BE(100_000, 20);
      bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)) >>> 0, 29);

      const bytes = [truncated, garbage, bomb];
      for (const [i, c] of cases.entries()) {
        const { id, done } = await upload(t, user.auth, bytes[i]!, c.mime);
        assert.equal(done.status, 200, `${c.name}: ${done.text}`);
        ids.push(id);
      }
      goodOne = await upload(t, user.auth, good);
    });

    test('undecodable images end FAILED with a reason, without retries', async () => {
      for (const [i, c] of cases.entries()) {
        const st = await waitFor(t, user.auth, ids[i]!, ['READY', 'FAILED']);
        assert.equal(st.status, 'FAILED', c.name);
        assert.equal(st.error.code, c.code, `${c.name}: ${st.error.message}`);
        assert.ok(st.error.message.length > 10);
        assert.equal(st.attempts, 1, `${c.name} is not retried`);
      }
    });

    test('the worker keeps going: a good image after them is READY', async () => {
      assert.equal((await waitFor(t, user.auth, goodOne.id, ['READY', 'FAILED'])).status, 'READY');
    });

    test('the worker drains: no job is stuck', async () => {
      // Nothing is stuck: the worker drains (it finishes bookkeeping just after the row turns READY).
      for (let i = 0; i < 200 && t.server.worker?.busy !== 0; i++) await sleep(25);
      assert.equal(t.server.worker?.busy, 0);
    });
  });

  for (const name of ['35-empty.jpg', 'image00971.jpg']) {
    test(`broken/${name} (bad EXIF, decodable pixels) is processed to READY with its variants`, async () => {
      const user = await t.user(`broken-fixtures-${name}`);
      {
        const { id, done } = await upload(t, user.auth, fixture(`broken/${name}`));
        assert.equal(done.status, 200, done.text);
        const st = await waitFor(t, user.auth, id, ['READY', 'FAILED']);
        assert.equal(st.status, 'READY', `${name}: ${JSON.stringify(st.error)}`);
        const m = await call(t.api(`/media/${id}`), { headers: user.auth });
        assert.ok(m.body.width > 0 && m.body.variants.length === 4);
      }
    });
  }

  test('a declared type that lies is rejected and never processed', async () => {
    const user = await t.user('liar');
    const html = Buffer.from('<!doctype html><html><script>alert(1)</script></html>'.padEnd(2000, ' '));
    const { id, done } = await upload(t, user.auth, html, 'image/jpeg');
    assert.equal(done.status, 422);
    assert.equal(done.body.error.code, 'type_mismatch');
    const st = await call(t.api(`/media/${id}/status`), { headers: user.auth });
    assert.deepEqual([st.body.status, st.body.attempts], ['FAILED', 0]);
    const retry = await call(t.api(`/media/${id}/retry-processing`), { method: 'POST', headers: user.auth });
    assert.equal(retry.status, 409);
    assert.match(retry.body.error.message, /upload the file again/);
    assert.equal((await call(t.api(`/media/${id}/variants/300`), { headers: user.auth })).status, 404);
  });
});

/** `jpeg` grown to exactly `length` bytes by comment segments right after SOI (still a valid JPEG). */
function padJpeg(jpeg: Buffer, length: number): Buffer {
  const segments: Buffer[] = [];
  for (let missing = length - jpeg.length; missing > 0;) {
    // Each segment is 4 to 65,537 bytes (marker + length + comment); never leave under 4 behind.
    const size = missing <= 60_000 ? missing : missing - 60_000 < 4 ? 50_000 : 60_000;
    assert.ok(size >= 4, 'cannot pad by fewer than 4 bytes');
    const segment = Buffer.alloc(size, 0x20);
    segment.writeUInt16BE(0xfffe, 0);
    segment.writeUInt16BE(size - 2, 2);
    segments.push(segment);
    missing -= size;
  }
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);
}

describe('originals read into reused buffers', () => {
  test('back-to-back originals (same length, then shorter) each get their own dimensions and pixels', async () => {
    const user = await t.user('reused-buffers');
    // A landscape and a portrait photo padded to one length: the second is read into the very
    // buffer the first was (as is the third, shorter one, which leaves a stale tail behind it).
    // Stale bytes, a stale tail or a cached decode would show as a wrong hash, size or picture.
    const landscape = fixture('cameras/Canon_40D.jpg');
    const portrait = await sharp(fixture('gps/DSCN0010.jpg')).rotate(90).jpeg({ quality: 85 }).toBuffer();
    const length = Math.max(landscape.length, portrait.length) + 64;
    const runs = [
      { bytes: padJpeg(landscape, length), source: landscape },
      { bytes: padJpeg(portrait, length), source: portrait },
      { bytes: landscape, source: landscape },
    ];
    for (const [i, run] of runs.entries()) {
      const { id, done } = await upload(t, user.auth, run.bytes);
      assert.equal(done.status, 200, done.text);
      const st = await waitFor(t, user.auth, id, ['READY', 'FAILED']);
      assert.equal(st.status, 'READY', `run ${i}: ${JSON.stringify(st.error)}`);
      const m = await call(t.api(`/media/${id}`), { headers: user.auth });
      const source = await sharp(run.source).metadata();
      assert.deepEqual([m.body.width, m.body.height], [source.width, source.height], `run ${i}`);
      const expected = await sharp(run.source).resize(300, 300, { fit: 'inside' }).png().toBuffer();
      assert.ok((await diff(await variantBytes(user.auth, id, '300'), expected)) < 6, `run ${i} pixels`);
    }
  });
});

describe('variants', () => {
  let user: { auth: Record<string, string> };
  let id: string;
  before(async () => {
    user = await t.user('variants-user');
    ({ id } = await upload(t, user.auth, fixture('cameras/Reconyx_HC500_Hyperfire.jpg')));
    await waitFor(t, user.auth, id, ['READY']);
  });

  test('four sizes, each with its sha256 in a content-addressed URL', async () => {
    const m = await call(t.api(`/media/${id}`), { headers: user.auth });
    assert.deepEqual(
      m.body.variants.map((v: any) => [v.name, v.width, v.height]),
      [
        ['1200', 1200, 900],
        ['600', 600, 450],
        ['300', 300, 225],
        ['150', 150, 113],
      ],
    );
    assert.match(m.body.variants[0].sha256, /^[0-9a-f]{64}$/);
    assert.equal(m.body.variants[0].url, `/api/v1/media/${id}/variants/1200?v=${m.body.variants[0].sha256}`);
  });

  test('served by signed redirect', async () => {
    const redirect = await call(t.api(`/media/${id}/variants/600`), { headers: user.auth });
    assert.equal(redirect.status, 302);
    const followed = await fetch(redirect.headers.get('location')!);
    assert.equal(followed.status, 200);
    assert.equal(followed.headers.get('content-type'), 'image/webp');
    assert.equal((await sharp(Buffer.from(await followed.arrayBuffer())).metadata()).width, 600);
  });

  test('served by proxy', async () => {
    const proxied = await fetch(t.api(`/media/${id}/variants/150?mode=proxy`), { headers: user.auth });
    assert.equal(proxied.status, 200);
    assert.equal(proxied.headers.get('cache-control'), 'private, no-cache', 'no v: not content-addressed');
    assert.equal(proxied.headers.get('content-type'), 'image/webp');
    assert.match(proxied.headers.get('etag')!, /^"[0-9a-f]{64}"$/);
    await proxied.arrayBuffer();
  });

  test('an unknown size is 404, a path in its place 400', async () => {
    assert.equal((await call(t.api(`/media/${id}/variants/999`), { headers: user.auth })).status, 404);
    assert.equal((await call(t.api(`/media/${id}/variants/..%2F..`), { headers: user.auth })).status, 400);
  });

  test('owner-only: others get 404', async () => {
    const other = await t.user('variants-other');
    assert.equal((await call(t.api(`/media/${id}/variants/150`), { headers: other.auth })).status, 404);
  });

  test('deleted with the media', async () => {
    const rows = await t.server.database.pool.query('SELECT key FROM media_variants WHERE media_id = $1', [
      id,
    ]);
    const files = rows.rows.map((r: { key: string }) => path.join(t.config.storage.dir, r.key));
    assert.equal(files.length, 4);
    assert.ok(files.every((f: string) => existsSync(f)));
    assert.equal((await call(t.api(`/media/${id}`), { method: 'DELETE', headers: user.auth })).status, 204);
    assert.ok(
      files.every((f: string) => !existsSync(f)),
      'variant objects deleted with the media',
    );
  });
});

describe('content-addressed variant URLs', () => {
  const IMMUTABLE = 'private, max-age=31536000, immutable';

  let user: { auth: Record<string, string> };
  let other: { auth: Record<string, string> };
  let id: string;
  let first: any;
  let old: any;
  let now: any;
  let plainUrl: string;
  before(async () => {
    user = await t.user('varurl-user');
    other = await t.user('varurl-other');
    ({ id } = await upload(t, user.auth, fixture('orientation/landscape_1.jpg')));
    await waitFor(t, user.auth, id, ['READY']);
    first = (await call(t.api(`/media/${id}`), { headers: user.auth })).body;
    old = first.variants.find((v: any) => v.name === '300');
    plainUrl = t.api(`/media/${id}/variants/300?mode=proxy`);
  });

  test('?v= is the sha256 of the served bytes, which are then immutable', async () => {
    assert.equal(first.variants.length, 4);
    for (const v of first.variants) {
      assert.match(v.sha256, /^[0-9a-f]{64}$/, `variant ${v.name}`);
      assert.equal(v.url, `/api/v1/media/${id}/variants/${v.name}?v=${v.sha256}`);
      // The URL as the record gives it (plus mode=proxy) serves exactly the bytes it names.
      const res = await fetch(`${t.base}${v.url}&mode=proxy`, { headers: user.auth });
      assert.equal(res.status, 200, `variant ${v.name}`);
      assert.equal(res.headers.get('cache-control'), IMMUTABLE, `variant ${v.name}`);
      assert.equal(res.headers.get('etag'), `"${v.sha256}"`);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), v.sha256, `variant ${v.name} bytes`);
    }
  });

  test('without v: only the caller’s cache, revalidated by ETag', async () => {
    // No v: the bytes behind the URL may change, so only the caller's cache, revalidated by ETag.
    const plain = await fetch(plainUrl, { headers: user.auth });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('cache-control'), 'private, no-cache');
    assert.equal(plain.headers.get('etag'), `"${old.sha256}"`);
    assert.equal(sha256(Buffer.from(await plain.arrayBuffer())), old.sha256);
    const notModified = await call(plainUrl, {
      headers: { ...user.auth, 'if-none-match': `"${old.sha256}"` },
    });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.get('cache-control'), 'private, no-cache');
    assert.equal(notModified.text, '');
  });

  test('a malformed v is 400 validation_failed', async () => {
    // v is validated by the route schema: 64 lower-case hex digits.
    for (const bad of ['zz', old.sha256.toUpperCase(), old.sha256.slice(1), `${old.sha256}0`]) {
      const r = await call(t.api(`/media/${id}/variants/300?mode=proxy&v=${bad}`), { headers: user.auth });
      assert.equal(r.status, 400, `v=${bad}`);
      assert.equal(r.body.error.code, 'validation_failed', r.text);
    }
  });

  test('a valid v opens nothing by itself: others 404, no credentials 401', async () => {
    // A valid v opens nothing by itself: others get 404, no credentials 401, in both modes.
    for (const mode of ['proxy', 'redirect']) {
      const url = t.api(`/media/${id}/variants/300?mode=${mode}&v=${old.sha256}`);
      const r = await call(url, { headers: other.auth });
      assert.equal(r.status, 404, `${mode}: ${r.text}`);
      assert.ok(!r.text.includes(old.sha256), 'the hash is not echoed to others');
      assert.equal((await call(url)).status, 401, mode);
    }
  });

  test('reprocessing in another format gives the variant a new hash and URL', async () => {
    // Reprocess as AVIF (a format change: same names, other bytes). The worker reads its config
    // per job; a FAILED media is what retry-processing requeues.
    const processing = t.config.processing;
    processing.variantFormat = 'avif';
    try {
      await t.server.database.pool.query(
        `UPDATE media SET status = 'FAILED', error = '{"code":"processing_failed","message":"test"}' WHERE id = $1`,
        [id],
      );
      const retry = await call(t.api(`/media/${id}/retry-processing`), {
        method: 'POST',
        headers: user.auth,
      });
      assert.equal(retry.status, 202, retry.text);
      await waitFor(t, user.auth, id, ['READY']);
    } finally {
      processing.variantFormat = 'webp';
    }
    const reprocessed = (await call(t.api(`/media/${id}`), { headers: user.auth })).body;
    now = reprocessed.variants.find((v: any) => v.name === '300');
    assert.equal(now.format, 'avif');
    assert.notEqual(now.sha256, old.sha256, 'reprocessing changed the bytes');
    assert.equal(now.url, `/api/v1/media/${id}/variants/300?v=${now.sha256}`);
  });

  test('a stale v is sent on to the current URL, never cached', async () => {
    // The old URL (a page rendered before the reprocessing): 302 to the current one, never cached.
    const stale = await call(`${t.base}${old.url}&mode=proxy`, { headers: user.auth });
    assert.equal(stale.status, 302, 'a stale v is sent on');
    assert.equal(stale.headers.get('cache-control'), 'no-store');
    assert.equal(stale.headers.get('location'), `${now.url}&mode=proxy`);
    const followed = await fetch(new URL(stale.headers.get('location')!, t.base), { headers: user.auth });
    assert.equal(followed.status, 200);
    assert.equal(followed.headers.get('content-type'), 'image/avif');
    assert.equal(followed.headers.get('cache-control'), IMMUTABLE);
    assert.equal(sha256(Buffer.from(await followed.arrayBuffer())), now.sha256);
  });

  test('without v, a revalidation sees the new bytes', async () => {
    // Without v the same URL now serves the new bytes under the new ETag: a revalidation sees it.
    const changed = await call(plainUrl, { headers: { ...user.auth, 'if-none-match': `"${old.sha256}"` } });
    assert.equal(changed.status, 200);
    assert.equal(changed.headers.get('etag'), `"${now.sha256}"`);
  });

  test('redirect mode ignores a stale v', async () => {
    // Redirect mode ignores a stale v: straight to a signed URL of the current bytes.
    const redirect = await call(`${t.base}${old.url}`, { headers: user.auth });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('cache-control'), 'no-store');
    const signed = await fetch(redirect.headers.get('location')!);
    assert.equal(signed.status, 200);
    assert.equal(sha256(Buffer.from(await signed.arrayBuffer())), now.sha256);
  });

  test('others holding the stale URL learn nothing', async () => {
    // Others holding the stale URL learn nothing, not even where the new bytes are.
    const theirs = await call(`${t.base}${old.url}&mode=proxy`, { headers: other.auth });
    assert.equal(theirs.status, 404);
    assert.equal(theirs.headers.get('location'), null);
  });
});

describe('queue', () => {
  test('jobs start without waiting for a poll', async () => {
    // The poll interval is 60 s; an idle worker is woken by the enqueue's NOTIFY.
    const user = await t.user('pickup');
    const { id } = await upload(t, user.auth, fixture('cameras/Nikon_D70.jpg'));
    await waitFor(t, user.auth, id, ['READY'], 10_000);
    const { rows } = await t.server.database.pool.query(
      `SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM pgboss.job
       WHERE name = 'media-process' AND data->>'mediaId' = $1`,
      [id],
    );
    assert.ok(Number(rows[0].ms) < 2000, `picked up after ${rows[0].ms} ms`);
  });
});
