/**
 * Profile images on S3 (a real Ceph RGW): the square variants are written to the bucket, the avatar
 * redirects to a presigned bucket URL a page can load, and a replacement removes the old image's
 * objects from the bucket (test/profiles/profiles.test.ts covers the rest on the local store).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3ObjectStore } from '../../src/storage/s3.ts';
import { bucketStore, type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { bigJpeg, waitFor } from '../processing/helpers.ts';

const BUCKET = 'mediary-profiles-s3';
let ceph: Ceph;
let t: TestServer;
let bucket: S3ObjectStore;
let photo: Buffer;
before(async () => {
  ceph = await startCeph();
  t = await startTestServer(ceph.serverEnv(BUCKET));
  const setup = await mediary(['storage', 'setup'], t.env);
  assert.equal(setup.code, 0, setup.stdout + setup.stderr);
  bucket = bucketStore(ceph, BUCKET);
  photo = await bigJpeg(fixture('cameras/Nikon_D70.jpg'), 900, 600);
});
after(async () => {
  bucket?.destroy();
  await t?.close();
  await ceph?.stop();
});

async function readyProfileImage(auth: Record<string, string>): Promise<string> {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: {
      fileName: 'me.jpg',
      mimeType: 'image/jpeg',
      bytes: photo.length,
      sha256: sha256(photo),
      purpose: 'profile',
    },
  });
  assert.equal(s.status, 201, s.text);
  const put = await fetch(s.body.upload.url, {
    method: 'PUT',
    headers: s.body.upload.headers,
    body: new Uint8Array(photo),
  });
  assert.equal(put.status, 200, await put.text());
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  await waitFor(t, auth, s.body.mediaId, ['READY']);
  return s.body.mediaId as string;
}

const keysOf = async (id: string) =>
  (
    await t.server.database.pool.query<{ key: string }>(
      `SELECT storage_key AS key FROM media WHERE id = $1
       UNION ALL SELECT key FROM media_variants WHERE media_id = $1`,
      [id],
    )
  ).rows.map((r) => r.key);

test('on S3: square variants in the bucket, a presigned avatar, the replaced image removed from the bucket', async () => {
  const alice = await t.user('pr-s3-alice');
  const first = await readyProfileImage(alice.auth);
  const set = await call(t.api('/profile/image'), {
    method: 'PUT',
    headers: alice.auth,
    json: { mediaId: first },
  });
  assert.equal(set.status, 200, set.text);

  const firstKeys = await keysOf(first);
  assert.ok(firstKeys.length >= 4, `the original and its square variants: ${firstKeys.join()}`);
  for (const k of firstKeys) assert.ok(await bucket.stat(k), `${k} is in the bucket`);

  // The avatar redirects to the bucket itself (presigned), square WebP.
  const redirect = await call(t.api(`/users/${alice.id}/profile-image?size=300`), {
    headers: alice.auth,
    redirect: 'manual',
  });
  assert.equal(redirect.status, 302, redirect.text);
  const location = redirect.headers.get('location')!;
  assert.ok(location.startsWith(ceph.env.S3_ENDPOINT!), location);
  const img = await fetch(location);
  assert.equal(img.status, 200);
  assert.equal(img.headers.get('content-type'), 'image/webp');

  // Replaced: the new image is shown, every object of the old one leaves the bucket.
  const second = await readyProfileImage(alice.auth);
  const swap = await call(t.api('/profile/image'), {
    method: 'PUT',
    headers: alice.auth,
    json: { mediaId: second },
  });
  assert.equal(swap.status, 200, swap.text);
  const view = await call(t.api('/users/me/profile'), { headers: alice.auth });
  assert.equal(view.body.mediaId, second);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const left = [];
    for (const k of firstKeys) if (await bucket.stat(k)) left.push(k);
    if (left.length === 0) break;
    if (Date.now() > deadline) assert.fail(`still in the bucket: ${left.join()}`);
    await sleep(100);
  }
  for (const k of await keysOf(second)) assert.ok(await bucket.stat(k), `${k} of the new image stays`);
});
