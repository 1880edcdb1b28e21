/**
 * The image job's logic over fakes (no Postgres, no sharp, no disk): which variants it stores and
 * records, which failures end the job for good, which errors it leaves to the queue's retry, and
 * what a cancelled job leaves behind. The real pipeline is test/processing/pipeline.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { variantKey } from '../../src/media/layout.ts';
import { ImageJob } from '../../src/processing/image-job.ts';
import { ImageDecodeError } from '../../src/processing/ports.ts';
import {
  FakeImaging,
  fakeExif,
  JPEG_BYTES,
  jobContext,
  mediaWith,
  MemoryRecords,
  MemoryStore,
  noHeif,
  processingConfig,
  sha256,
} from './job-fakes.ts';

function setup(opts: { refs?: string[] } = {}) {
  const store = new MemoryStore();
  const records = new MemoryRecords(opts.refs);
  const imaging = new FakeImaging();
  const job = new ImageJob({
    store,
    records,
    imaging,
    heif: noHeif,
    exif: fakeExif,
    config: processingConfig(),
  });
  const media = mediaWith(store, JPEG_BYTES, { media_type: 'image', mime_type: 'image/jpeg' });
  return { store, records, imaging, job, media };
}

describe('image job (fakes)', () => {
  test('success stores one content-addressed WebP per size and records them, largest first', async () => {
    const { store, records, job, media } = setup();
    const outcome = await job.handle(media, jobContext());
    assert.deepEqual(outcome, { status: 'completed' });
    assert.equal(records.status, 'READY');
    const ready = records.ready!;
    assert.deepEqual(
      ready.variants.map((v) => [v.name, v.width, v.height, v.format]),
      [
        ['1200', 1200, 900, 'webp'],
        ['600', 600, 450, 'webp'],
        ['300', 300, 225, 'webp'],
        ['150', 150, 113, 'webp'],
      ],
    );
    for (const v of ready.variants) {
      const stored = store.objects.get(v.key);
      assert.ok(stored, `${v.key} is stored`);
      assert.equal(v.key, variantKey(media.id, sha256(stored.data), 'webp'));
      assert.equal(stored.contentType, 'image/webp');
      assert.equal(v.bytes, stored.data.length);
    }
    assert.deepEqual(store.keys('variants/'), ready.variants.map((v) => v.key).sort());
    assert.equal(ready.detectedMime, 'image/jpeg');
    assert.deepEqual(ready.metadata.exif, { make: 'Fake', model: 'Camera' });
    assert.equal(typeof ready.placeholder, 'string');
    assert.equal(records.verifiedSha256, sha256(JPEG_BYTES), 'the original was hashed and verified');
  });

  test('reprocessing deletes the previous variants nothing references any more', async () => {
    const old = `variants/00000000-0000-4000-8000-000000000001/${'a'.repeat(64)}.avif`;
    const { store, job, media } = setup({ refs: [old] });
    store.objects.set(old, { data: Buffer.from('old'), contentType: 'image/avif' });
    assert.deepEqual(await job.handle(media, jobContext()), { status: 'completed' });
    assert.equal(store.objects.has(old), false);
  });

  test('an image the decoder refuses fails the media for good with decode_failed', async () => {
    const { store, records, imaging, job, media } = setup();
    imaging.fail = new ImageDecodeError('corrupt', 'The image cannot be decoded: bad Huffman table');
    const outcome = await job.handle(media, jobContext());
    assert.equal(outcome.status, 'failed');
    assert.equal(records.status, 'FAILED');
    assert.equal(records.error?.code, 'decode_failed');
    assert.match(records.error?.message ?? '', /bad Huffman table/);
    assert.deepEqual(store.keys('variants/'), [], 'nothing stored');
  });

  test('an image over the pixel limit fails with image_too_large', async () => {
    const { records, imaging, job, media } = setup();
    imaging.fail = new ImageDecodeError('too_large', 'The image has more than the 1 pixels allowed.');
    assert.equal((await job.handle(media, jobContext())).status, 'failed');
    assert.equal(records.error?.code, 'image_too_large');
  });

  test('bytes that are not what was declared fail with integrity before anything is decoded', async () => {
    const { records, imaging, job, media } = setup();
    const outcome = await job.handle({ ...media, sha256: 'f'.repeat(64) }, jobContext());
    assert.equal(outcome.status, 'failed');
    assert.equal(records.error?.code, 'integrity');
    assert.equal(imaging.renders, 0);
    assert.equal(records.verifiedSha256, null, 'a mismatching hash is not recorded');
  });

  test('a store that fails to write throws (the queue retries) and leaves the media PROCESSING', async () => {
    const { store, records, job, media } = setup();
    store.failPuts = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7480'), {
      code: 'ECONNREFUSED',
    });
    await assert.rejects(job.handle(media, jobContext()), /ECONNREFUSED/);
    assert.equal(records.status, 'PROCESSING', 'not failed: a retry may succeed');
    assert.equal(records.error, null);
  });

  test('a missing original throws OriginalMissingError (retried: the store may be eventually consistent)', async () => {
    const { store, records, job, media } = setup();
    store.objects.delete(media.storage_key);
    await assert.rejects(job.handle(media, jobContext()), { name: 'OriginalMissingError' });
    assert.equal(records.status, 'PROCESSING');
  });

  test('a cancelled job stops before READY and writes no variant', async () => {
    const { store, records, imaging, job, media } = setup();
    const abort = new AbortController();
    abort.abort(new Error('The media was deleted while it was being processed.'));
    await assert.rejects(job.handle(media, jobContext(abort.signal)), /deleted while it was being processed/);
    assert.equal(records.status, 'PROCESSING');
    assert.equal(records.ready, undefined);
    assert.equal(imaging.renders, 0);
    assert.deepEqual(store.keys('variants/'), []);
  });

  test('a media deleted while it rendered keeps none of the variants the job wrote', async () => {
    const { store, records, job, media } = setup();
    const realPut = store.put.bind(store);
    store.put = async (...args) => {
      records.status = 'DELETED'; // deleted by its owner while the job ran
      return realPut(...args);
    };
    assert.deepEqual(await job.handle(media, jobContext()), { status: 'completed' });
    assert.equal(records.ready, undefined);
    assert.deepEqual(store.keys('variants/'), []);
  });
});
