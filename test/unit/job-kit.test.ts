/**
 * The job kit's pieces on their own: the verified read of the original (both forms) and the
 * progress reporter's ordering rules. Invariants only, no timings.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { copyOriginal, JobFailure, ProgressReporter, readOriginal } from '../../src/processing/job-kit.ts';
import { JPEG_BYTES, mediaWith, MemoryRecords, MemoryStore, sha256 } from './job-fakes.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mediary-job-kit-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const readers = {
  'into memory': (store: MemoryStore, records: MemoryRecords, media: Parameters<typeof readOriginal>[2]) =>
    readOriginal(store, records, media),
  'into a file': async (
    store: MemoryStore,
    records: MemoryRecords,
    media: Parameters<typeof readOriginal>[2],
  ) => {
    const file = path.join(dir, `${Math.random()}`);
    await copyOriginal(store, records, media, file);
    return readFile(file);
  },
};

for (const [how, read] of Object.entries(readers)) {
  describe(`the original, read ${how}`, () => {
    test('matching bytes come back and their sha256 is recorded as verified', async () => {
      const store = new MemoryStore();
      const records = new MemoryRecords();
      const media = mediaWith(store, JPEG_BYTES, {
        media_type: 'image',
        mime_type: 'image/jpeg',
        sha256: null,
      });
      assert.deepEqual(await read(store, records, media), JPEG_BYTES);
      assert.equal(records.verifiedSha256, sha256(JPEG_BYTES));
    });

    for (const [change, bytes] of [
      ['appended', Buffer.concat([JPEG_BYTES, Buffer.from('x')])],
      ['truncated', JPEG_BYTES.subarray(1)],
      ['flipped', Buffer.from(JPEG_BYTES.map((b, i) => (i === 20 ? b ^ 1 : b)))],
    ] as const) {
      test(`bytes ${change} since completion fail with integrity and record nothing`, async () => {
        const store = new MemoryStore();
        const records = new MemoryRecords();
        const media = mediaWith(store, JPEG_BYTES, { media_type: 'image', mime_type: 'image/jpeg' });
        store.objects.set(media.storage_key, { data: bytes, contentType: 'image/jpeg' });
        await assert.rejects(read(store, records, media), (err: unknown) => {
          assert.ok(err instanceof JobFailure);
          assert.equal(err.code, 'integrity');
          return true;
        });
        assert.equal(records.verifiedSha256, null);
      });
    }
  });
}

describe('ProgressReporter', () => {
  /** A write that stays in flight until released, recording what was written and the overlap. */
  function slowWrites() {
    const written: number[] = [];
    const pending: (() => void)[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const write = (p: number) => {
      written.push(p);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise<void>((resolve) =>
        pending.push(() => {
          inFlight--;
          resolve();
        }),
      );
    };
    const releaseNext = async () => {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    };
    return { written, write, releaseNext, maxInFlight: () => maxInFlight };
  }

  test('milestones are written without waiting, one at a time, in order', async () => {
    const w = slowWrites();
    const reporter = new ProgressReporter(w.write, { everyMs: 60_000, firstAfterMs: 60_000 });
    reporter.report(5, true);
    reporter.report(8, true); // waits behind 5
    assert.deepEqual(w.written, [5]);
    await w.releaseNext();
    assert.deepEqual(w.written, [5, 8]);
    await w.releaseNext();
    assert.equal(w.maxInFlight(), 1);
    reporter.close();
  });

  test('of the milestones waiting behind a write, the newest wins', async () => {
    const w = slowWrites();
    const reporter = new ProgressReporter(w.write, { everyMs: 60_000, firstAfterMs: 60_000 });
    reporter.report(5, true);
    reporter.report(8, true); // waits behind 5
    reporter.report(15, true); // replaces 8
    assert.deepEqual(w.written, [5]);
    await w.releaseNext();
    assert.deepEqual(w.written, [5, 15]);
    await w.releaseNext();
    assert.equal(w.maxInFlight(), 1);
    reporter.close();
  });

  test('plain reports inside the interval are not written', () => {
    const w = slowWrites();
    const reporter = new ProgressReporter(w.write, { everyMs: 60_000, firstAfterMs: 60_000 });
    reporter.report(10);
    reporter.report(20);
    assert.deepEqual(w.written, [], 'a short job writes no progress');
    reporter.close();
  });

  test('reported values never go back', async () => {
    const w = slowWrites();
    const reporter = new ProgressReporter(w.write, { everyMs: 60_000, firstAfterMs: 60_000 });
    reporter.report(10);
    reporter.report(20);
    reporter.report(30, true);
    await w.releaseNext();
    reporter.report(25, true);
    assert.deepEqual(w.written, [30]);
    reporter.close();
  });

  test('close() drops what is still waiting', async () => {
    const w = slowWrites();
    const reporter = new ProgressReporter(w.write, { everyMs: 60_000, firstAfterMs: 0 });
    reporter.report(10, true);
    reporter.report(20, true);
    reporter.close();
    await w.releaseNext();
    assert.deepEqual(w.written, [10]);
  });
});
