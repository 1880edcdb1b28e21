/** The worker's decode-memory budget and the decode estimate it is fed (units). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryBudget } from '../../src/processing/memory-budget.ts';
import { estimateDecodeBytes } from '../../src/infra/imaging/sharp-imaging.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('MemoryBudget', () => {
  test('a reservation that does not fit waits, first come first served, until enough is released', async () => {
    const budget = new MemoryBudget(100);
    const a = await budget.reserve(60);
    const order: string[] = [];
    const b = budget.reserve(60).then((r) => (order.push('b'), r));
    const c = budget.reserve(10).then((r) => (order.push('c'), r));
    await tick();
    assert.deepEqual(order, [], 'b does not fit; c queues behind b rather than overtaking it');
    assert.equal(budget.reservedBytes, 60);
    a();
    a(); // idempotent
    const [rb, rc] = await Promise.all([b, c]);
    assert.deepEqual(order, ['b', 'c']);
    assert.equal(budget.reservedBytes, 70);
    rb();
    rc();
    assert.equal(budget.reservedBytes, 0);
  });

  test('more than the whole budget runs alone', async () => {
    const budget = new MemoryBudget(100);
    const big = await budget.reserve(500);
    assert.equal(budget.reservedBytes, 100);
    let small = false;
    const next = budget.reserve(1).then((r) => ((small = true), r));
    await tick();
    assert.equal(small, false, 'nothing runs beside it');
    big();
    (await next)();
    assert.equal(budget.reservedBytes, 0);
  });

  test('an aborted wait gives its turn away', async () => {
    const budget = new MemoryBudget(100);
    const big = await budget.reserve(500);
    assert.equal(budget.reservedBytes, 100);
    const ac = new AbortController();
    const aborted = budget.reserve(50, ac.signal);
    const next = budget.reserve(50);
    ac.abort(new Error('job timed out'));
    await assert.rejects(aborted, /job timed out/);
    big();
    (await next)();
    assert.equal(budget.reservedBytes, 0);
  });
});

describe('estimateDecodeBytes', () => {
  test('pixels × channels × bytes per sample, doubled for interlaced/progressive', () => {
    const base = { width: 9999, height: 10000, channels: 3 as const };
    assert.equal(estimateDecodeBytes({ ...base, depth: 'uchar', isProgressive: false }), 9999 * 10000 * 3);
    assert.equal(estimateDecodeBytes({ ...base, depth: 'uchar', isProgressive: true }), 9999 * 10000 * 3 * 2);
    assert.equal(
      estimateDecodeBytes({ ...base, depth: 'ushort', isProgressive: true }),
      9999 * 10000 * 3 * 4,
    );
  });
});
