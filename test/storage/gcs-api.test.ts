/**
 * The GCS backend through the HTTP API of a real Mediary server (STORAGE_BACKEND=gcs, configured
 * from the environment as in production) against our GCS stand-in: `mediary storage setup`,
 * signed single PUTs the stand-in checks against the signing rules, signed and proxied downloads,
 * and the whole multipart protocol (the same suite as local disk and Ceph).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { mediary } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { GCS_KEY_FILE, startGcsStandin, type GcsStandin } from '../helpers/gcs-standin.ts';
import { asBody, MULTIPART_ENV, multipartProtocolSuite } from '../helpers/multipart-suite.ts';
import { call, startTestServer, tempDir, testEnv, type TestServer } from '../helpers/server.ts';

const BUCKET = 'mediary-gcs-test';
const JPEG = fixture('cameras/Canon_40D.jpg');
let gcs: GcsStandin;
let t: TestServer;
let setupOutput: string;

before(async () => {
  gcs = await startGcsStandin();
  const env = {
    ...MULTIPART_ENV,
    STORAGE_BACKEND: 'gcs',
    GCS_BUCKET: BUCKET,
    GCS_API_ENDPOINT: gcs.endpoint,
    GCS_KEY_FILE,
  };
  const setupDir = await tempDir();
  const res = await mediary(['storage', 'setup'], {
    ...(await testEnv(setupDir, env)),
    GCS_CORS_ORIGINS: 'https://app.example',
  });
  await rm(setupDir, { recursive: true, force: true });
  assert.equal(res.code, 0, res.stderr);
  setupOutput = res.stdout;
  t = await startTestServer(env);
});
after(async () => {
  await t?.close();
  await gcs?.close();
});

const put = (url: string, body: Buffer, headers: Record<string, string>) =>
  fetch(url, { method: 'PUT', headers, body: asBody(body) });

describe('bucket setup (mediary storage setup)', () => {
  test('creates the bucket private (uniform access, public access prevention) with CORS', () => {
    assert.match(setupOutput, /bucket mediary-gcs-test created/);
    assert.match(setupOutput, /public access prevention enforced/);
    const meta = gcs.buckets.get(BUCKET)!.meta as {
      iamConfiguration: { publicAccessPrevention: string };
      cors: { origin: string[] }[];
    };
    assert.equal(meta.iamConfiguration.publicAccessPrevention, 'enforced');
    assert.deepEqual(meta.cors[0]?.origin, ['https://app.example']);
  });
});

describe('single uploads straight to the bucket', () => {
  describe('signed PUT → complete → signed GET', () => {
    let dev: { auth: Record<string, string> };
    let s: Awaited<ReturnType<typeof call>>;
    let upload: { method: string; url: string; headers: Record<string, string> };
    let row: { storage_key: string; storage_uri: string };
    before(async () => {
      dev = await t.device();
    });

    test('the session offers a create-only signed PUT of the exact length and type', async () => {
      s = await call(t.api('/media'), {
        method: 'POST',
        headers: dev.auth,
        json: { fileName: 'Canon 40D.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
      });
      assert.equal(s.status, 201, s.text);
      upload = s.body.upload;
      assert.equal(upload.method, 'PUT');
      assert.ok(upload.url.startsWith(`${gcs.endpoint}/${BUCKET}/`), upload.url);
      assert.deepEqual(upload.headers, {
        'Content-Type': 'image/jpeg',
        'x-goog-content-length-range': `${JPEG.length},${JPEG.length}`,
        'x-goog-if-generation-match': '0',
      });
    });

    test('the signed PUT stores the object, and a second PUT is refused (create-only)', async () => {
      const res = await put(upload.url, JPEG, upload.headers);
      assert.equal(res.status, 200, await res.text());
      const other = Buffer.alloc(JPEG.length, 0x20);
      assert.equal((await put(upload.url, other, upload.headers)).status, 412, 'create-only');
    });

    test('complete records the object at gs://bucket/key with sha256 verification pending', async () => {
      const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
        method: 'POST',
        headers: dev.auth,
      });
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'UPLOADED');
      assert.equal(done.body.detectedMimeType, 'image/jpeg');
      assert.equal(done.body.sha256Verified, false, 'GCS cannot verify a sha256: verification stays pending');
      assert.equal(done.body.storageBackend, 'gcs');
      row = (
        await t.server.database.pool.query('SELECT storage_key, storage_uri FROM media WHERE id = $1', [
          s.body.mediaId,
        ])
      ).rows[0] as { storage_key: string; storage_uri: string };
      assert.equal(row.storage_uri, `gs://${BUCKET}/${row.storage_key}`);
    });

    test('download redirects to a short-lived signed GET with content type and disposition', async () => {
      const dl = await call(t.api(`/media/${s.body.mediaId}/download`), { headers: dev.auth });
      assert.equal(dl.status, 302);
      const location = new URL(dl.headers.get('location')!);
      assert.ok(location.toString().startsWith(`${gcs.endpoint}/${BUCKET}/`));
      assert.ok(Number(location.searchParams.get('X-Goog-Expires')) <= 300, 'short expiry');
      const got = await fetch(location);
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('content-type'), 'image/jpeg');
      assert.equal(
        got.headers.get('content-disposition'),
        `inline; filename="Canon 40D.jpg"; filename*=UTF-8''Canon%2040D.jpg`,
      );
      assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(JPEG));
    });

    test('without a signature the object is not served', async () => {
      assert.equal((await fetch(`${gcs.endpoint}/${BUCKET}/${row.storage_key}`)).status, 401);
    });

    test('a proxied download serves a byte range', async () => {
      const ranged = await fetch(t.api(`/media/${s.body.mediaId}/download?mode=proxy`), {
        headers: { ...dev.auth, range: 'bytes=0-99' },
      });
      assert.equal(ranged.status, 206);
      assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), JPEG.subarray(0, 100));
    });
  });

  describe('the signature refuses a signed PUT', () => {
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
      assert.equal(
        (await put(url, Buffer.concat([JPEG, Buffer.from('x')]), headers)).status,
        403,
        'one byte too many',
      );
      assert.equal(
        (await put(url, JPEG.subarray(0, JPEG.length - 1), headers)).status,
        403,
        'one byte short',
      );
    });

    test('of the wrong Content-Type', async () => {
      assert.equal(
        (await put(url, JPEG, { ...headers, 'Content-Type': 'text/html' })).status,
        403,
        'another type',
      );
    });

    test('and nothing is stored', async () => {
      const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
        method: 'POST',
        headers: dev.auth,
      });
      assert.deepEqual([done.status, done.body.error.code], [409, 'object_missing']);
    });

    test('the honest upload still works afterwards', async () => {
      assert.equal((await put(url, JPEG, headers)).status, 200, 'the honest upload still works');
    });
  });
});

describe('the storage pointer in the media record', () => {
  type Who = Awaited<ReturnType<TestServer['user']>>;
  let alice: Who;
  let carol: Who;
  let bob: Who;
  let cam: Awaited<ReturnType<TestServer['device']>>;
  let id: string;
  let key: string;
  before(async () => {
    alice = await t.user('ptr-alice');
    carol = await t.user('ptr-carol');
    bob = await t.user('ptr-bob');
    cam = await t.device('ptr-cam', alice.id);
  });

  test('the device’s session and completion responses carry no storageUri', async () => {
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: cam.auth,
      json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
    });
    assert.equal(s.status, 201, s.text);
    assert.equal('storageUri' in s.body.media, false, 'not in the device’s session response');
    id = s.body.mediaId as string;
    assert.equal((await put(s.body.upload.url, JPEG, s.body.upload.headers)).status, 200);
    const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: cam.auth });
    assert.equal(done.status, 200, done.text);
    assert.equal('storageUri' in done.body, false, 'not in the device’s completion response');
    ({ storage_key: key } = (
      await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [id])
    ).rows[0] as { storage_key: string });
  });

  test('the owning user sees storageUri gs://bucket/key in the record and the listing', async () => {
    const asOwner = await call(t.api(`/media/${id}`), { headers: alice.auth });
    assert.equal(asOwner.body.storageUri, `gs://${BUCKET}/${key}`);
    const ownerList = await call(t.api('/users/me/media?limit=100'), { headers: alice.auth });
    const listed = ownerList.body.items.find((m: { mediaId: string }) => m.mediaId === id);
    assert.equal(listed?.storageUri, `gs://${BUCKET}/${key}`, 'in the owner’s listing too');
  });

  test('the device that uploaded it does not see storageUri', async () => {
    const asDevice = await call(t.api(`/media/${id}`), { headers: cam.auth });
    assert.equal(asDevice.status, 200);
    assert.equal('storageUri' in asDevice.body, false, 'the device that uploaded it');
    const devList = await call(t.api(`/devices/${cam.id}/media?limit=100`), { headers: cam.auth });
    assert.ok(devList.body.items.some((m: { mediaId: string }) => m.mediaId === id));
    for (const m of devList.body.items) assert.equal('storageUri' in m, false, 'the device’s listing');
  });

  test('a circle member, even with originals shared, does not see storageUri', async () => {
    const circle = await call(t.api('/circles'), {
      method: 'POST',
      headers: alice.auth,
      json: { name: 'c' },
    });
    const cid = circle.body.circleId as string;
    const join = await call(t.api(`/circles/${cid}/members`), {
      method: 'POST',
      headers: alice.auth,
      json: { userId: carol.id },
    });
    assert.equal(join.status, 200, join.text);
    const share = await call(t.api(`/circles/${cid}/shares`), {
      method: 'POST',
      headers: alice.auth,
      json: { mediaId: id, originals: true },
    });
    assert.equal(share.status, 201, share.text);
    const asMember = await call(t.api(`/media/${id}`), { headers: carol.auth });
    assert.equal(asMember.status, 200);
    assert.equal('storageUri' in asMember.body, false, 'a circle member, even with originals');
    const memberList = await call(t.api(`/circles/${cid}/media`), { headers: carol.auth });
    assert.deepEqual(
      memberList.body.items.map((m: { mediaId: string }) => [m.mediaId, 'storageUri' in m]),
      [[id, false]],
    );
  });

  test('a stranger gets 404', async () => {
    assert.equal((await call(t.api(`/media/${id}`), { headers: bob.auth })).status, 404, 'a stranger');
  });
});

multipartProtocolSuite('gcs', () => t);
