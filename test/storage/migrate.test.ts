/**
 * `mediary storage migrate --from local --to s3`: objects uploaded to local disk are copied to a
 * real Ceph RGW, verified, and their rows repointed; a failed row stays put and a rerun finishes it.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3ObjectStore } from '../../src/storage/s3.ts';
import { bucketStore, type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { asBody, MiB, MULTIPART_ENV, videoBytes } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const BUCKET = 'mediary-migrate-test';
let ceph: Ceph;
let t: TestServer;
let s3: S3ObjectStore;

before(async () => {
  ceph = await startCeph();
  // A server on local disk that already knows the bucket it will move to.
  const s3env = ceph.serverEnv(BUCKET);
  t = await startTestServer({ ...s3env, ...MULTIPART_ENV, STORAGE_BACKEND: 'local' });
  s3 = bucketStore(ceph, BUCKET);
  await s3.setup({ corsOrigins: [] });
});
after(async () => {
  s3?.destroy();
  await t?.close();
  await ceph?.stop();
});

async function s3Bytes(key: string) {
  const stream = await s3.get(key);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('migrate local → s3', () => {
  type Row = { id: string; storage_backend: string; storage_key: string; storage_uri: string };
  const jpeg = fixture('cameras/Canon_40D.jpg');
  const video = videoBytes(12 * MiB); // moved as a multipart put on S3
  const ids: string[] = [];
  let aId: string;
  let bId: string;
  let pendingId: string;
  let initial: Row[];
  let env: Record<string, string>;
  let videoRow: Row;
  let file: string;
  const rows = async () =>
    (
      await t.server.database.pool.query(
        'SELECT id, storage_backend, storage_key, storage_uri FROM media WHERE id = ANY($1) ORDER BY id',
        [[...ids, pendingId]],
      )
    ).rows as Row[];

  test('setup: a single and a multipart upload complete on local disk, a third stays pending', async () => {
    const dev = await t.device();
    // A single upload…
    const a = await call(t.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg) },
    });
    assert.equal(
      (await fetch(a.body.upload.url, { method: 'PUT', headers: a.body.upload.headers, body: asBody(jpeg) }))
        .status,
      200,
    );
    assert.equal(
      (await call(t.api(`/media/${a.body.mediaId}/complete`), { method: 'POST', headers: dev.auth })).status,
      200,
    );
    aId = a.body.mediaId;
    ids.push(aId);
    // …and a multipart one.
    const b = await call(t.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: 'b.mp4', mimeType: 'video/mp4', bytes: video.length },
    });
    const signed = await call(t.api(`/media/${b.body.mediaId}/parts`), {
      method: 'POST',
      headers: dev.auth,
      json: { partNumbers: [1, 2, 3] },
    });
    const parts = await Promise.all(
      signed.body.parts.map(async (p: { partNumber: number; url: string }) => {
        const res = await fetch(p.url, {
          method: 'PUT',
          body: asBody(video.subarray((p.partNumber - 1) * 5 * MiB, p.partNumber * 5 * MiB)),
        });
        return { partNumber: p.partNumber, etag: res.headers.get('etag')! };
      }),
    );
    const bd = await call(t.api(`/media/${b.body.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
      json: { parts },
    });
    assert.equal(bd.status, 200, bd.text);
    bId = b.body.mediaId;
    ids.push(bId);
    // A pending session is not moved.
    const pending = await call(t.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: 10 },
    });
    pendingId = pending.body.mediaId;
    initial = await rows();
    env = { ...t.env };
  });

  test('a dry run changes no row and copies nothing', async () => {
    const dry = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3', '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would copy/);
    assert.deepEqual(await rows(), initial, 'a dry run changes no row');
    for (const r of initial) assert.equal(await s3.stat(r.storage_key), undefined, 'and copies nothing');
  });

  test('a copy that fails its sha256 check fails the run and leaves its row on local while the others move', async () => {
    // Corrupt the video on disk: its copy must fail the sha256 check and its row stay on local.
    videoRow = initial.find((r) => r.id === bId)!;
    file = path.join(t.config.storage.dir, videoRow.storage_key);
    const corrupt = Buffer.from(video);
    corrupt.writeUInt8(corrupt.readUInt8(6 * MiB) ^ 0xff, 6 * MiB);
    await writeFile(file, corrupt);
    const first = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3'], env);
    assert.equal(first.code, 1, 'a failed row makes the run fail');
    assert.match(first.stdout, /FAILED \(checksum_mismatch/);
    const now = await rows();
    assert.equal(now.find((r) => r.id === aId)!.storage_backend, 's3');
    assert.equal(now.find((r) => r.id === bId)!.storage_backend, 'local');
    assert.equal(await s3.stat(videoRow.storage_key), undefined, 'no partial copy visible');
  });

  test('a pending session is not moved', async () => {
    const now = await rows();
    assert.equal(now.find((r) => r.id === pendingId)!.storage_backend, 'local');
  });

  test('after a repair a rerun copies what is left, verified byte for byte', async () => {
    // Repair and rerun: only what is left is copied.
    await writeFile(file, video);
    const second = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3'], env);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /1 of 1 media switched/);
    const now = await rows();
    for (const id of ids) {
      const r = now.find((x) => x.id === id)!;
      assert.equal(r.storage_backend, 's3');
      assert.equal(r.storage_uri, `s3://${BUCKET}/${r.storage_key}`);
    }
    assert.deepEqual(await s3Bytes(initial.find((r) => r.id === aId)!.storage_key), jpeg, 'byte for byte');
    assert.equal(sha256((await s3Bytes(videoRow.storage_key))!), sha256(video), 'byte for byte');
    const verified = await t.server.database.pool.query('SELECT content_sha256 FROM media WHERE id = $1', [
      bId,
    ]);
    assert.equal(verified.rows[0].content_sha256, sha256(video));
  });

  test('a rerun with nothing left does nothing', async () => {
    const third = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3'], env);
    assert.equal(third.code, 0);
    assert.match(third.stdout, /0 of 0 media switched; 0 objects copied/, 'a rerun has nothing left to do');
  });
});
