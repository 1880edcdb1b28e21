import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { BufferPool } from '../../src/processing/buffer-pool.ts';

const MiB = 1024 * 1024;
const pool = (over: Partial<ConstructorParameters<typeof BufferPool>[0]> = {}) =>
  new BufferPool({ maxFree: 2, maxBufferBytes: 8 * MiB, idleMs: 60_000, ...over });

/** Leases buffers of these sizes (MiB) all at once, then gives them all back. */
function returnBuffers(p: BufferPool, mibs: number[]): void {
  const leases = mibs.map((mib) => {
    const l = p.lease();
    l.allocate(mib * MiB);
    return l;
  });
  for (const l of leases) l.release();
}

describe('BufferPool', () => {
  test('sizes round up to whole MiB', () => {
    const p = pool();
    assert.equal(p.lease().allocate(1.5 * MiB).length, 2 * MiB);
    assert.equal(p.lease().allocate(100).length, MiB);
  });

  test('a released buffer is handed out again when it fits', () => {
    const p = pool();
    const first = p.lease();
    const a = first.allocate(1.5 * MiB);
    assert.equal(a.length, 2 * MiB);
    first.release();
    const second = p.lease();
    assert.equal(second.allocate(2 * MiB), a);
    assert.deepEqual(p.counts, { created: 1, reused: 1 });
    // Held by `second` now: a third lease gets a buffer of its own.
    const third = p.lease();
    assert.notEqual(third.allocate(100), a);
    assert.deepEqual(p.counts, { created: 2, reused: 1 });
  });

  test('the smallest free buffer that fits is taken, passing over too small ones', () => {
    const p = pool({ maxFree: 3 });
    returnBuffers(p, [1, 3, 5]);
    const l = p.lease();
    assert.equal(l.allocate(2.5 * MiB).length, 3 * MiB);
    const big = p.lease();
    assert.equal(big.allocate(4 * MiB).length, 5 * MiB);
    const bigger = p.lease();
    assert.equal(bigger.allocate(6 * MiB).length, 6 * MiB, 'nothing free fits: a new buffer');
    assert.deepEqual(p.counts, { created: 4, reused: 2 });
  });

  test('at most maxFree buffers are kept, the largest', () => {
    const p = pool({ maxFree: 2 });
    returnBuffers(p, [1, 2, 3]);
    assert.equal(p.freeBytes, 5 * MiB);
  });

  test('oversized requests are never kept', () => {
    const p = pool({ maxFree: 2 });
    returnBuffers(p, [1, 2, 3]);
    assert.equal(p.freeBytes, 5 * MiB);
    const huge = p.lease();
    assert.equal(huge.allocate(9 * MiB).length, 9 * MiB);
    huge.release();
    assert.equal(p.freeBytes, 5 * MiB, 'the 9 MiB buffer was dropped');
  });

  test('a lease allocates once and releases once', () => {
    const p = pool();
    const l = p.lease();
    l.allocate(10);
    assert.throws(() => l.allocate(10), /allocates once/);
    l.release();
    l.release();
    assert.equal(p.freeBytes, MiB);
    const unused = p.lease();
    unused.release();
    assert.throws(() => unused.allocate(10), /allocates once/);
    assert.equal(p.freeBytes, MiB);
  });

  test('free buffers are dropped after the idle time', async () => {
    const p = pool({ idleMs: 30 });
    const l = p.lease();
    l.allocate(MiB);
    l.release();
    assert.equal(p.freeBytes, MiB);
    await sleep(80);
    assert.equal(p.freeBytes, 0);
  });
});
