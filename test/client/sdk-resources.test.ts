/**
 * The SDK's resource methods against a real server (local store, real worker): posts, circles,
 * usage and profile images through `client.posts`, `.circles`, `.usage` and `.profile`, with the
 * contract's types (test/client/types/sdk-contract.ts) and the server's errors as MediaryError.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { MediaryClient, MediaryError, uploadFile } from '../../src/client/node.ts';
import { fixture } from '../helpers/files.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { bigJpeg } from '../processing/helpers.ts';

const FAST_RETRY = { retries: 2, baseDelayMs: 20, maxDelayMs: 100 };

let t: TestServer;
let photo: Buffer;
before(async () => {
  t = await startTestServer({ SWEEP_INTERVAL_SECONDS: '0' });
  photo = await bigJpeg(fixture('cameras/Nikon_D70.jpg'), 640, 480);
});
after(async () => {
  await t?.close();
});

async function clientOf(userId: string) {
  const { token } = await t.user(userId);
  return new MediaryClient({ server: t.base, token, retry: FAST_RETRY });
}

/** A READY image uploaded through the SDK itself. */
async function image(client: MediaryClient, purpose?: 'post' | 'profile' | 'library') {
  const r = await uploadFile(new Blob([new Uint8Array(photo)]), {
    client,
    fileName: 'p.jpg',
    mimeType: 'image/jpeg',
    purpose,
    stateStore: null,
    wait: { timeoutMs: 60_000 },
  });
  assert.equal(r.status, 'READY');
  return r.mediaId;
}

const refused = async (p: Promise<unknown>, status: number, code: string) => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MediaryError, String(err));
    assert.deepEqual([err.status, err.code], [status, code]);
    return true;
  });
};

describe('SDK resources', () => {
  test('posts: create (idempotent), read, edit, list, delete', async () => {
    const alice = await clientOf('sdk-alice-1');
    const [a, b] = [await image(alice, 'post'), await image(alice, 'post')];
    const created = await alice.posts.create({ caption: 'Hi', mediaIds: [a, b] }, { idempotencyKey: 'k1' });
    assert.equal(created.created, true);
    assert.deepEqual(
      created.media.map((m) => m.mediaId),
      [a, b],
    );
    const again = await alice.posts.create({ caption: 'Hi', mediaIds: [a, b] }, { idempotencyKey: 'k1' });
    assert.deepEqual([again.created, again.postId], [false, created.postId]);
    const edited = await alice.posts.update(created.postId, { mediaIds: [b, a], version: created.version });
    assert.deepEqual(
      edited.media.map((m) => m.mediaId),
      [b, a],
    );
    assert.equal((await alice.posts.get(created.postId)).version, edited.version);
    const page = await alice.posts.list('me', { limit: 10 });
    assert.deepEqual(
      page.items.map((p) => p.postId),
      [created.postId],
    );
    await refused(alice.posts.update(created.postId, { caption: 'x', version: 1 }), 409, 'version_conflict');
    await alice.posts.delete(created.postId);
    await refused(alice.posts.get(created.postId), 404, 'not_found');
  });

  test('circles: members see what is shared, until they are removed', async () => {
    const alice = await clientOf('sdk-alice-2');
    const bob = await clientOf('sdk-bob-2');
    const m = await image(alice);
    const circle = await alice.circles.create({ name: 'Family' });
    assert.deepEqual((await alice.circles.addMember(circle.circleId, 'sdk-bob-2')).members, ['sdk-bob-2']);
    const share = await alice.circles.share(circle.circleId, { mediaId: m });
    assert.equal(share.mediaId, m);
    assert.deepEqual(
      (await bob.circles.list()).items.map((c) => c.circleId),
      [circle.circleId],
    );
    assert.deepEqual(
      (await bob.circles.media(circle.circleId, { limit: 5 })).items.map((x) => x.mediaId),
      [m],
    );
    assert.equal((await bob.get(m)).mediaId, m);
    await alice.circles.removeMember(circle.circleId, 'sdk-bob-2');
    await refused(bob.circles.get(circle.circleId), 404, 'not_found');
    await refused(bob.get(m), 404, 'not_found');
    await alice.circles.unshare(circle.circleId, share.shareId);
    await alice.circles.delete(circle.circleId);
    await refused(alice.circles.get(circle.circleId), 404, 'not_found');
  });

  test('usage: a user’s and a device’s', async () => {
    const alice = await clientOf('sdk-alice-3');
    const before = await alice.usage.user();
    await image(alice);
    const after = await alice.usage.user('me');
    assert.equal(after.storedBytes, before.storedBytes + photo.length);
    const cam = await t.device('cam', 'sdk-alice-3');
    const camClient = new MediaryClient({ server: t.base, key: cam.key, retry: FAST_RETRY });
    assert.equal((await camClient.usage.device(cam.id)).storedBytes, 0);
    assert.equal((await alice.usage.device(cam.id)).openSessions, 0);
    await refused((await clientOf('sdk-eve-3')).usage.device(cam.id), 404, 'not_found');
  });

  test('profile images: set, read, a signed square, seen by a circle member, removed', async () => {
    const alice = await clientOf('sdk-alice-4');
    const bob = await clientOf('sdk-bob-4');
    const id = await image(alice, 'profile');
    const set = await alice.profile.set(id);
    assert.deepEqual([set.swapped, set.mediaId, set.pending], [true, id, null]);
    assert.deepEqual(
      set.variants.map((v) => [v.name, v.width, v.height]),
      [
        ['600', 480, 480],
        ['300', 300, 300],
        ['150', 150, 150],
      ],
    );
    const url = await alice.profile.imageUrl('me', 150);
    const res = await fetch(url.url);
    assert.equal(res.status, 200);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [150, 150]);
    await refused(bob.profile.get('sdk-alice-4'), 404, 'not_found');
    const circle = await alice.circles.create({ name: 'Friends' });
    await alice.circles.addMember(circle.circleId, 'sdk-bob-4');
    assert.equal((await bob.profile.get('sdk-alice-4')).mediaId, id);
    const library = await image(alice, 'library');
    await refused(alice.profile.set(library), 409, 'profile_image_refused');
    await alice.profile.remove();
    const none = await alice.profile.get();
    assert.deepEqual([none.mediaId, none.variants], [null, []]);
    await refused(alice.profile.imageUrl(), 404, 'not_found');
  });

  test('devices: add, list, rename, rotate the key (the old one works during the overlap), revoke', async () => {
    const alice = await clientOf('sdk-alice-5');
    const { device, apiKey } = await alice.devices.create('porch');
    assert.equal(device.ownerUserId, 'sdk-alice-5');
    const cam = new MediaryClient({ server: t.base, key: apiKey, retry: FAST_RETRY });
    assert.equal((await cam.devices.get('me')).deviceId, device.deviceId);
    assert.equal((await alice.devices.update(device.deviceId, { name: 'garden' })).name, 'garden');
    assert.deepEqual(
      (await alice.devices.list()).items.map((d) => d.name),
      ['garden'],
    );
    const rotated = await alice.devices.rotateKey(device.deviceId, { overlapSeconds: 600 });
    assert.notEqual(rotated.apiKey, apiKey);
    assert.ok(rotated.device.previousKeyExpiresAt);
    const fresh = new MediaryClient({ server: t.base, key: rotated.apiKey, retry: FAST_RETRY });
    assert.equal((await fresh.usage.device(device.deviceId)).storedBytes, 0);
    assert.equal((await cam.usage.device(device.deviceId)).storedBytes, 0, 'the old key, within the overlap');
    const revoked = await alice.devices.revoke(device.deviceId);
    assert.ok(revoked.revokedAt);
    assert.deepEqual((await alice.devices.list()).items, []);
    assert.equal((await alice.devices.list({ includeRevoked: true })).items.length, 1);
    await refused((await clientOf('sdk-eve-5')).devices.get(device.deviceId), 404, 'not_found');
    await refused(alice.devices.claim({ userCode: 'ABCD-EFGH' }), 404, 'not_found');
  });
});
