/**
 * The local store's buffer put (processing's variants): the same object, result and refusals as
 * the stream put, nothing left behind when refused, and putVariant takes it when the store has it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { AppError } from '../../src/errors.ts';
import { putVariant } from '../../src/processing/job-kit.ts';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { ObjectExistsError, type PutExpectation } from '../../src/storage/types.ts';
import { sha256 } from '../helpers/files.ts';

let root: string;
let store: LocalObjectStore;
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'mediary-put-buffer-'));
  store = new LocalObjectStore(root, { signedGet: () => '' });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const data = Buffer.from('variant bytes '.repeat(3000));
const expect = (over: Partial<PutExpectation> = {}): PutExpectation => ({
  contentType: 'image/webp',
  bytes: data.length,
  sha256: sha256(data),
  ...over,
});
const scratch = async () => readdir(path.join(root, '.tmp')).catch(() => [] as string[]);

test('putBuffer stores what put stores, with the same result, in directories it creates', async () => {
  const viaBuffer = await store.putBuffer('variants/a/one.webp', data, expect());
  const viaStream = await store.put('variants/b/one.webp', Readable.from([data]), expect());
  assert.deepEqual(viaBuffer, viaStream);
  assert.deepEqual(viaBuffer, { size: data.length, sha256: sha256(data) });
  assert.deepEqual(await readFile(path.join(root, 'variants/a/one.webp')), data);
  assert.deepEqual(await store.readAll('variants/a/one.webp', data.length), data);
  assert.equal((await store.stat('variants/a/one.webp'))?.size, data.length);
  // A second object in the now existing directory, and a replacement of the first.
  const other = Buffer.from('other bytes');
  await store.putBuffer('variants/a/two.webp', other, expect({ bytes: other.length, sha256: sha256(other) }));
  await store.putBuffer('variants/a/one.webp', other, expect({ bytes: other.length, sha256: sha256(other) }));
  assert.deepEqual(await readFile(path.join(root, 'variants/a/one.webp')), other);
  assert.deepEqual(await scratch(), []);
});

test('putBuffer refuses what put refuses, with the same errors, and leaves nothing behind', async () => {
  const cases: [string, PutExpectation][] = [
    ['upload_too_large', expect({ bytes: data.length - 1, sha256: undefined })],
    ['upload_incomplete', expect({ bytes: data.length + 1, sha256: undefined })],
    ['checksum_mismatch', expect({ sha256: sha256(Buffer.from('something else')) })],
  ];
  for (const [code, e] of cases) {
    const codeOf = (err: unknown) => (assert.ok(err instanceof AppError), err.code);
    const fromBuffer = await store.putBuffer('variants/c/x.webp', data, e).then(() => 'stored', codeOf);
    const fromStream = await store
      .put('variants/c/x.webp', Readable.from([data]), e)
      .then(() => 'stored', codeOf);
    assert.equal(fromBuffer, code);
    assert.equal(fromStream, code);
  }
  assert.equal(await store.stat('variants/c/x.webp'), undefined);
  assert.deepEqual(await scratch(), []);
  await assert.rejects(store.putBuffer('../escape', data, expect()), /unsafe storage key/);
});

test('an exclusive putBuffer never replaces an object', async () => {
  await store.putBuffer('originals/x.jpg', data, expect({ exclusive: true }));
  const other = Buffer.from('replacement');
  await assert.rejects(
    store.putBuffer(
      'originals/x.jpg',
      other,
      expect({ bytes: other.length, sha256: undefined, exclusive: true }),
    ),
    ObjectExistsError,
  );
  assert.deepEqual(await readFile(path.join(root, 'originals/x.jpg')), data);
  assert.deepEqual(await scratch(), []);
});

test('putVariant stores through putBuffer when the store has it', async () => {
  const calls = { putBuffer: 0, put: 0 };
  const counted = Object.assign(Object.create(store) as LocalObjectStore, {
    putBuffer: (...a: Parameters<LocalObjectStore['putBuffer']>) => (
      calls.putBuffer++,
      store.putBuffer(...a)
    ),
    put: (...a: Parameters<LocalObjectStore['put']>) => (calls.put++, store.put(...a)),
  });
  const { record, written } = await putVariant(counted, 'm1', 'webp', {
    size: 150,
    width: 150,
    height: 100,
    data,
  });
  assert.equal(written, true);
  assert.deepEqual(calls, { putBuffer: 1, put: 0 });
  assert.deepEqual(await store.readAll(record.key, data.length), data);
  // The same bytes again: already under their content-addressed key, nothing written.
  assert.equal(
    (await putVariant(counted, 'm1', 'webp', { size: 150, width: 150, height: 100, data })).written,
    false,
  );
  assert.deepEqual(calls, { putBuffer: 1, put: 0 });
});
