/**
 * The S3 backend through the HTTP API, on a real Ceph RADOS Gateway: presigned single PUTs the
 * store itself checks, presigned downloads, bucket setup, and the whole multipart protocol.
 */
import assert from 'node:assert/strict';
import { GetBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import { after, before, describe, test } from 'node:test';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { asBody, MULTIPART_ENV, multipartProtocolSuite } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const BUCKET = 'mediary-api-test';
const JPEG = fixture('cameras/Canon_40D.jpg');
let ceph: Ceph;
let t: TestServer;
let setupOutput: string;

before(async () => {
  ceph = await startCeph();
  t = await startTestServer(ceph.serverEnv(BUCKET, MULTIPART_ENV));
  const res = await mediary(['storage', 'setup'], { ...t.env, S3_CORS_ORIGINS: 'https://app.example' });
  assert.equal(res.code, 0, res.stderr);
  setupOutput = res.stdout;
});
after(async () => {
  await t?.close();
  await ceph?.stop();
});

const put = (url: string, body: Buffer, headers: Record<string, string>) =>
  fetch(url, { method: 'PUT', headers, body: asBody(body) });

describe('bucket setup (mediary storage setup)', () => {
  test('creates the bucket and applies CORS that exposes ETag', async () => {
    assert.match(setupOutput, /bucket mediary-api-test created/);
    const client = new S3Client({
      endpoint: ceph.env.S3_ENDPOINT,
      region: ceph.env.S3_REGION,
      forcePathStyle: true,
    });
    const cors = await client.send(new GetBucketCorsCommand({ Bucket: BUCKET }));
    client.destroy();
    const rule = cors.CORSRules?.[0];
    assert.deepEqual(rule?.AllowedOrigins, ['https://app.example']);
    assert.ok(rule?.ExposeHeaders?.includes('ETag'));
    assert.ok(rule?.AllowedMethods?.includes('PUT'));
  });

  test('the bucket is not public', async () => {
    assert.equal(
      (await fetch(`${ceph.env.S3_ENDPOINT}/${BUCKET}/`)).status,
      403,
      'anonymous listing refused',
    );
  });

  test('rerunning setup is safe', async () => {
    const again = await mediary(['storage', 'setup'], t.env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /bucket mediary-api-test exists/);
  });
});

describe('single uploads straight to the bucket', () => {
  test('presigned PUT → complete → presigned GET with content type and disposition', async () => {
    const dev = await t.device();
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: 'Canon 40D.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
    });
    assert.equal(s.status, 201, s.text);
    const upload = s.body.upload;
    assert.equal(upload.method, 'PUT');
    assert.ok(upload.url.startsWith(`${ceph.env.S3_ENDPOINT}/${BUCKET}/`), upload.url);
    const signed = new URL(upload.url).searchParams.get('X-Amz-SignedHeaders') ?? '';
    assert.deepEqual(signed.split(';').sort(), ['content-length', 'content-type', 'host', 'if-none-match']);
    assert.deepEqual(upload.headers, { 'Content-Type': 'image/jpeg', 'If-None-Match': '*' });
    const res = await put(upload.url, JPEG, upload.headers);
    assert.equal(res.status, 200, await res.text());
    // Create-only: the same URL cannot replace the object (other bytes of the same length), and
    // leaving the header out breaks the signature.
    const other = Buffer.alloc(JPEG.length, 0x20);
    assert.equal((await put(upload.url, other, upload.headers)).status, 412);
    assert.equal((await put(upload.url, other, { 'Content-Type': 'image/jpeg' })).status, 403);

    const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.status, 'UPLOADED');
    assert.equal(done.body.detectedMimeType, 'image/jpeg');
    assert.equal(done.body.sha256Verified, false, 'Ceph does not verify sha256: verification stays pending');
    assert.equal(done.body.storageBackend, 's3');

    const dl = await call(t.api(`/media/${s.body.mediaId}/download`), { headers: dev.auth });
    assert.equal(dl.status, 302);
    const location = new URL(dl.headers.get('location')!);
    assert.ok(location.toString().startsWith(`${ceph.env.S3_ENDPOINT}/${BUCKET}/`));
    assert.ok(Number(location.searchParams.get('X-Amz-Expires')) <= 300, 'short expiry');
    const got = await fetch(location);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'image/jpeg');
    assert.equal(
      got.headers.get('content-disposition'),
      `inline; filename="Canon 40D.jpg"; filename*=UTF-8''Canon%2040D.jpg`,
    );
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(JPEG));
    // The object itself is not public.
    const key = (
      await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [s.body.mediaId])
    ).rows[0].storage_key as string;
    assert.equal((await fetch(`${ceph.env.S3_ENDPOINT}/${BUCKET}/${key}`)).status, 403);
    // Proxy mode reads through the store, with ranges.
    const ranged = await fetch(t.api(`/media/${s.body.mediaId}/download?mode=proxy`), {
      headers: { ...dev.auth, range: 'bytes=0-99' },
    });
    assert.equal(ranged.status, 206);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), JPEG.subarray(0, 100));
  });

  describe('the store itself refuses a presigned PUT', () => {
    let dev: { auth: Record<string, string> };
    let s: Awaited<ReturnType<typeof call>>;
    let url: string;
    let headers: Record<string, string>;
    before(async () => {
      dev = await t.device();
      s = await call(t.api('/media'), {
        method: 'POST',
        headers: dev.auth,
        json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
      });
      ({ url, headers } = s.body.upload as { url: string; headers: Record<string, string> });
    });

    test('of the wrong length', async () => {
      const longer = await put(url, Buffer.concat([JPEG, Buffer.from('x')]), headers);
      assert.equal(longer.status, 403, 'one byte too many');
      const shorter = await put(url, JPEG.subarray(0, JPEG.length - 1), headers);
      assert.equal(shorter.status, 403, 'one byte short');
    });

    test('of the wrong Content-Type', async () => {
      const html = await put(url, JPEG, { 'Content-Type': 'text/html' });
      assert.equal(html.status, 403, 'another content type');
    });

    test('and nothing is stored', async () => {
      const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
        method: 'POST',
        headers: dev.auth,
      });
      assert.deepEqual([done.status, done.body.error.code], [409, 'object_missing']);
    });

    test('the honest upload still works afterwards', async () => {
      assert.equal((await put(url, JPEG, headers)).status, 200);
    });
  });
});

multipartProtocolSuite('s3', () => t);
