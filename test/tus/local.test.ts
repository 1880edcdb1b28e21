/** tus on the local store (staging file under the store's .tus/, published by a hard link). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { offloadedBytes } from '../../src/storage/sha256-offload.ts';
import { sha256 } from '../helpers/files.ts';
import { asBody, MiB } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { b64, paddedJpeg, TUS_ENV, tusProtocolSuite } from './protocol-suite.ts';

const TUS = { 'tus-resumable': '1.0.0' };
const OCTETS = { ...TUS, 'content-type': 'application/offset+octet-stream' };

let t: TestServer;
before(async () => {
  // The hashing thread on whatever the machine (its default needs two cores); tus-js-client.test.ts
  // runs the SHA-256 on the event loop.
  t = await startTestServer({ ...TUS_ENV, TUS_HASH_THREAD: 'true' });
});
after(async () => {
  await t?.close();
});

tusProtocolSuite('the local store', () => t);

test('local: no staging file outlives its upload (finished, expired, cancelled, failed)', async () => {
  const left = await readdir(path.join(t.config.storage.dir, '.tus')).catch(() => [] as string[]);
  const rows = await t.server.database.pool.query<{ media_id: string }>('SELECT media_id FROM tus_uploads');
  const open = new Set(rows.rows.map((r) => r.media_id));
  assert.deepEqual(
    left.filter((f) => !open.has(f)),
    [],
  );
});

describe('local: a checkpoint that waits (its offset UPDATE blocked)', () => {
  let jpeg: Buffer;
  let id: string;
  let patching: Promise<Awaited<ReturnType<typeof call>>> | undefined;

  test('does not stall the PATCH body', async () => {
    jpeg = await paddedJpeg(6 * MiB);
    const u = await t.user(`tus-${randomUUID()}`);
    const metadata = `filename ${b64('slow.jpg')},filetype ${b64('image/jpeg')},sha256 ${b64(sha256(jpeg))}`;
    const created = await call(t.api('/tus/'), {
      method: 'POST',
      headers: { ...u.auth, ...TUS, 'upload-length': String(jpeg.length), 'upload-metadata': metadata },
    });
    assert.equal(created.status, 201, created.text);
    const url = created.headers.get('location')!;
    id = url.split('/').pop()!;
    // Hold the upload's row: every checkpoint's offset UPDATE (TUS_CHECKPOINT_BYTES = 1 MiB) waits.
    const lock = await t.server.database.pool.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT 1 FROM tus_uploads WHERE media_id = $1 FOR UPDATE', [id]);
      patching = call(url, {
        method: 'PATCH',
        headers: { ...u.auth, ...OCTETS, 'upload-offset': '0' },
        body: asBody(jpeg),
      });
      // The body keeps going into the staging file, past the first checkpoint (1 MiB) and the one
      // batch written after it, while that checkpoint waits. (Polled for up to a minute: on a loaded
      // machine the request may take a while to start; the last batch is written at the end.)
      const staged = path.join(t.config.storage.dir, '.tus', id);
      const want = jpeg.length - MiB;
      const deadline = Date.now() + 60_000;
      let size = 0;
      while (size < want && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        size = (await stat(staged).catch(() => undefined))?.size ?? 0;
      }
      assert.ok(size >= want, `${size} bytes staged while the first checkpoint waited; want ${want}`);
      const { rows } = await t.server.database.pool.query<{ upload_offset: string }>(
        'SELECT upload_offset FROM tus_uploads WHERE media_id = $1',
        [id],
      );
      assert.equal(Number(rows[0]!.upload_offset), 0, 'nothing committed while the row is held');
    } finally {
      await lock.query('ROLLBACK');
      lock.release();
    }
  });

  test('commits the offset once the row is free', async () => {
    const res = await patching!;
    assert.equal(res.status, 204, res.text);
    assert.equal(res.headers.get('upload-offset'), String(jpeg.length));
    const m = await t.server.database.pool.query('SELECT status, content_sha256 FROM media WHERE id = $1', [
      id,
    ]);
    assert.equal(m.rows[0].status, 'UPLOADED');
    assert.equal(m.rows[0].content_sha256, sha256(jpeg));
  });
});

test('local: the upload’s SHA-256 is computed in the hashing thread (its bytes handed over), and is right', async () => {
  const jpeg = await paddedJpeg(3 * MiB + 123);
  const u = await t.user(`tus-${randomUUID()}`);
  const metadata = `filename ${b64('off.jpg')},filetype ${b64('image/jpeg')},sha256 ${b64(sha256(jpeg))}`;
  const before = offloadedBytes();
  const created = await call(t.api('/tus/'), {
    method: 'POST',
    headers: { ...u.auth, ...TUS, 'upload-length': String(jpeg.length), 'upload-metadata': metadata },
  });
  assert.equal(created.status, 201, created.text);
  const url = created.headers.get('location')!;
  // Two PATCHes: the second one resumes from the state kept at the first one's offset.
  for (const [from, to] of [
    [0, 2 * MiB + 1],
    [2 * MiB + 1, jpeg.length],
  ] as const) {
    const res = await call(url, {
      method: 'PATCH',
      headers: { ...u.auth, ...OCTETS, 'upload-offset': String(from) },
      body: asBody(jpeg.subarray(from, to)),
    });
    assert.equal(res.status, 204, res.text);
  }
  // Other tests of this file may upload meanwhile: at least this upload's bytes went over.
  assert.ok(offloadedBytes() - before >= jpeg.length, `${offloadedBytes() - before} bytes hashed off-thread`);
  const id = url.split('/').pop()!;
  const m = await t.server.database.pool.query('SELECT status, content_sha256 FROM media WHERE id = $1', [
    id,
  ]);
  assert.equal(m.rows[0].status, 'UPLOADED');
  assert.equal(m.rows[0].content_sha256, sha256(jpeg));
});
