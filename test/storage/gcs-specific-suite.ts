/**
 * What only a GCS store must show beyond the shared ObjectStore contract (store-contract.ts): the
 * signed x-goog-* upload headers are enforced. Run on our stand-in (gcs-contract.test.ts) and on a
 * real bucket (gcs-real.real.ts, `npm run test:gcs-real`). Keys live under `prefix` so a real
 * bucket can be shared.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GcsObjectStore } from '../../src/storage/gcs.ts';
import { asBody } from '../helpers/multipart-suite.ts';

export function gcsSpecificSuite(name: string, get: () => GcsObjectStore, prefix = 'g'): void {
  describe(`GCS signed upload headers: ${name}`, () => {
    const data = Buffer.from('gcs bytes '.repeat(1000));

    test('the signed upload headers are enforced: each x-goog header, type, length, create-only', async () => {
      const key = `${prefix}/direct.jpg`;
      const p = await get().presignPut(
        key,
        { contentType: 'image/jpeg', bytes: data.length, exclusive: true },
        60,
      );
      assert.deepEqual(Object.keys(p.headers).sort(), [
        'Content-Type',
        'x-goog-content-length-range',
        'x-goog-if-generation-match',
      ]);
      const signed = new URL(p.url).searchParams.get('X-Goog-SignedHeaders')!.split(';');
      assert.deepEqual(signed, [
        'content-length',
        'content-type',
        'host',
        'x-goog-content-length-range',
        'x-goog-if-generation-match',
      ]);
      const put = (b: Buffer, h: Record<string, string>) =>
        fetch(p.url, { method: 'PUT', headers: h, body: asBody(b) });
      const without = (name: string) =>
        Object.fromEntries(Object.entries(p.headers).filter(([k]) => k !== name));
      assert.equal(
        (await put(data, without('x-goog-content-length-range'))).status,
        403,
        'range header dropped',
      );
      assert.equal(
        (await put(data, without('x-goog-if-generation-match'))).status,
        403,
        'create-only dropped',
      );
      assert.equal(
        (await put(data, { ...p.headers, 'x-goog-content-length-range': `0,${data.length * 2}` })).status,
        403,
        'range widened',
      );
      assert.equal(
        (await put(data, { ...p.headers, 'Content-Type': 'text/html' })).status,
        403,
        'type altered',
      );
      assert.equal((await put(Buffer.concat([data, data]), p.headers)).status, 403, 'longer');
      assert.equal(await get().stat(key), undefined, 'nothing written by a refused PUT');
      assert.equal((await put(data, p.headers)).status, 200);
      assert.equal((await put(data, p.headers)).status, 412, 'create-only: the object is never replaced');
      assert.equal((await get().stat(key))?.size, data.length);
      await get().delete(key);
    });
  });
}
