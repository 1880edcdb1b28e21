/**
 * Idempotent replays run the access rules of a read (found by an outside attack: a replayed
 * (device, camera, messageId) returned another principal's record, with a signed upload URL).
 * Ownership changes are tried in both directions: the new owner cannot reach the previous owner's
 * captures or sessions, and the previous owner cannot reach into the camera's future.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';

const JPEG = fixture('cameras/Nikon_D70.jpg');
const FILE = { fileName: 'n.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) };

type Auth = Record<string, string>;
let t: TestServer;

before(async () => {
  // No device-key cache: an owner change applies to the very next request, nothing to wait for.
  t = await startTestServer({ DEVICE_KEY_CACHE_SECONDS: '0' });
});
after(async () => {
  await t?.close();
});

const session = (auth: Auth, extra: Record<string, unknown> = {}, headers: Auth = {}) =>
  call(t.api('/media'), { method: 'POST', headers: { ...auth, ...headers }, json: { ...FILE, ...extra } });

async function upload(auth: Auth, extra: Record<string, unknown> = {}, headers: Auth = {}) {
  const s = await session(auth, extra, headers);
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg' },
    body: JPEG,
  });
  assert.equal(put.status, 200, put.text);
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return s.body.mediaId as string;
}

async function transfer(deviceId: string, to: string | null) {
  await t.server.database.pool.query('UPDATE devices SET owner_user_id = $1 WHERE id = $2', [to, deviceId]);
}

/** A refused replay tells nothing about the record it hit: no id, size, type or URL. */
function assertBlindConflict(res: Awaited<ReturnType<typeof call>>, what: string) {
  assert.equal(res.status, 409, `${what}: ${res.text}`);
  assert.equal(res.body.error.code, 'idempotency_conflict', what);
  assert.equal(res.body.error.details, undefined, `${what}: no details`);
  assert.ok(!res.text.includes('mediaId') && !res.text.includes('upload'), `${what}: ${res.text}`);
}

describe('replays and ownership changes', () => {
  test('users cannot send messageId, with or without a device of theirs', async () => {
    const alice = await t.user('r-alice-0');
    const cam = await t.device('cam', alice.id);
    for (const extra of [{ messageId: 'm-1' }, { deviceId: cam.id, messageId: 'm-1' }]) {
      const res = await session(alice.auth, extra);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'validation_failed');
      assert.equal(res.body.error.details.field, 'messageId');
    }
    const rows = await t.server.database.pool.query('SELECT 1 FROM media WHERE message_id = $1', ['m-1']);
    assert.equal(rows.rowCount, 0, 'nothing was written');
  });

  test('a user naming their device is idempotent on Idempotency-Key', async () => {
    const alice = await t.user('r-alice-1');
    const cam = await t.device('cam', alice.id);
    const first = await session(alice.auth, { deviceId: cam.id }, { 'idempotency-key': 'k-1' });
    const again = await session(alice.auth, { deviceId: cam.id }, { 'idempotency-key': 'k-1' });
    assert.equal(first.status, 201, first.text);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.mediaId, first.body.mediaId);
    assert.ok(again.body.upload?.url, 'a PENDING replay gets fresh instructions');
  });

  test('after a transfer the camera cannot replay a session or capture its previous owner opened', async () => {
    const alice = await t.user('r-alice-2');
    const bob = await t.user('r-bob-2');
    const cam = await t.device('cam', alice.id);
    const pending = await session(cam.auth, { messageId: 'p-1' });
    assert.equal(pending.status, 201);
    const done = await upload(cam.auth, { messageId: 'd-1' });
    // Before the transfer these are ordinary replays.
    assert.equal((await session(cam.auth, { messageId: 'p-1' })).status, 200);
    assert.equal((await session(cam.auth, { messageId: 'd-1' })).status, 200);

    await transfer(cam.id, bob.id);
    assertBlindConflict(
      await session(cam.auth, { messageId: 'p-1' }),
      'pending session of the previous owner',
    );
    assertBlindConflict(await session(cam.auth, { messageId: 'd-1' }), 'capture of the previous owner');
    // The same key with other bytes tells nothing either (no size or type of the old record).
    assertBlindConflict(
      await session(cam.auth, { messageId: 'd-1', bytes: 5, sha256: undefined }),
      'conflicting declaration',
    );
    // Nothing moved: both records are still Alice's, the pending one still waits for her bytes.
    const rows = await t.server.database.pool.query<{ id: string; owner_user_id: string; status: string }>(
      'SELECT id, owner_user_id, status FROM media WHERE id = ANY($1) ORDER BY message_id',
      [[done, pending.body.mediaId]],
    );
    const [doneRow, pendingRow] = rows.rows;
    assert.equal(doneRow?.owner_user_id, 'r-alice-2');
    assert.match(doneRow.status, /^(UPLOADED|PROCESSING|READY)$/);
    assert.deepEqual([pendingRow?.owner_user_id, pendingRow?.status], ['r-alice-2', 'PENDING']);
    assert.equal((await call(t.api(`/media/${done}`), { headers: bob.auth })).status, 404);
    assert.equal((await call(t.api(`/media/${pending.body.mediaId}`), { headers: bob.auth })).status, 404);
    // New captures of the camera are Bob's.
    const fresh = await upload(cam.auth, { messageId: 'n-1' });
    assert.equal((await call(t.api(`/media/${fresh}`), { headers: bob.auth })).status, 200);
    assert.equal((await call(t.api(`/media/${fresh}`), { headers: alice.auth })).status, 404);
  });

  test('the previous owner cannot pre-create sessions on the camera’s future message ids', async () => {
    const alice = await t.user('r-alice-3');
    const bob = await t.user('r-bob-3');
    const cam = await t.device('cam', alice.id);
    // As a user: refused outright (messageId is the device's).
    assert.equal((await session(alice.auth, { deviceId: cam.id, messageId: 'future-1' })).status, 400);
    // With Idempotency-Key she gets her own record, in her own key space.
    const hers = await session(alice.auth, { deviceId: cam.id }, { 'idempotency-key': 'future-1' });
    assert.equal(hers.status, 201);
    await transfer(cam.id, bob.id);
    // The camera's capture with that id is a new record of Bob's, not Alice's session.
    const capture = await upload(cam.auth, { messageId: 'future-1' });
    assert.notEqual(capture, hers.body.mediaId);
    assert.equal((await call(t.api(`/media/${capture}`), { headers: bob.auth })).status, 200);
    assert.equal((await call(t.api(`/media/${capture}`), { headers: alice.auth })).status, 404);
    // Alice no longer owns the camera: her key naming it now finds no device.
    const replay = await session(alice.auth, { deviceId: cam.id }, { 'idempotency-key': 'future-1' });
    assert.equal(replay.status, 404, replay.text);
    // Bob's key space is his own: the same key makes a new record.
    const bobs = await session(bob.auth, { deviceId: cam.id }, { 'idempotency-key': 'future-1' });
    assert.equal(bobs.status, 201);
    assert.notEqual(bobs.body.mediaId, hers.body.mediaId);
  });

  test('back again: a camera returned to its first owner replays only its own sessions of that time', async () => {
    const alice = await t.user('r-alice-4');
    const bob = await t.user('r-bob-4');
    const cam = await t.device('cam', alice.id);
    const a1 = await upload(cam.auth, { messageId: 'a-1' });
    await transfer(cam.id, bob.id);
    const b1 = await upload(cam.auth, { messageId: 'b-1' });
    await transfer(cam.id, alice.id);
    assert.equal((await session(cam.auth, { messageId: 'a-1' })).body.mediaId, a1, 'her own capture');
    assertBlindConflict(await session(cam.auth, { messageId: 'b-1' }), 'Bob’s capture after the return');
    assert.equal((await call(t.api(`/media/${b1}`), { headers: alice.auth })).status, 404);
    assert.equal((await call(t.api(`/media/${b1}`), { headers: bob.auth })).status, 200);
  });

  test('a device key does not reach what a user uploaded naming that device', async () => {
    const alice = await t.user('r-alice-5');
    const cam = await t.device('cam', alice.id);
    const hers = await upload(alice.auth, { deviceId: cam.id });
    const own = await upload(cam.auth, { messageId: 'own-1' });
    for (const path of [`/media/${hers}`, `/media/${hers}/download`, `/media/${hers}/status`]) {
      const res = await call(t.api(path), { headers: cam.auth });
      assert.equal(res.status, 404, `device ${path}: ${res.text}`);
      assert.equal((await call(t.api(path), { headers: alice.auth })).status < 400, true, `owner ${path}`);
    }
    const listed = async (who: Auth) =>
      ((await call(t.api(`/devices/${cam.id}/media`), { headers: who })).body.items as { mediaId: string }[])
        .map((m) => m.mediaId)
        .sort();
    assert.deepEqual(await listed(cam.auth), [own]);
    assert.deepEqual(await listed(alice.auth), [hers, own].sort());
  });

  test('a message id an earlier version let a user take is refused to the device, blind', async () => {
    const alice = await t.user('r-alice-6');
    const cam = await t.device('cam', alice.id);
    const hers = await session(alice.auth, { deviceId: cam.id }, { 'idempotency-key': 'legacy' });
    // What a user-made row with a message id looked like before: the device's key space, the user's record.
    await t.server.database.pool.query(`UPDATE media SET message_id = 'legacy-1' WHERE id = $1`, [
      hers.body.mediaId,
    ]);
    assertBlindConflict(await session(cam.auth, { messageId: 'legacy-1' }), 'user-made record');
  });
});
