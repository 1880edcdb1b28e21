/**
 * HEIC/HEIF decompression-bomb guard: the pixel limit is checked from the container's header
 * before heif-convert decodes anything; the converter itself runs under resource caps.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createLogger } from '../../src/log.ts';
import { HeifConverter, HeifDecodeError, heifLimits } from '../../src/infra/imaging/heif.ts';
import { startWorker } from '../../src/processing/runtime.ts';
import { ImageDecodeError, probeHeif } from '../../src/infra/imaging/sharp-imaging.ts';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { FIXTURES } from '../helpers/files.ts';
import { upload, waitFor } from './helpers.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mediary-heif-test-'));
const never = new AbortController().signal;

/** heif-enc of the given sources (several → one file with several top-level images). */
function heifEnc(name: string, quality: number, ...sources: string[]): Buffer {
  const out = path.join(dir, name);
  execFileSync('heif-enc', ['-q', String(quality), '-o', out, ...sources], { stdio: 'ignore' });
  return readFileSync(out);
}

let small: Buffer; // Canon_40D: 100×68
let square: Buffer; // 2000×2000, a few tens of KB
let pair: Buffer; // two top-level images: 100×68 (primary) + 600×450
let noisy: Buffer; // 1200×1200 of noise: heif-convert writes a JPEG of more than 1 MiB
/** A stand-in for heif-convert that records each conversion, then runs the real one. */
let wrapper: string;
let calls: string;

before(async () => {
  small = heifEnc('small.heic', 50, path.join(FIXTURES, 'cameras/Canon_40D.jpg'));
  const squareSrc = path.join(dir, 'square.jpg');
  await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#7a9' } })
    .jpeg()
    .toFile(squareSrc);
  square = heifEnc('square.heic', 30, squareSrc);
  pair = heifEnc(
    'pair.heic',
    30,
    path.join(FIXTURES, 'cameras/Canon_40D.jpg'),
    path.join(FIXTURES, 'orientation/portrait_6.jpg'),
  );
  const noiseSrc = path.join(dir, 'noise.png');
  await sharp({
    create: {
      width: 1200,
      height: 1200,
      channels: 3,
      background: '#888',
      noise: { type: 'gaussian', mean: 128, sigma: 80 },
    },
  })
    .png()
    .toFile(noiseSrc);
  noisy = heifEnc('noisy.heic', 90, noiseSrc);

  calls = path.join(dir, 'calls.log');
  wrapper = path.join(dir, 'heif-convert-wrapper');
  writeFileSync(
    wrapper,
    `#!/bin/sh\ncase "$1" in --help) ;; *) echo "$*" >> '${calls}' ;; esac\nexec heif-convert "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The conversions the wrapper saw since the last call. */
function conversions(): string[] {
  if (!existsSync(calls)) return [];
  const lines = readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  rmSync(calls);
  return lines;
}

describe('probeHeif (header only)', () => {
  test('reads the size of a HEIC that sharp cannot decode', async () => {
    await assert.rejects(sharp(square).raw().toBuffer(), 'prebuilt sharp cannot decode HEVC');
    assert.deepEqual(await probeHeif(square, 4_000_000), {
      width: 2000,
      height: 2000,
      primary: 0,
      images: 1,
    });
  });

  test('over the limit: too_large, with the size in the message', async () => {
    await assert.rejects(probeHeif(square, 1_000_000), (err: unknown) => {
      assert.ok(err instanceof ImageDecodeError);
      assert.equal(err.reason, 'too_large');
      assert.equal(err.message, 'The image has 2000×2000 pixels, more than the 1000000 allowed.');
      return true;
    });
  });

  test('several top-level images: heif-convert decodes them all, so their total counts', async () => {
    assert.deepEqual(await probeHeif(pair, 1_000_000), { width: 100, height: 68, primary: 0, images: 2 });
    // The primary alone (6800 px) is within 100000; with the second image (270000 px) it is not.
    await assert.rejects(probeHeif(pair, 100_000), (err: unknown) => {
      assert.ok(err instanceof ImageDecodeError);
      assert.equal(err.reason, 'too_large');
      assert.match(err.message, /2 images have 276800 pixels in all, more than the 100000 allowed/);
      return true;
    });
  });

  test('a truncated or garbage header is corrupt, not an exception of another kind', async () => {
    const cases = {
      'cut in the header': square.subarray(0, 64),
      'garbage after ftyp': Buffer.concat([square.subarray(0, 32), Buffer.alloc(2000, 0x41)]),
      'empty meta': Buffer.concat([square.subarray(0, 32), Buffer.from('000000086d657461', 'hex')]),
    };
    for (const [how, bytes] of Object.entries(cases)) {
      await assert.rejects(
        probeHeif(bytes, 100_000_000),
        (err: unknown) => err instanceof ImageDecodeError && err.reason === 'corrupt',
        how,
      );
    }
  });
});

describe('HeifConverter caps', () => {
  test('limits scale with the pixel limit', () => {
    const l = heifLimits(100_000_000);
    assert.ok(l.addressSpace > 2_000_000_000 && l.addressSpace < 4_000_000_000);
    assert.ok(l.outputBytes > 400_000_000 && l.outputBytes < 500_000_000);
  });

  test('converts the primary of a file with several images', async () => {
    const heif = new HeifConverter('heif-convert');
    const jpeg = await heif.toJpeg(pair, never, { maxPixels: 1_000_000, images: 2, primary: 0 });
    const m = await sharp(jpeg).metadata();
    assert.deepEqual([m.format, m.width, m.height], ['jpeg', 100, 68]);
  });

  test('a converter output over the cap stops the converter (as if the header lied)', async () => {
    const heif = new HeifConverter('heif-convert');
    assert.ok(await heif.canLimit(), 'prlimit (util-linux) is installed');
    // Within a generous limit it converts; with maxPixels 1 the output cap is 1 MiB + 4 bytes.
    const ok = await heif.toJpeg(noisy, never, { maxPixels: 2_000_000, images: 1, primary: 0 });
    assert.ok(ok.length > heifLimits(1).outputBytes, `the JPEG is ${ok.length} bytes`);
    await assert.rejects(
      heif.toJpeg(noisy, never, { maxPixels: 1, images: 1, primary: 0 }),
      (err: unknown) => err instanceof HeifDecodeError && /output is too large/.test(err.message),
    );
  });
});

describe('HEIC jobs in the worker', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ WORKER_ENABLED: 'false', PROCESSING_POLL_INTERVAL_MS: '300' });
  });
  after(async () => {
    await t?.close();
  });

  function worker(maxPixels: number) {
    const store = new LocalObjectStore(
      t.config.storage.dir,
      new PublicUrls(new UrlSigner('x'.repeat(32)), t.config.publicUrl),
    );
    return startWorker({
      pool: t.server.database.pool,
      queue: t.server.queue,
      store,
      config: { ...t.config.processing, maxPixels, heifConvert: wrapper },
      logger: createLogger('silent', 2),
    });
  }

  test('over PROCESSING_MAX_PIXELS: image_too_large, and heif-convert never runs', async () => {
    const user = await t.user('heic-bomb');
    conversions();
    const w = await worker(100_000);
    try {
      const big = await upload(t, user.auth, square, 'image/heic');
      const st = await waitFor(t, user.auth, big.id, ['FAILED', 'READY']);
      assert.deepEqual(conversions(), [], 'the converter was not called');
      assert.deepEqual([st.status, st.error.code], ['FAILED', 'image_too_large']);
      assert.equal(st.error.message, 'The image has 2000×2000 pixels, more than the 100000 allowed.');
      assert.equal(st.attempts, 1);

      // The primary (6800 px) is within the limit; both images together (276800 px) are not.
      const many = await upload(t, user.auth, pair, 'image/heic');
      const st2 = await waitFor(t, user.auth, many.id, ['FAILED', 'READY']);
      assert.deepEqual([st2.status, st2.error.code], ['FAILED', 'image_too_large']);
      assert.deepEqual(conversions(), [], 'the converter was not called');
    } finally {
      await w.stop();
    }
  });

  test('within the limit: converted (by the wrapper) and READY, several images → the primary', async () => {
    const user = await t.user('heic-ok');
    conversions();
    const w = await worker(1_000_000);
    try {
      for (const [bytes, size] of [
        [small, [100, 68]],
        [pair, [100, 68]],
      ] as const) {
        const { id } = await upload(t, user.auth, bytes, 'image/heic');
        const st = await waitFor(t, user.auth, id, ['FAILED', 'READY']);
        assert.equal(st.status, 'READY', JSON.stringify(st.error));
        const m = await call(t.api(`/media/${id}`), { headers: user.auth });
        assert.deepEqual([m.body.width, m.body.height], size);
      }
      assert.equal(conversions().length, 2, 'each went through the converter');
    } finally {
      await w.stop();
    }
  });

  test('a truncated or garbage header fails cleanly (decode_failed), and the worker goes on', async () => {
    const user = await t.user('heic-broken');
    conversions();
    const w = await worker(100_000_000);
    try {
      for (const bytes of [
        square.subarray(0, 64),
        Buffer.concat([square.subarray(0, 32), Buffer.alloc(2000, 0x41)]),
      ]) {
        const { id } = await upload(t, user.auth, bytes, 'image/heic');
        const st = await waitFor(t, user.auth, id, ['FAILED', 'READY']);
        assert.deepEqual([st.status, st.error.code], ['FAILED', 'decode_failed']);
        assert.match(st.error.message, /^The HEIC image cannot be read: /);
        assert.equal(st.attempts, 1, 'an expected outcome, not retried');
      }
      assert.deepEqual(conversions(), [], 'the converter was not called');
      const { id } = await upload(t, user.auth, small, 'image/heic');
      assert.equal((await waitFor(t, user.auth, id, ['FAILED', 'READY'])).status, 'READY');
    } finally {
      await w.stop();
    }
  });
});
