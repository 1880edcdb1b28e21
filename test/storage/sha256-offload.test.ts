/** SHA-256 states in the hashing thread (src/storage/sha256-offload.ts) against node:crypto's. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  offloadedBytes,
  Sha256State,
  sha256Batches,
  type Sha256Batches,
} from '../../src/storage/sha256-offload.ts';

const sha = (...bufs: Buffer[]) => {
  const h = createHash('sha256');
  for (const b of bufs) h.update(b);
  return h.digest('hex');
};
const hex = async (s: Sha256Batches) => (await s.digest()).toString('hex');

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mediary-sha256-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('updates in batches give the digest of the bytes in order', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const s = Sha256State.create();
  const before = offloadedBytes();
  for (let at = 0; at < data.length;) {
    const batch: Buffer[] = [];
    for (let i = 0; i < 5 && at < data.length; i++) {
      const n = Math.min(data.length - at, 1 + ((at * 7919) % 300_000));
      batch.push(data.subarray(at, at + n));
      at += n;
    }
    s.update(batch);
  }
  assert.equal(await hex(s), sha(data));
  assert.equal(offloadedBytes() - before, data.length);
});

/** One batch handed over: a buffer that owns its memory and a view into a larger one. */
function handOverMixed() {
  const owned = Buffer.from(new ArrayBuffer(100_000)).fill(1);
  const whole = Buffer.alloc(200_000, 2);
  const view = whole.subarray(10, 50_010);
  const expected = sha(owned, view);
  const s = Sha256State.create();
  s.update([owned, view], { handOver: true });
  return { owned, whole, view, s, expected };
}

test('handed-over buffers that own their memory are transferred (detached here)', async () => {
  const { owned, s, expected } = handOverMixed();
  assert.equal(owned.buffer.byteLength, 0, 'the owned buffer went to the hashing thread');
  assert.equal(await hex(s), expected);
});

test('handed-over views into shared memory are copied, not taken', async () => {
  const { whole, view, s, expected } = handOverMixed();
  assert.equal(view.length, 50_000, 'the view into a larger buffer was copied, not taken');
  assert.equal(whole[0], 2);
  assert.equal(await hex(s), expected);
});

test('without handOver nothing is taken from the caller', async () => {
  const owned = Buffer.from(new ArrayBuffer(4096)).fill(3);
  const s = Sha256State.create();
  s.update([owned]);
  assert.equal(owned.length, 4096);
  assert.equal(await hex(s), sha(owned));
});

test('copy() is an independent snapshot: later updates of either do not reach the other', async () => {
  const a = randomBytes(70_000);
  const b = randomBytes(50_000);
  const c = randomBytes(30_000);
  const s = Sha256State.create();
  s.update([a]);
  const snap = s.copy();
  s.update([b]);
  snap.update([c]);
  assert.equal(await hex(snap), sha(a, c));
  assert.equal(await hex(s), sha(a, b));
  // digest() leaves the state usable.
  s.update([c]);
  assert.equal(await hex(s), sha(a, b, c));
});

test('ofFile gives the state after a file’s first bytes', async () => {
  const data = randomBytes(2 * 1024 * 1024 + 5);
  const file = path.join(dir, 'f');
  await writeFile(file, data);
  const prefix = await Sha256State.ofFile(file, 1_500_000);
  assert.equal(await hex(prefix), sha(data.subarray(0, 1_500_000)));
  prefix.update([data.subarray(1_500_000)]);
  assert.equal(await hex(prefix), sha(data));
  assert.equal(await hex(await Sha256State.ofFile(file, 0)), sha());
});

test('ofFile of more bytes than the file holds is an error', async () => {
  const data = randomBytes(2 * 1024 * 1024 + 5);
  const file = path.join(dir, 'short');
  await writeFile(file, data);
  await assert.rejects(Sha256State.ofFile(file, data.length + 1), /fewer than/);
});

test('drained() resolves once the backlog is at or under the limit', async () => {
  const s = Sha256State.create();
  for (let i = 0; i < 8; i++) s.update([randomBytes(1024 * 1024)]);
  assert.ok(s.backlog <= 8 * 1024 * 1024);
  await s.drained(0);
  assert.equal(s.backlog, 0);
});

test('sha256Batches(false): the same digests and copy semantics on the calling thread, nothing taken', async () => {
  const a = randomBytes(70_000);
  const b = Buffer.from(new ArrayBuffer(50_000)).fill(9);
  const s = sha256Batches(false);
  s.update([a]);
  const snap = s.copy();
  s.update([b], { handOver: true });
  assert.equal(b.length, 50_000, 'inline hashing takes nothing from the caller');
  assert.equal(await hex(s), sha(a, b));
  assert.equal(await hex(snap), sha(a));
  assert.equal(s.backlog, 0);
});
