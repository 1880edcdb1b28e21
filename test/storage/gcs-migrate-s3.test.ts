/**
 * `mediary storage migrate --from s3 --to gcs`: objects on a real Ceph RGW move to GCS (our
 * stand-in), verified, and their rows are repointed to gs://.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GcsObjectStore } from '../../src/storage/gcs.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { GCS_KEY_FILE, startGcsStandin, type GcsStandin } from '../helpers/gcs-standin.ts';
import { asBody, MiB, MULTIPART_ENV } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const S3_BUCKET = 'mediary-s3-to-gcs';
const GCS_BUCKET = 'mediary-from-s3';
let ceph: Ceph;
let gcs: GcsStandin;
let t: TestServer;

before(async () => {
  [ceph, gcs] = await Promise.all([startCeph(), startGcsStandin()]);
  gcs.createBucket(GCS_BUCKET);
  t = await startTestServer(
    ceph.serverEnv(S3_BUCKET, {
      ...MULTIPART_ENV,
      GCS_BUCKET,
      GCS_API_ENDPOINT: gcs.endpoint,
      GCS_KEY_FILE,
    }),
  );
  const setup = await mediary(['storage', 'setup'], t.env);
  assert.equal(setup.code, 0, setup.stderr);
});
after(async () => {
  await t?.close();
  await Promise.all([ceph?.stop(), gcs?.close()]);
});

test('migrate s3 → gcs: copied, verified, repointed to gs://', async () => {
  const dev = await t.device();
  const jpeg = fixture('cameras/Canon_40D.jpg');
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg) },
  });
  assert.equal(s.status, 201, s.text);
  const put = await fetch(s.body.upload.url, {
    method: 'PUT',
    headers: s.body.upload.headers,
    body: asBody(jpeg),
  });
  assert.equal(put.status, 200);
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: dev.auth });
  assert.equal(done.status, 200, done.text);

  const res = await mediary(['storage', 'migrate', '--from', 's3', '--to', 'gcs'], t.env);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /1 of 1 media switched/);
  const row = (
    await t.server.database.pool.query(
      'SELECT storage_backend, storage_key, storage_uri FROM media WHERE id = $1',
      [s.body.mediaId],
    )
  ).rows[0] as { storage_backend: string; storage_key: string; storage_uri: string };
  assert.equal(row.storage_backend, 'gcs');
  assert.equal(row.storage_uri, `gs://${GCS_BUCKET}/${row.storage_key}`);
  const store = new GcsObjectStore({
    bucket: GCS_BUCKET,
    apiEndpoint: gcs.endpoint,
    keyFile: GCS_KEY_FILE,
    singlePutMaxBytes: 5 * MiB,
    partSize: 5 * MiB,
  });
  assert.deepEqual(await store.readAll(row.storage_key, jpeg.length), jpeg, 'byte for byte');
});
