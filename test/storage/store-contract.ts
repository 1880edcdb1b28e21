/**
 * The ObjectStore contract as a suite any backend runs (local disk and S3 on a real Ceph RGW in
 * test/storage/contract.test.ts; GCS on its stand-in in gcs-contract.test.ts and on a real bucket
 * in gcs-real.real.ts, under a fresh `prefix`). Each call declares which optional parts the store
 * has (`presigned`); the store's capability flags must say the same, and only the declared optional
 * tests are registered (none is skipped at run time); nothing else may differ.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../src/errors.ts';
import { ObjectExistsError, ObjectTooLargeError, type ObjectStore } from '../../src/storage/types.ts';
import { sha256 } from '../helpers/files.ts';
import { asBody, MiB } from '../helpers/multipart-suite.ts';

export interface ContractStore {
  store: ObjectStore;
  /** Releases what setup made (servers, clients); the suite has deleted its objects by then. */
  close(): Promise<void>;
}

export interface ContractOptions {
  /** The signed GET URL's query parameter that names the response's Content-Type (tampered with). */
  typeParam: string;
  /**
   * The folder every key of the suite lives under ('c' unless given): a fresh one lets a real
   * bucket be shared (test/storage/gcs-real.real.ts).
   */
  prefix?: string;
  /** Whether the store signs URLs the client PUTs to directly: whole objects, multipart parts. */
  presigned: { put: boolean; parts: boolean };
}

/** Runs the contract on the store `setup` makes (once, before the suite's tests). */
export function storeContractSuite(
  name: string,
  setup: () => Promise<ContractStore>,
  opts: ContractOptions,
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let made: ContractStore | undefined;
    before(async () => {
      made = await setup();
    });
    after(async () => {
      await made?.close();
    });
    const s = () => {
      if (!made) throw new Error('the store was not set up');
      return made.store;
    };
    const data = Buffer.from('contract bytes '.repeat(1000));
    const prefix = opts.prefix ?? 'c';

    test('capabilities are explicit booleans', () => {
      for (const [k, v] of Object.entries(s().capabilities)) assert.equal(typeof v, 'boolean', k);
      assert.equal(s().capabilities.presignedPut, typeof s().presignPut === 'function');
      assert.equal(s().capabilities.presignedParts, typeof s().presignPart === 'function');
      assert.equal(s().capabilities.presignedPut, opts.presigned.put, 'presignedPut as declared');
      assert.equal(s().capabilities.presignedParts, opts.presigned.parts, 'presignedParts as declared');
    });

    test('put → stat, get, range, readAll and listObjects serve the object', async () => {
      const key = `${prefix}/one.bin`;
      const put = await s().put(key, body(data), {
        contentType: 'application/octet-stream',
        bytes: data.length,
        sha256: sha256(data),
      });
      assert.deepEqual(put, { size: data.length, sha256: sha256(data) });
      const st = await s().stat(key);
      assert.equal(st?.size, data.length);
      assert.match(st.etag, /^".+"$/);
      assert.deepEqual(await read(s(), key), data);
      assert.deepEqual(await read(s(), key, { start: 10, end: 19 }), data.subarray(10, 20));
      assert.deepEqual(await s().readAll(key, data.length), data);
      // Into a caller's (larger, dirty) buffer: a view of exactly the object's bytes.
      const given = Buffer.alloc(data.length + 100, 0xee);
      const sizes: number[] = [];
      const into = await s().readAll(key, data.length + 50, (size) => {
        sizes.push(size);
        return given;
      });
      assert.deepEqual(into, data);
      assert.equal(into?.buffer, given.buffer);
      assert.deepEqual(sizes, [data.length]);
      await assert.rejects(s().readAll(key, data.length - 1), (err: unknown) => {
        assert.ok(err instanceof ObjectTooLargeError);
        assert.equal(err.size, data.length);
        return true;
      });
      const listed: string[] = [];
      for await (const page of s().listObjects()) listed.push(...page.map((o) => o.key));
      assert.ok(listed.includes(key));
      await s().delete(key);
    });

    test('a deleted object is missing: stat, get and readAll answer undefined', async () => {
      const key = `${prefix}/deleted.bin`;
      await s().put(key, body(data), { contentType: 'application/octet-stream', bytes: data.length });
      await s().delete(key);
      assert.equal(await s().stat(key), undefined);
      assert.equal(await s().get(key), undefined);
      assert.equal(await s().readAll(key, 100), undefined);
    });

    test('deleting a missing object is fine', async () => {
      const key = `${prefix}/deleted-twice.bin`;
      await s().put(key, body(data), { contentType: 'application/octet-stream', bytes: data.length });
      await s().delete(key);
      await s().delete(key);
      assert.equal(await s().stat(key), undefined);
    });

    test('a key that leaves the store is refused', () => {
      assert.throws(() => s().uri('../escape'));
    });

    const big = Buffer.alloc(6 * MiB, 0x5a); // over the S3 store's single-PUT size: its multipart path
    const replacing = () =>
      [
        [`${prefix}/exclusive.bin`, data, Buffer.from('other bytes '.repeat(1250))],
        [`${prefix}/exclusive-big.bin`, big, Buffer.alloc(6 * MiB, 0x33)],
      ] as const;

    test('an exclusive put never replaces an object (single and multipart sizes)', async () => {
      for (const [key, first, other] of replacing()) {
        const expect = { contentType: 'application/octet-stream', bytes: first.length, exclusive: true };
        await s().put(key, body(first), expect);
        await assert.rejects(
          s().put(key, body(other), { ...expect, bytes: other.length }),
          (err: unknown) => {
            assert.ok(err instanceof ObjectExistsError, String(err));
            assert.equal(err.sha256, sha256(other), 'names what the refused bytes hash to');
            return true;
          },
        );
        assert.deepEqual(await s().readAll(key, first.length), first, 'the first object stands');
        await s().delete(key);
      }
      assert.deepEqual(await uploads(s()), [], 'no multipart upload left open');
    });

    test('a plain put replaces an object (single and multipart sizes)', async () => {
      for (const [key, first, other] of replacing()) {
        const expect = { contentType: 'application/octet-stream', bytes: first.length };
        await s().put(key, body(first), expect);
        await s().put(key, body(other), { ...expect, bytes: other.length, exclusive: false });
        assert.deepEqual(await s().readAll(key, other.length), other, 'a plain put replaces');
        await s().delete(key);
      }
      assert.deepEqual(await uploads(s()), [], 'no multipart upload left open');
    });

    test('put refuses too many bytes, too few bytes or a wrong sha256, leaving nothing', async () => {
      const key = `${prefix}/bad.bin`;
      const expect = { contentType: 'application/octet-stream', bytes: data.length };
      await rejectsWith(
        s().put(key, body(Buffer.concat([data, Buffer.from('x')])), expect),
        'upload_too_large',
      );
      await rejectsWith(s().put(key, body(data.subarray(1)), expect), 'upload_incomplete');
      await rejectsWith(s().put(key, body(data), { ...expect, sha256: 'a'.repeat(64) }), 'checksum_mismatch');
      assert.equal(await s().stat(key), undefined);
    });

    test('a large put (above the single-put size) is atomic too', async () => {
      const big = Buffer.alloc(11 * MiB, 7);
      const key = `${prefix}/big.bin`;
      const before = await uploads(s());
      await rejectsWith(
        s().put(key, body(big), { contentType: 'video/mp4', bytes: big.length, sha256: 'b'.repeat(64) }),
        'checksum_mismatch',
      );
      assert.equal(await s().stat(key), undefined);
      assert.deepEqual(await uploads(s()), before, 'no multipart upload left behind');
      await s().put(key, body(big), { contentType: 'video/mp4', bytes: big.length, sha256: sha256(big) });
      assert.equal(sha256((await read(s(), key))!), sha256(big));
      await s().delete(key);
    });

    const signedJpeg = async (key: string) => {
      await s().put(key, body(data), { contentType: 'image/jpeg', bytes: data.length });
      return s().signedGetUrl(key, {
        expiresInSeconds: 60,
        contentType: 'image/jpeg',
        contentDisposition: 'attachment; filename="x.jpg"',
      });
    };

    test('signed GET URLs serve the bytes with the given type and disposition', async () => {
      const key = `${prefix}/signed.jpg`;
      const url = await signedJpeg(key);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/jpeg');
      assert.equal(res.headers.get('content-disposition'), 'attachment; filename="x.jpg"');
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
      await s().delete(key);
    });

    test('a signed GET URL with a changed content type is 403', async () => {
      const key = `${prefix}/signed-tampered.jpg`;
      const url = await signedJpeg(key);
      const bad = new URL(url);
      bad.searchParams.set(opts.typeParam, 'text/html');
      assert.equal((await fetch(bad)).status, 403);
      await s().delete(key);
    });

    test('a signed GET URL for one key does not serve another', async () => {
      const [a, b] = [`${prefix}/a.bin`, `${prefix}/b.bin`];
      const expect = { contentType: 'application/octet-stream', bytes: data.length };
      await s().put(a, body(data), expect);
      await s().put(b, body(data), expect); // b exists: only the signature can refuse it
      const url = await s().signedGetUrl(a, {
        expiresInSeconds: 60,
        contentType: 'application/octet-stream',
        contentDisposition: 'inline',
      });
      assert.equal((await fetch(url)).status, 200);
      const other = new URL(url);
      assert.ok(other.pathname.endsWith('a.bin'), other.pathname);
      other.pathname = other.pathname.replace(/a\.bin$/, 'b.bin');
      assert.equal((await fetch(other)).status, 403);
      await s().delete(a);
      await s().delete(b);
    });

    test('multipart: parts, replace a part, list, wrong ETag refused, complete, abort', async () => {
      const key = `${prefix}/multi.bin`;
      const p1 = Buffer.alloc(5 * MiB, 1);
      const p2 = Buffer.alloc(5 * MiB, 2);
      const p3 = Buffer.from('the end');
      const id = await s().createMultipart(key, 'video/mp4');
      assert.ok((await uploads(s())).includes(id));
      const r1 = await s().putPart(key, id, 1, body(p1), p1.length);
      await s().putPart(key, id, 2, body(Buffer.alloc(5 * MiB, 9)), p2.length);
      const r2 = await s().putPart(key, id, 2, body(p2), p2.length); // replaces the first copy
      const r3 = await s().putPart(key, id, 3, body(p3), p3.length);
      const listed = await s().listParts(key, id);
      assert.deepEqual(
        listed?.map((p) => [p.partNumber, p.size, p.etag]),
        [
          [1, p1.length, r1.etag],
          [2, p2.length, r2.etag],
          [3, p3.length, r3.etag],
        ],
      );
      await rejectsWith(
        s().completeMultipart(key, id, [
          r1,
          { partNumber: 2, etag: '"00000000000000000000000000000000"' },
          r3,
        ]),
        'etag_mismatch',
      );
      assert.equal(await s().stat(key), undefined, 'nothing visible after a refused completion');
      const done = await s().completeMultipart(key, id, [r1, r2, r3]);
      assert.equal(done.size, p1.length + p2.length + p3.length);
      assert.equal(sha256((await read(s(), key))!), sha256(Buffer.concat([p1, p2, p3])));
      assert.ok(!(await uploads(s())).includes(id));
      assert.equal(await s().listParts(key, id), undefined);
      await s().delete(key);

      const id2 = await s().createMultipart(key, 'video/mp4');
      await s().putPart(key, id2, 1, body(p3), p3.length);
      await s().abortMultipart(key, id2);
      await s().abortMultipart(key, id2); // twice is fine
      assert.ok(!(await uploads(s())).includes(id2));
      assert.equal(await s().stat(key), undefined);
    });

    if (opts.presigned.put)
      test('a presigned PUT is enforced by the store: length and type are signed', async () => {
        const store = s();
        if (!store.presignPut) throw new Error('presignedPut was declared but the store has no presignPut');
        const key = `${prefix}/presigned.jpg`;
        const p = await store.presignPut(key, { contentType: 'image/jpeg', bytes: data.length }, 60);
        const put = (b: Buffer, h: Record<string, string>) =>
          fetch(p.url, { method: 'PUT', headers: h, body: asBody(b) });
        assert.equal((await put(data.subarray(1), p.headers)).status, 403, 'wrong length');
        assert.equal((await put(data, { 'Content-Type': 'text/html' })).status, 403, 'wrong type');
        assert.equal(await store.stat(key), undefined);
        assert.equal((await put(data, p.headers)).status, 200);
        assert.equal((await store.stat(key))?.size, data.length);
        await store.delete(key);
      });

    if (opts.presigned.parts)
      test('a presigned part URL is enforced by the store: the part length is signed', async () => {
        const store = s();
        if (!store.presignPart)
          throw new Error('presignedParts was declared but the store has no presignPart');
        const key = `${prefix}/presigned-part.bin`;
        const id = await store.createMultipart(key, 'video/mp4');
        const p = await store.presignPart(key, id, 1, 100, 60);
        const bad = await fetch(p.url, { method: 'PUT', headers: p.headers, body: new Uint8Array(99) });
        assert.equal(bad.status, 403, 'a part of another length');
        const ok = await fetch(p.url, { method: 'PUT', headers: p.headers, body: new Uint8Array(100) });
        assert.equal(ok.status, 200);
        assert.ok(ok.headers.get('etag'));
        assert.deepEqual(
          (await store.listParts(key, id))?.map((x) => x.etag),
          [ok.headers.get('etag')],
        );
        await store.abortMultipart(key, id);
      });
  });
}

const body = (buf: Buffer) => Readable.from([buf]);
async function read(store: ObjectStore, key: string, range?: { start: number; end: number }) {
  const stream = await store.get(key, range);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
async function rejectsWith(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (err: unknown) => err instanceof AppError && err.code === code);
}
async function uploads(store: ObjectStore) {
  const ids: string[] = [];
  for await (const u of store.listMultipartUploads()) ids.push(u.uploadId);
  return ids;
}
