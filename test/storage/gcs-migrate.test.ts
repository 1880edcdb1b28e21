/**
 * `mediary storage migrate` to and from GCS (our stand-in): local → gcs copies, verifies and
 * repoints; a corrupted source fails its row and a rerun finishes; gcs → local brings them back.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GcsObjectStore } from '../../src/storage/gcs.ts';
import { mediary } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { GCS_KEY_FILE, startGcsStandin, type GcsStandin } from '../helpers/gcs-standin.ts';
import { asBody, MiB, MULTIPART_ENV, videoBytes } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const BUCKET = 'mediary-migrate-gcs';
let gcs: GcsStandin;
let t: TestServer;
let store: GcsObjectStore;

before(async () => {
  gcs = await startGcsStandin();
  gcs.createBucket(BUCKET);
  // A server on local disk that already knows the bucket it will move to.
  t = await startTestServer({
    ...MULTIPART_ENV,
    STORAGE_BACKEND: 'local',
    GCS_BUCKET: BUCKET,
    GCS_API_ENDPOINT: gcs.endpoint,
    GCS_KEY_FILE,
  });
  store = new GcsObjectStore({
    bucket: BUCKET,
    apiEndpoint: gcs.endpoint,
    keyFile: GCS_KEY_FILE,
    singlePutMaxBytes: 5 * MiB,
    partSize: 5 * MiB,
  });
});
after(async () => {
  await t?.close();
  await gcs?.close();
});

async function upload(auth: Record<string, string>, name: string, mimeType: string, data: Buffer) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: name, mimeType, bytes: data.length, sha256: sha256(data) },
  });
  assert.equal(s.status, 201, s.text);
  if (s.body.upload.url) {
    const res = await fetch(s.body.upload.url, {
      method: 'PUT',
      headers: s.body.upload.headers,
      body: asBody(data),
    });
    assert.equal(res.status, 200);
    const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
    assert.equal(done.status, 200, done.text);
  } else {
    const numbers = [1, 2, 3];
    const signed = await call(t.api(`/media/${s.body.mediaId}/parts`), {
      method: 'POST',
      headers: auth,
      json: { partNumbers: numbers },
    });
    const parts = await Promise.all(
      signed.body.parts.map(async (p: { partNumber: number; url: string }) => {
        const res = await fetch(p.url, {
          method: 'PUT',
          body: asBody(data.subarray((p.partNumber - 1) * 5 * MiB, p.partNumber * 5 * MiB)),
        });
        return { partNumber: p.partNumber, etag: res.headers.get('etag')! };
      }),
    );
    const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
      method: 'POST',
      headers: auth,
      json: { parts },
    });
    assert.equal(done.status, 200, done.text);
  }
  return s.body.mediaId as string;
}

describe('migrate local → gcs and gcs → local', () => {
  type Row = { id: string; storage_backend: string; storage_key: string; storage_uri: string };
  const jpeg = fixture('cameras/Canon_40D.jpg');
  const video = videoBytes(12 * MiB); // a multipart put on GCS
  let dev: Awaited<ReturnType<TestServer['device']>>;
  let ids: string[];
  let initial: Row[];
  let env: Record<string, string>;
  let videoRow: Row;
  let file: string;
  const rows = async () =>
    (
      await t.server.database.pool.query(
        'SELECT id, storage_backend, storage_key, storage_uri, content_sha256 FROM media WHERE id = ANY($1)',
        [ids],
      )
    ).rows as Row[];

  before(async () => {
    dev = await t.device();
  });

  test('setup: a single and a multipart upload complete on local disk', async () => {
    ids = [
      await upload(dev.auth, 'a.jpg', 'image/jpeg', jpeg),
      await upload(dev.auth, 'b.mp4', 'video/mp4', video),
    ];
    initial = await rows();
    env = { ...t.env };
    videoRow = initial.find((r) => r.id === ids[1])!;
    file = path.join(t.config.storage.dir, videoRow.storage_key);
  });

  test('a corrupt source fails the run and its row stays on local while the other moves', async () => {
    const corrupt = Buffer.from(video);
    corrupt.writeUInt8(corrupt.readUInt8(6 * MiB) ^ 0xff, 6 * MiB);
    await writeFile(file, corrupt);
    const first = await mediary(['storage', 'migrate', '--from', 'local', '--to', 'gcs'], env);
    assert.equal(first.code, 1, 'a failed row makes the run fail');
    assert.match(first.stdout, /FAILED \(checksum_mismatch/);
    const now = await rows();
    assert.equal(now.find((r) => r.id === ids[0])!.storage_backend, 'gcs');
    assert.equal(now.find((r) => r.id === ids[1])!.storage_backend, 'local');
  });

  test('a failed copy leaves no partial object and no open multipart upload', async () => {
    assert.equal(await store.stat(videoRow.storage_key), undefined, 'no partial copy visible');
    assert.deepEqual([...gcs.uploads.keys()], [], 'no multipart upload left open');
  });

  test('after a repair a rerun finishes, verified byte for byte', async () => {
    await writeFile(file, video);
    const second = await mediary(['storage', 'migrate', '--from', 'local', '--to', 'gcs'], env);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const now = await rows();
    for (const r of now) {
      assert.equal(r.storage_backend, 'gcs');
      assert.equal(r.storage_uri, `gs://${BUCKET}/${r.storage_key}`);
    }
    assert.deepEqual(
      await store.readAll(initial.find((r) => r.id === ids[0])!.storage_key, jpeg.length),
      jpeg,
    );
    assert.equal(sha256((await store.readAll(videoRow.storage_key, video.length))!), sha256(video));
  });

  test('gcs → local brings them back and they are served', async () => {
    // And back: GCS as the source.
    const back = await mediary(['storage', 'migrate', '--from', 'gcs', '--to', 'local'], env);
    assert.equal(back.code, 0, back.stdout + back.stderr);
    const now = await rows();
    for (const r of now) assert.equal(r.storage_backend, 'local');
    const dl = await fetch(t.api(`/media/${ids[1]}/download?mode=proxy`), { headers: dev.auth });
    assert.equal(sha256(Buffer.from(await dl.arrayBuffer())), sha256(video));
  });
});
